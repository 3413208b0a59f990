"""Aerial area loitering: survey lines, a patrol drone and TV-relay orbits on real flights;
flights going somewhere, a glider and airfield circuits stay quiet."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from pathlib import Path

import pytest

from detectors.air_loiter import AirLoiterConfig, AirLoiterDetector
from detectors.base import Environment
from detectors.state_codec import decode, encode
from detectors.track_engine import TrackEngine
from models.airfields import Airfield, AirfieldIndex, default_airfields
from models.alert import Alert
from models.position import Position
from models.settings import Settings, load_settings
from models.timeutil import parse_iso
from streams.sources.aircsv import AircraftCsvDecoder
from tests.conftest import final_revisions, read_lines, run_pipeline

SETTINGS = load_settings()
TOL = 10 * 60.0  # windows are judged every 30 s over 45 min: spans within 10 min


def t(day: str, hhmmss: str) -> float:
    return parse_iso(f"{day}T{hhmmss}Z")


def flight(shared: Path, name: str) -> list[Position]:
    path = next((shared / "air").glob(name + "*"))
    return [p for p in AircraftCsvDecoder(str(path)).decode(read_lines(path)) if isinstance(p, Position)]


def loiters(
    records: Iterable[Position], cfg: AirLoiterConfig | None = None, airfields: AirfieldIndex | None = None
) -> list[Alert]:
    det = AirLoiterDetector(cfg or AirLoiterConfig(), Environment(), airfields)
    return final_revisions(run_pipeline(records, SETTINGS, Environment(), detectors=[det]))


def assert_span(alert: Alert, start: float, end: float) -> None:
    assert abs(alert.start_ts - start) <= TOL, (alert.start_ts - start) / 60
    assert abs(alert.end_ts - end) <= TOL, (alert.end_ts - end) / 60


# --------------------------------------------------------------------------- synthetic


M_PER_DEG = 111_320.0


def lawnmower(start: float, lat0: float, lon0: float, *, lines: int, length_m: float, spacing_m: float,
              speed_kn: float = 140.0, alt_ft: float = 9000.0, step_s: float = 10.0) -> list[Position]:  # fmt: skip
    """Parallel north–south lines joined at their ends, flown at a steady speed."""
    v = speed_kn / 1.943844
    cos = math.cos(math.radians(lat0))
    corners: list[tuple[float, float]] = []
    for i in range(lines):
        x = i * spacing_m
        ys = (0.0, length_m) if i % 2 == 0 else (length_m, 0.0)
        corners += [(x, ys[0]), (x, ys[1])]
    out: list[Position] = []
    ts = start
    for (x0, y0), (x1, y1) in itertools.pairwise(corners):
        d = math.hypot(x1 - x0, y1 - y0)
        n = max(1, int(d / (v * step_s)))
        for k in range(n):
            f = k / n
            x, y = x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
            lat, lon = lat0 + y / M_PER_DEG, lon0 + x / (M_PER_DEG * cos)
            out.append(Position("aircraft", "a0b1c2", ts, lat, lon, speed_kn=speed_kn, altitude_ft=alt_ft))
            ts += step_s
    return out


def circuits(start: float, lat0: float, lon0: float, laps: int, alt_ft: float) -> list[Position]:
    """Rectangular circuits of 3 km × 1 km at 90 kn, one after the other."""
    one = lawnmower(start, lat0, lon0, lines=2, length_m=3_000, spacing_m=1_000, speed_kn=90, alt_ft=alt_ft)
    lap_s = one[-1].ts - one[0].ts + 60.0  # the closing leg back to the start: 1 km at 90 kn ≈ 22 s
    return [
        Position(p.entity_type, p.entity_id, p.ts + k * lap_s, p.lat, p.lon, speed_kn=p.speed_kn, altitude_ft=alt_ft)
        for k in range(laps)
        for p in one
    ]


def landed(track: list[Position], after_s: float = 3600.0) -> list[Position]:
    """The track, then one fix ``after_s`` later at its last position: the silence closes the episode."""
    last = track[-1]
    return [*track, Position(last.entity_type, last.entity_id, last.ts + after_s, last.lat, last.lon, speed_kn=0.0,
                             altitude_ft=0.0)]  # fmt: skip


def straight(start: float, lat0: float, lon0: float, hours: float, speed_kn: float = 140.0) -> list[Position]:
    v = speed_kn / 1.943844
    return [
        Position("aircraft", "a0b1c3", start + k * 10, lat0, lon0 + v * k * 10 / (M_PER_DEG * 0.7), speed_kn=speed_kn,
                 altitude_ft=9000.0)
        for k in range(int(hours * 360))
    ]  # fmt: skip


START = t("2024-03-01", "10:00:00")


def test_survey_lines_are_one_loiter_episode() -> None:
    # 12 lines of 30 km, 3 km apart, at 140 kn: 1.4 h. The first window qualifies 45 min in;
    # the episode starts with it and ends at the last line's end.
    track = lawnmower(START, 30.0, -90.0, lines=12, length_m=30_000, spacing_m=3_000)
    (alert,) = loiters(landed(track))
    assert alert.kind == "air_loiter" and alert.entities[0].id == "a0b1c2"
    assert_span(alert, START, track[-1].ts)
    assert alert.status == "closed"
    ev = alert.evidence
    assert ev["path_ratio"] >= 5.0
    assert 25_000 <= ev["area_m"][0] <= 31_000 and 30_000 <= ev["area_m"][1] <= 34_000
    assert abs(ev["mean_speed_kn"] - 140) < 5
    assert ev["thresholds"]["min_path_ratio"] == 5.0


def test_a_flight_going_somewhere_is_not_loitering() -> None:
    assert loiters(straight(START, 30.0, -90.0, hours=3)) == []


def test_wide_lines_are_a_transit_not_a_loiter() -> None:
    # lines 100 km long, 20 km apart: the area is too big for the path flown in 45 min
    assert loiters(lawnmower(START, 30.0, -90.0, lines=6, length_m=100_000, spacing_m=20_000)) == []


def test_circuits_low_over_an_airfield_are_not_reported() -> None:
    field = Airfield("XTST", "", "Test field", "US", 30.0135, -89.98, 20.0)
    airfields = AirfieldIndex([field])
    low = circuits(START, 30.0, -90.0, laps=20, alt_ft=1000)  # 1 h of circuits beside the field
    assert low[-1].ts - low[0].ts > 3600
    assert loiters(low, airfields=airfields) == []
    # the same pattern at 9,000 ft is no circuit: reported
    high = circuits(START, 30.0, -90.0, laps=20, alt_ft=9000)
    assert len(loiters(high, airfields=airfields)) == 1


def test_a_silence_ends_the_episode_and_restarts_the_window() -> None:
    track = lawnmower(START, 30.0, -90.0, lines=30, length_m=30_000, spacing_m=3_000)  # 3.5 h
    cut = [p for p in track if not START + 2 * 3600 <= p.ts < START + 2 * 3600 + 600]  # 10 min silent
    alerts = loiters(landed(cut))
    assert len(alerts) == 2
    first, second = alerts
    assert first.end_ts < START + 2 * 3600 <= second.start_ts


def test_state_survives_a_restart_from_its_serialised_form() -> None:
    track = lawnmower(START, 30.0, -90.0, lines=8, length_m=30_000, spacing_m=3_000)

    def run(restart_every: int) -> list[tuple[object, ...]]:
        engine = TrackEngine(
            [AirLoiterDetector(AirLoiterConfig(), Environment())], SETTINGS.cleaning, SETTINGS.pipeline
        )
        out: list[Alert] = []
        for i, fix in enumerate(track, start=1):
            p = Position(fix.entity_type, fix.entity_id, fix.ts, fix.lat, fix.lon, speed_kn=fix.speed_kn,
                         altitude_ft=fix.altitude_ft)  # fmt: skip
            out.extend(engine.process(p).alerts)
            out.extend(engine.expire(fix.ts - 60))
            if i % restart_every == 0:
                for tr in engine.tracks.values():
                    tr.det = [decode(json.loads(json.dumps(encode(s)))) for s in tr.det]
        out.extend(engine.expire(track[-1].ts + 3600))
        return sorted((a.id, a.revision, a.status, a.start_ts, a.end_ts, a.evidence["path_m"]) for a in out)

    baseline = run(10**9)
    assert baseline and run(97) == baseline


# --------------------------------------------------------------------------- real flights


@pytest.mark.parametrize(
    ("name", "day", "start", "end"),
    [
        ("survey_lines_N441FS", "2018-10-27", "14:39:47", "18:57:32"),  # 15 lines 5.6 km apart, 16,300 ft
        ("survey_lines_FGALN", "2019-02-27", "09:00:56", "15:50:13"),  # photo survey E–W lines, 11,000 ft
        ("surveillance_drone_GTEKV", "2020-04-17", "05:00:50", "07:15:00"),  # Channel patrol at 975 ft
        ("tv_relay_orbits_OOLET", "2020-03-01", "05:47:30", "12:02:30"),  # circles over the ski race
        ("tv_relay_orbits_ASR182B", "2020-09-13", "09:55:30", "15:33:30"),  # circles drifting with the race
    ],
)
def test_real_loitering_flights(shared_data: Path, name: str, day: str, start: str, end: str) -> None:
    (alert,) = loiters(flight(shared_data, name))
    assert_span(alert, t(day, start), t(day, end))
    assert alert.evidence["path_ratio"] >= 5.0


@pytest.mark.parametrize(
    "name",
    [
        "airliner_straight_AFR63ZR",  # a climb-out
        "airliner_gnss_spoofing_THY9BP",  # Istanbul to the Baltic, position jumps
        "glider_thermals_G-CLPU",  # a cross-country glider flight: path / radius 4.4 at most
    ],
)
def test_flights_going_somewhere_stay_quiet(shared_data: Path, name: str) -> None:
    assert loiters(flight(shared_data, name)) == []


@pytest.mark.slow
def test_paris_traffic_has_no_loiterer(shared_data: Path, settings: Settings) -> None:
    # 3 h of all traffic around Paris (213 aircraft): airliners, light aircraft, the F-HMAC
    # helicopter's approaches (path / radius 3.7 at most)
    assert loiters(flight(shared_data, "paris_area_traffic"), airfields=default_airfields()) == []


def test_survey_across_the_antimeridian_is_one_area() -> None:
    # the same survey lines, laid across 180° (Fiji): longitudes jump from 179.9 to -179.9
    track = lawnmower(START, -17.0, 179.85, lines=12, length_m=30_000, spacing_m=3_000)
    for p in track:
        p.lon = (p.lon + 180.0) % 360.0 - 180.0
    assert any(p.lon < 0 for p in track) and any(p.lon > 0 for p in track)
    (alert,) = loiters(landed(track))
    assert alert.evidence["path_ratio"] >= 5.0
    assert abs(abs(alert.lon) - 180.0) < 0.3 and 25_000 <= alert.evidence["area_m"][1] <= 34_000
