"""Reference geography: ports, shore distance and land, against places and brute force.

The shipped data (``config/reference/``) is NGA World Port Index and GSHHG intermediate
resolution; see ``config/reference/README.md``. Brute-force references here are independent
of the cell memo: every coastline segment near the point, densified to a few metres and
measured with the haversine formula; land from shapely polygons (even-odd over the rings).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely

from models.errors import ConfigError
from models.geo import haversine_m
from models.reference import PortIndex, ReferenceGeography, ShoreIndex, load_geography
from models.settings import Settings, load_settings

REFERENCE = Path(__file__).resolve().parents[2] / "config" / "reference"
PORTS = REFERENCE / "ports.csv"
COASTLINE = REFERENCE / "coastline.npz"
R_M = 6_371_008.8


@pytest.fixture(scope="module")
def geo() -> ReferenceGeography:
    return ReferenceGeography.load(PORTS, COASTLINE)


@pytest.fixture(scope="module")
def rings() -> dict[str, np.ndarray]:
    with np.load(COASTLINE) as data:
        return {k: data[k] for k in data.files}


def tolerance_m(d: float) -> float:
    return max(100.0, 0.02 * d)


# ---------------------------------------------------------------- places


def test_hampton_roads_anchorage_is_water_near_newport_news(geo: ReferenceGeography) -> None:
    # 36.95 N 76.33 W, the Hampton Roads channel off Sewells Point. The WPI places Newport
    # News at 36.967 N 76.433 W and Norfolk at 36.85 N 76.30 W: the nearest is ~9.4 km away.
    assert not geo.on_land(36.95, -76.33)
    assert 0.0 < geo.distance_to_shore_m(36.95, -76.33) < 2_000.0
    name, d = geo.ports.nearest(36.95, -76.33) or ("", math.inf)
    assert name == "Newport News"
    assert d == pytest.approx(haversine_m(36.95, -76.33, 36.966667, -76.433333), abs=1.0)
    assert geo.distance_to_port_m(36.95, -76.33) < 10_000.0


def test_norfolk_harbour_is_water_within_3_km_of_a_port(geo: ReferenceGeography) -> None:
    # Elizabeth River off downtown Norfolk
    assert not geo.on_land(36.85, -76.31)
    assert geo.distance_to_port_m(36.85, -76.31) < 3_000.0
    assert (geo.ports.nearest(36.85, -76.31) or ("",))[0] == "Norfolk"
    assert geo.distance_to_shore_m(36.85, -76.31) < 1_000.0


def test_hundred_miles_off_virginia_beach_is_open_sea(geo: ReferenceGeography) -> None:
    assert not geo.on_land(36.8, -73.5)
    assert geo.distance_to_shore_m(36.8, -73.5) > 50_000.0
    assert geo.distance_to_shore_m(36.8, -73.5) >= geo.shore.max_distance_m  # ~220 km: a lower bound
    assert geo.distance_to_port_m(36.8, -73.5) == math.inf
    assert geo.ports.nearest(36.8, -73.5) is None


def test_central_kansas_is_land(geo: ReferenceGeography) -> None:
    assert geo.on_land(38.5, -98.5)
    assert geo.distance_to_shore_m(38.5, -98.5) == 0.0


def test_great_lakes_are_water(geo: ReferenceGeography) -> None:
    # GSHHG level-2 lakes of 1000 km² or more are kept as water (Lake Michigan here)
    assert not geo.on_land(43.5, -87.0)
    assert 20_000.0 < geo.distance_to_shore_m(43.5, -87.0) < 80_000.0


def test_both_sides_of_the_antimeridian(geo: ReferenceGeography) -> None:
    # Chukotka is cut at 180°: land on both sides, and the cut is no shore
    assert geo.on_land(67.0, 179.99) and geo.on_land(67.0, -179.99)
    # Fiji (Vanua Levu is cut at 180°): distances match across the cut
    east = geo.distance_to_shore_m(-16.3, 179.9999)
    west = geo.distance_to_shore_m(-16.3, -179.9999)
    assert east == pytest.approx(west, abs=tolerance_m(east))
    # 180° and −180° are one meridian
    for lat in (-16.3, -16.6, 67.0, 0.0):
        assert geo.distance_to_shore_m(lat, 180.0) == geo.distance_to_shore_m(lat, -180.0)
        assert geo.on_land(lat, 180.0) == geo.on_land(lat, -180.0)


def test_positions_off_the_globe_raise(geo: ReferenceGeography) -> None:
    for lat, lon in ((91.0, 0.0), (0.0, 181.0)):
        with pytest.raises(ValueError):
            geo.distance_to_shore_m(lat, lon)
        with pytest.raises(ValueError):
            geo.distance_to_port_m(lat, lon)


# ---------------------------------------------------------------- brute force


def _segments(rings: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    lon = rings["lon"].astype(np.float64)
    lat = rings["lat"].astype(np.float64)
    offsets = rings["ring_offsets"]
    start = np.ones(len(lon) - 1, dtype=bool)
    start[offsets[1:-1] - 1] = False
    start[rings["artificial_edges"]] = False
    i = np.nonzero(start)[0]
    return lon[i], lat[i], lon[i + 1], lat[i + 1]


def brute_distance_m(segs: tuple[np.ndarray, ...], lat: float, lon: float) -> float:
    """Haversine distance to the nearest point of any coastline segment (densified to ~5 m)."""
    ax, ay, bx, by = segs
    shift = 360.0 * np.round((lon - ax) / 360.0)
    ax, bx = ax + shift, bx + shift
    k = math.cos(math.radians(lat))
    # a generous planar pre-selection, then the exact measure on the survivors
    px, py = (ax - lon) * k, ay - lat
    qx, qy = (bx - lon) * k, by - lat
    dx, dy = qx - px, qy - py
    l2 = np.where(dx * dx + dy * dy > 0, dx * dx + dy * dy, 1.0)
    t = np.clip(-(px * dx + py * dy) / l2, 0.0, 1.0)
    planar = np.hypot(px + t * dx, py + t * dy)
    near = np.nonzero(planar <= planar.min() * 1.1 + 0.01)[0]
    best = math.inf
    for i in near:
        n = max(2, int(math.hypot(dx[i], dy[i]) * 111_000 / 5.0) + 2)
        f = np.linspace(0.0, 1.0, n)
        la = ay[i] + f * (by[i] - ay[i])
        lo = ax[i] + f * (bx[i] - ax[i])
        p1, p2 = math.radians(lat), np.radians(la)
        a = np.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(np.radians(lo - lon) / 2) ** 2
        best = min(best, float((2 * R_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))).min()))
    return best


def brute_on_land(rings: dict[str, np.ndarray], lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Even-odd count of the shapely polygons (one per ring) that contain each point."""
    offsets = rings["ring_offsets"]
    coords = np.column_stack((rings["lon"], rings["lat"])).astype(np.float64)
    ring_id = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    polygons = shapely.polygons(shapely.linearrings(coords, indices=ring_id))
    tree = shapely.STRtree(polygons)
    points = shapely.points(lon, lat)
    hits = tree.query(points, predicate="within")  # (point index, polygon index)
    return np.asarray(np.bincount(hits[0], minlength=len(points)) % 2 == 1)


def _sample(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # US east coast: 120 points in the whole box, 80 around the mouth of the Chesapeake
    lat = np.concatenate((rng.uniform(30.0, 42.0, 120), rng.uniform(36.6, 37.4, 80)))
    lon = np.concatenate((rng.uniform(-81.5, -68.0, 120), rng.uniform(-76.5, -75.5, 80)))
    return lat, lon


def test_shore_distance_matches_brute_force(geo: ReferenceGeography, rings: dict[str, np.ndarray]) -> None:
    segs = _segments(rings)
    lat, lon = _sample(20260604)
    land = brute_on_land(rings, lat, lon)
    checked = 0
    for la, lo, is_land in zip(lat.tolist(), lon.tolist(), land.tolist(), strict=True):
        assert geo.on_land(la, lo) == is_land, (la, lo)
        got = geo.distance_to_shore_m(la, lo)
        if is_land:
            assert got == 0.0, (la, lo)
            continue
        want = brute_distance_m(segs, la, lo)
        if want <= geo.shore.max_distance_m:
            assert abs(got - want) <= tolerance_m(want), (la, lo, got, want)
            checked += 1
        else:
            assert got >= 100_000.0, (la, lo, got, want)
    assert checked > 80  # most points are water within range


def test_shore_distance_across_the_antimeridian(geo: ReferenceGeography, rings: dict[str, np.ndarray]) -> None:
    segs = _segments(rings)
    rng = np.random.default_rng(7)
    lat = rng.uniform(-18.5, -15.5, 60)
    lon = rng.uniform(178.0, 182.0, 60)
    lon = np.where(lon >= 180.0, lon - 360.0, lon)
    land = brute_on_land(rings, lat, lon)
    for la, lo, is_land in zip(lat.tolist(), lon.tolist(), land.tolist(), strict=True):
        assert geo.on_land(la, lo) == is_land, (la, lo)
        if not is_land:
            want = brute_distance_m(segs, la, lo)
            assert abs(geo.distance_to_shore_m(la, lo) - want) <= tolerance_m(want), (la, lo)


def test_port_distance_matches_brute_force(geo: ReferenceGeography) -> None:
    ports = geo.ports.ports
    plat = np.array([p.lat for p in ports])
    plon = np.array([p.lon for p in ports])
    lat, lon = _sample(99)
    for la, lo in zip(lat.tolist(), lon.tolist(), strict=True):
        p1, p2 = math.radians(la), np.radians(plat)
        a = np.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(np.radians(plon - lo) / 2) ** 2
        d = 2 * R_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
        want = float(d.min())
        got = geo.distance_to_port_m(la, lo)
        if want <= geo.ports.max_distance_m:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-3), (la, lo)
            assert (geo.ports.nearest(la, lo) or ("",))[0] == ports[int(d.argmin())].name
        else:
            assert got == math.inf


# ---------------------------------------------------------------- the memo


def test_cached_answers_are_identical_and_the_cache_is_bounded() -> None:
    shore = ShoreIndex.load(COASTLINE, cache_size=16)
    lat, lon = _sample(5)
    first = [(shore.distance_to_shore_m(a, b), shore.on_land(a, b)) for a, b in zip(lat, lon, strict=True)]
    second = [(shore.distance_to_shore_m(a, b), shore.on_land(a, b)) for a, b in zip(lat, lon, strict=True)]
    assert first == second
    assert shore.cache_info().currsize <= 16
    warm = ShoreIndex.load(COASTLINE)
    for a, b in zip(lat, lon, strict=True):
        warm.distance_to_shore_m(a, b)
    third = [(warm.distance_to_shore_m(a, b), warm.on_land(a, b)) for a, b in zip(lat, lon, strict=True)]
    assert third == first
    assert warm.cache_info().hits > 0


def test_track_points_in_one_cell_use_the_memo(geo: ReferenceGeography) -> None:
    # a vessel drifting in Hampton Roads: the first fix builds the cell, the rest hit it
    before = geo.shore.cache_info()
    for i in range(50):
        geo.distance_to_shore_m(36.9501 + i * 1e-5, -76.3301)
    after = geo.shore.cache_info()
    assert after.misses - before.misses <= 4
    assert after.hits - before.hits >= 46


# ---------------------------------------------------------------- synthetic rings


def test_square_island_with_a_lake() -> None:
    # island 0..1° × 0..1° with a lake 0.4..0.6°; rings closed, clockwise like GSHHG
    island = [(0, 0), (0, 1), (1, 1), (1, 0), (0, 0)]
    lake = [(0.4, 0.4), (0.4, 0.6), (0.6, 0.6), (0.6, 0.4), (0.4, 0.4)]
    lon = [p[0] for p in island + lake]
    lat = [p[1] for p in island + lake]
    shore = ShoreIndex(lon, lat, [0, 5, 10])
    m_per_deg = R_M * math.pi / 180.0
    assert shore.on_land(0.2, 0.2)
    assert not shore.on_land(0.5, 0.5)  # in the lake
    assert not shore.on_land(0.5, 1.5)
    assert shore.distance_to_shore_m(0.2, 0.2) == 0.0
    assert shore.distance_to_shore_m(0.5, 0.5) == pytest.approx(0.1 * m_per_deg, rel=1e-3)
    assert shore.distance_to_shore_m(0.5, 1.1) == pytest.approx(0.1 * m_per_deg * math.cos(math.radians(0.5)), rel=2e-3)
    assert shore.distance_to_shore_m(1.05, 0.5) == pytest.approx(0.05 * m_per_deg, abs=100.0)
    # far from everything: a lower bound no smaller than the search radius
    assert shore.distance_to_shore_m(10.0, 10.0) >= shore.max_distance_m


def test_ports_beyond_the_search_radius_are_infinitely_far() -> None:
    ports = PortIndex.load(PORTS, max_distance_m=5_000.0)
    assert ports.distance_to_port_m(36.85, -76.31) < 3_000.0
    assert ports.distance_to_port_m(36.95, -76.33) == math.inf  # Newport News is 9.4 km away


# ---------------------------------------------------------------- loading from settings


def _settings(tmp_path: Path, ports: Path | str, coastline: Path | str, extra: str = "") -> Settings:
    cfg = tmp_path / "vigiamar.toml"
    cfg.write_text(f'[reference]\nports = "{ports}"\ncoastline = "{coastline}"\n{extra}', encoding="utf-8")
    return load_settings(cfg)


def test_memo_cells_sizes_both_memos(tmp_path: Path) -> None:
    assert load_geography(_settings(tmp_path, PORTS, COASTLINE)).shore.cache_info().maxsize == 65_536
    geo = load_geography(_settings(tmp_path, PORTS, COASTLINE, "memo_cells = 2000\n"))
    assert geo.shore.cache_info().maxsize == 2000 and geo.ports.cache_info().maxsize == 2000
    with pytest.raises(ConfigError) as err:
        _settings(tmp_path, PORTS, COASTLINE, "memo_cells = 10\n")
    assert err.value.key == "reference.memo_cells"


def test_load_geography_from_settings(tmp_path: Path) -> None:
    geo = load_geography(_settings(tmp_path, PORTS, COASTLINE))
    assert len(geo.ports) == 3696
    assert geo.on_land(38.5, -98.5)


def test_load_geography_names_the_key_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_geography(_settings(tmp_path, "reference/nope.csv", COASTLINE))
    assert err.value.key == "reference.ports"
    assert "nope.csv" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_geography(_settings(tmp_path, PORTS, "nope.npz"))
    assert err.value.key == "reference.coastline"


def test_load_geography_names_the_key_of_an_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError) as err:
        load_geography(_settings(tmp_path, PORTS, bad))
    assert err.value.key == "reference.coastline"
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("wpi,name\n1,x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_geography(_settings(tmp_path, bad_csv, COASTLINE))
    assert err.value.key == "reference.ports"
