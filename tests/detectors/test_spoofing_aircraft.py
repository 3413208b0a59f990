"""Spoofing on aircraft tracks: a GNSS-spoofed airliner on real ADS-B, and the stale-position
catch-up of 1 row/s feeds that must stay quiet."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from detectors.base import Environment
from detectors.pipeline import NoCells, Pipeline
from detectors.spoofing import SpoofingConfig, SpoofingDetector
from models.alert import Alert
from models.position import FLAG_IMPLAUSIBLE, Position
from models.settings import load_settings
from models.timeutil import parse_iso
from streams.sources.aircsv import AircraftCsvDecoder
from tests.conftest import TEST_DATA, final_revisions, read_lines

SETTINGS = load_settings()
SLICE = TEST_DATA / "air" / "thy9bp_gnss_spoofing_2024-09-17T0844-0905.csv.gz"


def t(hhmmss: str, day: str = "2024-09-17") -> float:
    return parse_iso(f"{day}T{hhmmss}Z")


def aircraft_track(path: Path) -> list[Position]:
    return [p for p in AircraftCsvDecoder(str(path)).decode(read_lines(path)) if isinstance(p, Position)]


def run(records: list[Position], cfg: SpoofingConfig | None = None) -> tuple[list[Alert], list[Position]]:
    """Final revisions of the spoofing alerts, and the fixes as the detector saw them."""
    env = Environment()
    pipeline = Pipeline(SETTINGS, env, detectors=[SpoofingDetector(cfg or SpoofingConfig(), env)], cells=NoCells())
    out: list[Alert] = []
    for rec in records:
        out.extend(pipeline.push(rec))
    out.extend(pipeline.finish())
    return [a for a in final_revisions(out) if a.kind == "spoofing"], records


def test_gnss_spoofed_airliner_is_reported_with_its_jumps() -> None:
    # THY9BP (4baac6) over Romania: its reported position jumps 21.7 km at 08:49:31, 26.1 km
    # at 08:55:36 and 55.5 km at 09:01:04 (among smaller jumps in between, each within 5 min of
    # a counted one). Three counted events within the hour open the episode at the third;
    # it starts at the first and lasts to the last implausible fix (09:01:05).
    (alert,), fixes = run(aircraft_track(SLICE))
    assert alert.entities[0].type == "aircraft" and alert.entities[0].id == "4baac6"
    assert abs(alert.start_ts - t("08:49:31")) <= 2
    assert abs(alert.end_ts - t("09:01:05")) <= 2
    ev = alert.evidence
    assert ev["reasons"] == ["teleport"] and ev["mmsi_problem"] is None
    assert ev["evidence_events"] == 3 and ev["land_fixes"] == 0
    assert 50_000 < ev["max_jump_m"] < 60_000
    assert ev["max_implied_speed_kn"] > 1400
    assert ev["thresholds"]["aircraft_min_jump_m"] == 10_000
    assert all(p["jump_m"] >= 10_000 for p in ev["positions"])
    # the cleaner marks far more than that: the 1 row/s feed's stale-position catch-ups
    assert sum(1 for p in fixes if p.flags & FLAG_IMPLAUSIBLE) > 5 * ev["teleports"]


def test_aircraft_can_be_left_out() -> None:
    alerts, _ = run(aircraft_track(SLICE), SpoofingConfig(aircraft=False))
    assert alerts == []


def test_larger_jump_floor_silences_the_smaller_jumps() -> None:
    # With a 30 km floor only the 55.5 km jump is evidence: one event, no episode.
    alerts, _ = run(aircraft_track(SLICE), SpoofingConfig(aircraft_min_jump_m=30_000))
    assert alerts == []


def _airliner(start: float, minutes: int, stale_every_s: int, stale_s: int) -> list[Position]:
    """An airliner at 480 kn due east at 1 row/s; every ``stale_every_s`` the row repeats the
    last position for ``stale_s`` seconds, then jumps to where the aircraft really is."""
    v_mps = 480 / 1.943844
    out: list[Position] = []
    shown = (45.0, 10.0)
    for k in range(minutes * 60):
        ts = start + k
        lon = 10.0 + v_mps * k / (111_320.0 * math.cos(math.radians(45.0)))
        if k % stale_every_s >= stale_every_s - stale_s:
            lat, lon_shown = shown
        else:
            lat, lon_shown = 45.0, lon
            shown = (lat, lon)
        out.append(Position("aircraft", "4ca123", ts, lat, lon_shown, speed_kn=480.0, altitude_ft=36_000.0))
    return out


def test_stale_position_catch_up_is_not_spoofing() -> None:
    # 12 s of a repeated position, every 2 minutes for an hour: each catch-up is a 3 km step
    # in 1 s (5,760 kn implied), which the cleaner marks implausible. Not evidence: too short.
    alerts, fixes = run(_airliner(t("10:00:00"), 60, 120, 12))
    assert sum(1 for p in fixes if p.flags & FLAG_IMPLAUSIBLE) >= 25
    assert alerts == []


def test_the_same_steps_count_once_the_floor_allows_them() -> None:
    # the check above can fail: with the floor lowered to 1 km the catch-ups open an episode
    alerts, _ = run(_airliner(t("10:00:00"), 60, 120, 12), SpoofingConfig(aircraft_min_jump_m=1_000))
    (alert,) = alerts
    assert alert.entities[0].type == "aircraft"


@pytest.mark.slow
def test_no_spoofing_on_honest_flights(shared_data: Path) -> None:
    # Every other aircraft file: 3 h of all traffic around Paris (213 aircraft, 543 fixes
    # marked implausible, none more than 3.7 km off), orbiting TV relays, survey lines, a glider,
    # a patrol drone, a straight departure.
    for path in sorted((shared_data / "air").glob("*.csv.gz")):
        if "spoofing" in path.name:
            continue
        alerts, _ = run(aircraft_track(path))
        assert alerts == [], path.name


def test_the_same_flight_as_an_opensky_state_vector_dump(tmp_path: Path) -> None:
    # The slice written as OpenSky's state-vector dumps write it (epoch seconds, metres, m/s,
    # every column of theirs, a vector without a position among them): the same positions and
    # the same alert.
    from models.units import FPM_PER_MPS, FT_PER_M, KN_PER_MPS
    from streams.sources.registry import detect_format, make_decoder

    source = aircraft_track(SLICE)
    lines = ["time,icao24,lat,lon,velocity,heading,vertrate,callsign,onground,alert,spi,squawk,baroaltitude,"
             "geoaltitude,lastposupdate,lastcontact"]  # fmt: skip
    for p in source:
        alt = "" if p.altitude_ft is None else f"{p.altitude_ft / FT_PER_M!r}"
        vel = "" if p.speed_kn is None else f"{p.speed_kn / KN_PER_MPS!r}"
        vr = "" if p.vertical_rate_fpm is None else f"{p.vertical_rate_fpm / FPM_PER_MPS!r}"
        trk = "" if p.course_deg is None else f"{p.course_deg!r}"
        lines.append(f"{p.ts:.0f},{p.entity_id},{p.lat!r},{p.lon!r},{vel},{trk},{vr},THY9BP  ,False,False,False,,"
                     f"{alt},{alt},{p.ts:.1f},{p.ts:.1f}")  # fmt: skip
    lines.insert(5, f"{source[3].ts:.0f},4baac6,,,,,,THY9BP,False,False,False,,,,,")
    path = tmp_path / "states_2024-09-17-08.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = read_lines(path)
    decoder = make_decoder(detect_format(text[:5], str(path)), str(path))
    items = list(decoder.decode(text))
    decoded = [i for i in items if isinstance(i, Position)]
    assert [getattr(i, "reason", None) for i in items if not isinstance(i, Position)] == ["no_position"]
    assert [(p.ts, p.lat, p.lon, p.callsign) for p in decoded] == [(p.ts, p.lat, p.lon, "THY9BP") for p in source]
    for a, b in zip(decoded, source, strict=True):
        assert a.altitude_ft == pytest.approx(b.altitude_ft) and a.speed_kn == pytest.approx(b.speed_kn)
    (alert,), _ = run(decoded)
    (expected,), _ = run(aircraft_track(SLICE))
    assert (alert.id, alert.start_ts, alert.end_ts) == (expected.id, expected.start_ts, expected.end_ts)
