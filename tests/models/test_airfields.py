"""The airfield index (airportsdata): real airports, brute force, the cell memo, loading."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from models.airfields import Airfield, AirfieldIndex, default_airfields
from models.geo import haversine_m
from models.units import EARTH_RADIUS_M


@pytest.fixture(scope="module")
def index() -> AirfieldIndex:
    return default_airfields()


def test_the_package_database_is_loaded(index: AirfieldIndex) -> None:
    assert len(index) > 25_000  # airportsdata: ~28,000 airports, strips and heliports
    assert default_airfields() is index  # loaded once per process


@pytest.mark.parametrize(
    ("lat", "lon", "icao", "within_m"),
    [
        (49.0097, 2.5479, "LFPG", 2_000.0),  # Paris-Charles de Gaulle, on the field
        (48.7233, 2.3794, "LFPO", 2_000.0),  # Paris-Orly
        (48.9634, 2.4452, "LFPB", 1_500.0),  # Le Bourget apron (where the Paris sample parks)
        (50.9530, 0.9420, "EGMD", 1_000.0),  # Lydd, G-TEKV's base
        (60.9580, 14.5110, "ESKM", 1_000.0),  # Mora, OO-LET's base
    ],
)
def test_nearest_real_airports(index: AirfieldIndex, lat: float, lon: float, icao: str, within_m: float) -> None:
    found = index.nearest(lat, lon)
    assert found is not None
    airfield, dist = found
    assert airfield.icao == icao
    assert dist < within_m
    assert dist == pytest.approx(haversine_m(lat, lon, airfield.lat, airfield.lon), abs=1e-6)
    assert index.within(lat, lon, within_m)
    assert not index.within(lat, lon, 0.0)


def test_elevation_is_in_feet(index: AirfieldIndex) -> None:
    found = index.nearest(49.0097, 2.5479)
    assert found is not None
    assert 300.0 < found[0].elevation_ft < 450.0  # CDG: 392 ft


def test_mid_ocean_has_no_airfield_within_range(index: AirfieldIndex) -> None:
    assert index.nearest(40.0, -40.0) is None
    assert index.distance_m(40.0, -40.0) == math.inf
    assert not index.within(40.0, -40.0, 50_000.0)


def test_matches_brute_force(index: AirfieldIndex) -> None:
    rng = random.Random(20201013)
    points = [(rng.uniform(-60, 70), rng.uniform(-180, 180)) for _ in range(80)]
    points += [(rng.uniform(47.5, 50.5), rng.uniform(0.5, 4.5)) for _ in range(80)]  # dense: Paris
    points += [(rng.uniform(-19, -15), rng.choice([179.97, -179.97, 180.0, -180.0])) for _ in range(20)]  # Fiji
    lats = np.radians([a.lat for a in index.airfields])
    lons = np.radians([a.lon for a in index.airfields])
    for lat, lon in points:
        p1, l1 = math.radians(lat), math.radians(lon)
        h = np.sin((lats - p1) / 2) ** 2 + math.cos(p1) * np.cos(lats) * np.sin((lons - l1) / 2) ** 2
        want = float((2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))).min())
        if want > index.max_distance_m:
            want = math.inf
        got = index.distance_m(lat, lon)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-6), (lat, lon)


def test_a_track_reuses_its_cell(index: AirfieldIndex) -> None:
    before = index.cache_info()
    for i in range(200):
        index.distance_m(48.49 + i * 1e-5, 2.11)  # F-HMAC hovering south of Paris
    after = index.cache_info()
    assert after.misses - before.misses <= 2
    assert after.hits - before.hits >= 198


def test_positions_off_the_globe_raise(index: AirfieldIndex) -> None:
    with pytest.raises(ValueError):
        index.distance_m(91.0, 0.0)
    with pytest.raises(ValueError):
        index.nearest(0.0, 181.0)


def test_load_a_csv_of_the_same_columns(tmp_path: Path) -> None:
    path = tmp_path / "strips.csv"
    path.write_text(
        "icao,iata,name,country,elevation,lat,lon\n"
        "XX01,,Private strip,FR,300,48.4892,2.1120\n"
        "XX02,,Far strip,FR,,10.0,10.0\n",
        encoding="utf-8",
    )
    idx = AirfieldIndex.load(path, max_distance_m=20_000.0)
    assert len(idx) == 2
    assert idx.airfields[1] == Airfield("XX02", "", "Far strip", "FR", 10.0, 10.0, 0.0)
    assert idx.within(48.4895, 2.1125, 500.0)
    assert idx.nearest(48.0, 2.1) is None  # 54 km: beyond max_distance_m


def test_unusable_files_raise_naming_the_problem(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    with pytest.raises(FileNotFoundError):
        AirfieldIndex.load(missing)
    cols = tmp_path / "cols.csv"
    cols.write_text("icao,name,lat\nXX01,x,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing columns"):
        AirfieldIndex.load(cols)
    bad = tmp_path / "bad.csv"
    bad.write_text("icao,iata,name,country,elevation,lat,lon\nXX01,,x,FR,0,north,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.csv:2"):
        AirfieldIndex.load(bad)
    out = tmp_path / "out.csv"
    out.write_text("icao,iata,name,country,elevation,lat,lon\nXX01,,x,FR,0,95,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="out of range"):
        AirfieldIndex.load(out)
