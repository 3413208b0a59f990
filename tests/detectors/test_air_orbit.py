"""air_orbit: real flights from ../shared/data/air (positives, hard negatives), constructed
tracks, and invariants (reordering within grace, batching, state round trip)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.air_orbit import AirOrbitConfig, AirOrbitDetector, AirOrbitState
from detectors.base import Environment, TrackContext
from models.alert import Alert, validate_alert_wire
from models.position import Position
from models.settings import Settings
from models.timeutil import parse_iso
from streams.sources.aircsv import AircraftCsvDecoder
from tests.conftest import final_revisions, read_lines, run_pipeline

TOL_S = 60.0
M_PER_DEG = 111_195.0


def flight(shared: Path, name: str) -> list[Position]:
    """Decoded positions of one shared air file (fresh objects: the cleaner marks them)."""
    path = next((shared / "air").glob(name + "*"))
    return [p for p in AircraftCsvDecoder(str(path)).decode(read_lines(path)) if isinstance(p, Position)]


def orbits(records: Iterable[Position], settings: Settings, cfg: AirOrbitConfig | None = None) -> list[Alert]:
    det = AirOrbitDetector(cfg or AirOrbitConfig(), Environment())
    return final_revisions(run_pipeline(records, settings, Environment(), detectors=[det]))


def t(day: str, hhmmss: str) -> float:
    return parse_iso(f"{day}T{hhmmss}Z")


def spans(alerts: list[Alert]) -> list[tuple[float, float]]:
    return [(a.start_ts, a.end_ts) for a in alerts]


def assert_span(alert: Alert, start: float, end: float) -> None:
    assert abs(alert.start_ts - start) <= TOL_S, (alert.start_ts, start)
    assert abs(alert.end_ts - end) <= TOL_S, (alert.end_ts, end)


# ---------------------------------------------------------------- real positives


def test_tv_relay_oolet_vasaloppet_circles_the_course(shared_data: Path, settings: Settings) -> None:
    alerts = orbits(flight(shared_data, "tv_relay_orbits_OOLET"), settings)
    day = "2020-03-01"
    # Up from Mora (ESKM), first circles west of the course from 05:56:50, anticlockwise,
    # then clockwise circles that follow the skiers east until 11:59; ~124 turns in all.
    assert len(alerts) == 9
    assert_span(alerts[0], t(day, "05:56:50"), t(day, "07:20:00"))
    assert alerts[0].evidence["direction"] == "left"
    assert alerts[0].evidence["turns"] > 25
    assert_span(alerts[-1], t(day, "10:56:30"), t(day, "11:58:20"))
    assert all(a.evidence["direction"] == "right" for a in alerts[1:])
    assert sum(a.evidence["turns"] for a in alerts) > 110
    for a in alerts:
        assert a.status == "closed"
        assert a.evidence["net_total_turn_ratio"] > 0.9
        assert 2000 < a.evidence["radius_m"] < 3500  # ~2.7 km circles at 24,000 ft, ~175 kn
        assert a.evidence["profile"] == "powered"
        assert a.severity == "medium"
        assert 60.9 < a.lat < 61.2 and 13.2 < a.lon < 14.6
    # the taxi back in at ESKM (12:18–12:21, turning on the ground) is airfield traffic
    assert alerts[-1].end_ts < t(day, "12:10:00")


def test_tv_relay_asr182b_orbits_move_with_the_race(shared_data: Path, settings: Settings) -> None:
    alerts = orbits(flight(shared_data, "tv_relay_orbits_ASR182B"), settings)
    day = "2020-09-13"
    # Circles from 10:04:40 over Lyon to 15:24:50 near the Grand Colombier: the circles drift
    # with the race, so each area is one episode; the aircraft changes direction several times.
    assert 15 <= len(alerts) <= 20
    assert_span(alerts[0], t(day, "10:04:40"), t(day, "10:44:20"))
    assert_span(alerts[-1], t(day, "15:16:05"), t(day, "15:24:50"))
    assert {a.evidence["direction"] for a in alerts} == {"left", "right"}
    assert sum(a.evidence["turns"] for a in alerts) > 75
    assert all(a.evidence["net_total_turn_ratio"] >= 0.6 for a in alerts)
    assert alerts[0].lon < 4.9 and alerts[-1].lon > 5.7  # from Lyon east to the Jura


def test_surveillance_drone_gtekv_patrol_orbits(shared_data: Path, settings: Settings) -> None:
    alerts = orbits(flight(shared_data, "surveillance_drone_GTEKV"), settings)
    day = "2020-04-17"
    # Patrol orbits over the Dover Strait at ~1,000 ft and 50–60 kn; the climb-out loops and
    # the landing circuit at Lydd (EGMD) are airfield traffic. The last episode is still
    # going when the data ends (open).
    expected = [("04:33:40", "04:45:00"), ("05:20:20", "05:30:50"), ("05:36:10", "06:05:00"), ("07:24:00", "07:29:00")]
    assert len(alerts) == len(expected)
    for alert, (start, end) in zip(alerts, expected, strict=True):
        assert_span(alert, t(day, start), t(day, end))
        assert alert.evidence["direction"] == "right"
        assert alert.evidence["turns"] >= 1.5
        assert alert.evidence["mean_speed_kn"] < 70
    assert [a.status for a in alerts] == ["closed", "closed", "closed", "open"]
    assert alerts[2].evidence["distance_to_airfield_m"] > 20_000  # mid-strait


def test_glider_thermalling_first_climbs_reported_with_low_severity_then_quiet(
    shared_data: Path, settings: Settings
) -> None:
    # Benign circling: a glider's cross-country flight is a chain of thermal climbs (13 of
    # them here, and one circle in weak lift). Its first two climbs are reported with the
    # thermalling profile and low severity; after that the track is a glider and its circling
    # at glider speed is not reported, even after silences of more than max_gap_s.
    alerts = orbits(flight(shared_data, "glider_thermals_G-CLPU"), settings)
    day = "2019-05-23"
    assert [a.evidence["profile"] for a in alerts] == ["thermalling", "thermalling"]
    assert_span(alerts[0], t(day, "11:27:27"), t(day, "11:33:03"))
    assert_span(alerts[1], t(day, "11:44:27"), t(day, "11:56:22"))
    assert all(a.severity == "low" for a in alerts)
    assert [a.evidence["thermalling_episodes"] for a in alerts] == [1, 2]


def test_every_thermal_is_reported_when_asked(shared_data: Path, settings: Settings) -> None:
    # glider_report_thermals high: every climb is reported (the count shows how many came before)
    cfg = AirOrbitConfig(glider_report_thermals=1000)
    alerts = orbits(flight(shared_data, "glider_thermals_G-CLPU"), settings, cfg)
    assert 12 <= len(alerts) <= 20
    thermals = [a for a in alerts if a.evidence["profile"] == "thermalling"]
    assert len(thermals) >= 0.8 * len(alerts)
    assert all(a.severity == "low" for a in thermals)
    assert all(a.severity != "high" for a in alerts)
    assert max(a.evidence["thermalling_episodes"] for a in alerts) == len(thermals)
    best = max(alerts, key=lambda a: a.evidence["turns"])
    assert_span(best, t("2019-05-23", "16:55:51"), t("2019-05-23", "17:12:21"))
    assert best.evidence["turns"] > 18
    assert best.evidence["best_climb_ft"] > 3000


# ---------------------------------------------------------------- real negatives


@pytest.mark.parametrize(
    "name",
    [
        "survey_lines_N441FS",  # lawnmower: 15 parallel lines, alternating turns (net/total ≈ 0.04)
        "survey_lines_FGALN",  # photo survey: E–W lines and one repositioning loop (1.2 turns)
        "airliner_straight_AFR63ZR",  # straight climb-out from CDG
        "airliner_gnss_spoofing_THY9BP",  # spoofed jumps of 6–563 km: flagged, never turns
    ],
)
def test_surveys_straight_and_spoofed_flights_stay_quiet(shared_data: Path, settings: Settings, name: str) -> None:
    assert orbits(flight(shared_data, name), settings) == []


def test_fgaln_single_loop_is_below_min_turns(shared_data: Path, settings: Settings) -> None:
    # F-GALN's one full loop (15:37–15:42, ~1.2 turns in ~5 min) between survey lines: an
    # orbit by the letter of "360° within a radius", but not circling. With min_turns = 1
    # it is reported; the default (1.5) keeps survey flights quiet.
    loose = dataclasses.replace(AirOrbitConfig(), min_turns=1.0, min_duration_s=120.0)
    alerts = orbits(flight(shared_data, "survey_lines_FGALN"), settings, loose)
    assert len(alerts) == 1
    assert_span(alerts[0], t("2019-02-27", "15:37:00"), t("2019-02-27", "15:41:40"))
    assert 1.0 <= alerts[0].evidence["turns"] < 1.5


# ---------------------------------------------------------------- constructed tracks

T0 = 1_700_000_000.0
LAT0, LON0 = 50.5, 0.5  # the Channel, far from airfields


def fix(
    ts: float, lat: float, lon: float, speed: float, course: float, alt: float = 1000.0, ident: str = "abc123"
) -> Position:
    return Position("aircraft", ident, ts, lat, lon, speed_kn=speed, course_deg=course % 360.0, altitude_ft=alt)


def circle(
    t0: float, n: int, radius_m: float, period_s: float, clockwise: bool = True, dt: float = 1.0
) -> list[Position]:
    """A steady circle around (LAT0, LON0)."""
    k = math.cos(math.radians(LAT0))
    speed_kn = 2 * math.pi * radius_m / period_s / 0.514444
    out = []
    for i in range(n):
        a = 2 * math.pi * (i * dt) / period_s * (1 if clockwise else -1)  # bearing from the centre
        lat = LAT0 + radius_m * math.cos(a) / M_PER_DEG
        lon = LON0 + radius_m * math.sin(a) / (M_PER_DEG * k)
        course = math.degrees(a) + (90.0 if clockwise else -90.0)
        out.append(fix(t0 + i * dt, lat, lon, speed_kn, course))
    return out


def straight(
    t0: float, n: int, lat: float, lon: float, course: float, speed_kn: float, dt: float = 1.0
) -> list[Position]:
    k = math.cos(math.radians(lat))
    step = speed_kn * 0.514444 * dt
    out = []
    for i in range(n):
        d = step * i
        out.append(
            fix(
                t0 + i * dt,
                lat + d * math.cos(math.radians(course)) / M_PER_DEG,
                lon + d * math.sin(math.radians(course)) / (M_PER_DEG * k),
                speed_kn,
                course,
            )
        )
    return out


def run_direct(det: AirOrbitDetector, fixes: list[Position], until: float | None = None) -> list[Alert]:
    state: AirOrbitState | None = None
    out: list[Alert] = []
    for f in fixes:
        state, alerts = det.step(state, f, TrackContext())
        out += alerts
    if state is not None and until is not None:
        _, alerts = det.expire(state, until)
        out += alerts
    return out


def test_a_steady_circle_is_one_orbit_with_its_centre_radius_and_turns() -> None:
    det = AirOrbitDetector(AirOrbitConfig(), Environment())
    # 2 km radius, 3 min per turn, 5 turns, clockwise
    track = circle(T0, 900, 2000.0, 180.0)
    alerts = run_direct(det, track, until=T0 + 900 + 3600)
    assert [a.status for a in alerts] == ["open", "closed"]
    closed = alerts[-1]
    assert closed.evidence["direction"] == "right"
    assert closed.evidence["turns"] == pytest.approx(5.0, abs=0.1)  # from the start of the first lap
    assert closed.evidence["net_total_turn_ratio"] == pytest.approx(1.0, abs=0.01)
    assert closed.evidence["radius_m"] == pytest.approx(2000.0, rel=0.1)
    assert closed.lat == pytest.approx(LAT0, abs=0.005) and closed.lon == pytest.approx(LON0, abs=0.008)
    assert closed.start_ts < T0 + 60 and closed.end_ts >= T0 + 895
    for a in alerts:
        assert validate_alert_wire(a.to_wire()) == []
        assert a.kind == "air_orbit" and a.entities[0].type == "aircraft"
    assert alerts[0].id == alerts[1].id and [a.revision for a in alerts] == [1, 2]


def test_a_circle_across_the_antimeridian_is_the_same_orbit() -> None:
    # The steady circle moved onto 180° (Fiji): longitudes jump from 179.97 to -179.97 each lap.
    det = AirOrbitDetector(AirOrbitConfig(), Environment())
    here = run_direct(det, circle(T0, 900, 2000.0, 180.0), until=T0 + 900 + 3600)
    moved = circle(T0, 900, 2000.0, 180.0)
    for p in moved:
        p.lon = (p.lon - LON0 + 360.0) % 360.0 - 180.0  # centre at 180°
    assert any(p.lon < 0 for p in moved) and any(p.lon > 0 for p in moved)
    there = run_direct(det, moved, until=T0 + 900 + 3600)
    assert [a.status for a in there] == ["open", "closed"]
    assert abs(abs(there[-1].lon) - 180.0) < 0.01
    assert there[-1].evidence["direction"] == here[-1].evidence["direction"]
    for key in ("turns", "radius_m", "net_total_turn_ratio"):
        assert there[-1].evidence[key] == pytest.approx(here[-1].evidence[key], rel=0.01), key
    assert (there[-1].start_ts, there[-1].end_ts) == (here[-1].start_ts, here[-1].end_ts)


def test_anticlockwise_is_left() -> None:
    det = AirOrbitDetector(AirOrbitConfig(), Environment())
    alerts = run_direct(det, circle(T0, 600, 1500.0, 120.0, clockwise=False))
    assert alerts and alerts[0].evidence["direction"] == "left"


def test_one_turn_or_a_short_circle_is_not_an_orbit() -> None:
    det = AirOrbitDetector(AirOrbitConfig(), Environment())
    assert run_direct(det, circle(T0, 200, 2000.0, 180.0)) == []  # 1.1 turns
    assert (
        run_direct(det, circle(T0, 200, 300.0, 60.0) + straight(T0 + 200, 600, LAT0, LON0, 90.0, 120.0)) == []
    )  # 3 turns in 200 s


def test_a_circle_wider_than_the_radius_is_not_an_orbit() -> None:
    det = AirOrbitDetector(AirOrbitConfig(radius_m=5000.0), Environment())
    assert run_direct(det, circle(T0, 1800, 8000.0, 600.0)) == []


def test_a_lawnmower_and_a_straight_line_stay_quiet() -> None:
    det = AirOrbitDetector(AirOrbitConfig(), Environment())
    track: list[Position] = []
    ts, lat, lon = T0, LAT0, LON0
    for leg in range(12):  # 4 km lines 1 km apart, alternating 180° turns
        course = 0.0 if leg % 2 == 0 else 180.0
        seg = straight(ts, 80, lat, lon, course, 100.0)
        track += seg
        ts += 80
        last = seg[-1]
        turn = circle(ts, 30, 500.0, 60.0, clockwise=leg % 2 == 0)  # a half circle
        track += [
            fix(
                ts + i,
                last.lat,
                last.lon + (i / 30) * 1000.0 / (M_PER_DEG * 0.64),
                100.0,
                course + (180.0 * i / 30) * (1 if leg % 2 == 0 else -1),
            )
            for i in range(30)
        ]
        ts += 30
        lat, lon = last.lat, last.lon + 1000.0 / (M_PER_DEG * 0.64)
        del turn
    assert run_direct(det, track) == []
    assert run_direct(det, straight(T0, 3600, LAT0, LON0, 45.0, 250.0)) == []


def test_heading_noise_without_net_turning_is_not_an_orbit() -> None:
    det = AirOrbitDetector(AirOrbitConfig(), Environment())
    rng = random.Random(7)
    track = straight(T0, 1800, LAT0, LON0, 90.0, 40.0)
    for f in track:  # ±25° jitter on the reported track of a slow aircraft
        assert f.course_deg is not None
        f.course_deg = (f.course_deg + rng.uniform(-25, 25)) % 360.0
    assert run_direct(det, track) == []


def test_circuits_low_over_an_airfield_are_airfield_traffic() -> None:
    # a 1.2 km circle over Lydd (EGMD) at 800 ft: circuits; the same at 5,000 ft is reported
    det = AirOrbitDetector(AirOrbitConfig(), Environment())
    k = math.cos(math.radians(50.9561))
    low = []
    high = []
    for f in circle(T0, 900, 1200.0, 120.0):
        lat = 50.9561 + (f.lat - LAT0)
        lon = 0.93917 + (f.lon - LON0) * math.cos(math.radians(LAT0)) / k
        low.append(fix(f.ts, lat, lon, f.speed_kn or 0.0, f.course_deg or 0.0, alt=800.0))
        high.append(fix(f.ts, lat, lon, f.speed_kn or 0.0, f.course_deg or 0.0, alt=5000.0))
    assert run_direct(det, low) == []
    assert run_direct(det, high) != []


def test_silence_closes_and_expire_forgets_the_track() -> None:
    det = AirOrbitDetector(AirOrbitConfig(), Environment())
    state: AirOrbitState | None = None
    out: list[Alert] = []
    for f in circle(T0, 900, 2000.0, 180.0):
        state, alerts = det.step(state, f, TrackContext())
        out += alerts
    assert state is not None and out[-1].status == "open"
    due = det.deadline(state)
    assert due is not None and due <= state.last_ts + det.cfg.max_gap_s
    left, closing = det.expire(state, state.last_ts + det.cfg.max_gap_s)
    assert left is None
    assert [a.status for a in closing] == ["closed"]


# ---------------------------------------------------------------- invariants


@pytest.fixture(scope="module")
def gtekv_slice(shared_data: Path) -> list[Position]:
    track = flight(shared_data, "surveillance_drone_GTEKV")
    return [p for p in track if t("2020-04-17", "05:15:00") <= p.ts <= t("2020-04-17", "06:20:00")]


def _copy(records: list[Position]) -> list[Position]:
    return [dataclasses.replace(p) for p in records]


def _wire(alerts: list[Alert]) -> list[dict[str, object]]:
    return sorted((a.to_wire() for a in alerts), key=lambda w: (str(w["id"]), int(str(w["revision"]))))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), jitter=st.floats(0.0, 55.0))
def test_reordering_within_grace_gives_the_same_alerts(
    gtekv_slice: list[Position], settings: Settings, seed: int, jitter: float
) -> None:
    # Arrival order: event time plus a random delay below the grace period (60 s), so no
    # position arrives later than the grace allows; the pipeline must give the same revisions.
    rng = random.Random(seed)
    baseline = _wire(
        run_pipeline(
            _copy(gtekv_slice), settings, Environment(), detectors=[AirOrbitDetector(AirOrbitConfig(), Environment())]
        )
    )
    assert baseline  # the slice holds patrol orbits
    keyed = sorted(_copy(gtekv_slice), key=lambda p: p.ts + rng.uniform(0.0, jitter))
    shuffled = _wire(
        run_pipeline(keyed, settings, Environment(), detectors=[AirOrbitDetector(AirOrbitConfig(), Environment())])
    )
    assert shuffled == baseline


@pytest.mark.parametrize("grace_s", [0.0, 5.0, 600.0])
def test_batching_by_grace_gives_the_same_alerts(
    gtekv_slice: list[Position], settings: Settings, grace_s: float
) -> None:
    # The grace period decides how positions are released and expiries run in batches.
    det = AirOrbitDetector(AirOrbitConfig(), Environment())
    baseline = _wire(run_pipeline(_copy(gtekv_slice), settings, Environment(), detectors=[det]))
    other = dataclasses.replace(settings, pipeline=dataclasses.replace(settings.pipeline, grace_s=grace_s))
    assert _wire(run_pipeline(_copy(gtekv_slice), other, Environment(), detectors=[det])) == baseline


def test_state_survives_a_round_trip_through_the_state_codec(gtekv_slice: list[Position]) -> None:
    codec = pytest.importorskip("detectors.state_codec")
    det = AirOrbitDetector(AirOrbitConfig(), Environment())
    whole = run_direct(det, _copy(gtekv_slice))
    state: AirOrbitState | None = None
    out: list[Alert] = []
    for i, f in enumerate(_copy(gtekv_slice)):
        if state is not None and i % 50 == 0:
            state = codec.decode(codec.encode(state))  # a worker restart
        state, alerts = det.step(state, f, TrackContext())
        out += alerts
    assert _wire(out) == _wire(whole)
