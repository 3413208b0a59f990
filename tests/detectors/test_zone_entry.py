"""Zone entry: real crossings of the configured watch zones, per-zone filters, invariants."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from detectors.base import Environment
from detectors.pipeline import NoCells, Pipeline
from detectors.track_engine import TrackEngine
from detectors.zone_entry import ZoneEntryConfig, ZoneEntryDetector, zone_filter
from models.alert import Alert
from models.errors import ConfigError
from models.position import FLAG_IMPLAUSIBLE, Position, VesselStatic
from models.settings import load_settings
from models.timeutil import parse_iso
from models.zones import Zone, ZoneIndex
from tests.conftest import final_revisions, real_track

MIN = 60.0
H = 3600.0
TOL = 2 * MIN  # entry/exit are the first fix inside / the last fix inside
SETTINGS = load_settings()
CFG = ZoneEntryConfig()


def t(hhmmss: str, day: str = "2020-06-04") -> float:
    return parse_iso(f"{day}T{hhmmss}Z")




def run(
    records: Iterable[Position | VesselStatic], zones: ZoneIndex = SETTINGS.zones, cfg: ZoneEntryConfig = CFG
) -> list[Alert]:
    env = Environment(zones=zones)
    pipeline = Pipeline(SETTINGS, env, detectors=[ZoneEntryDetector(cfg, env)], cells=NoCells())
    out: list[Alert] = []
    for rec in records:
        out.extend(pipeline.push(rec))
    out.extend(pipeline.finish())
    return out


def entries(alerts: Iterable[Alert]) -> list[Alert]:
    return [a for a in final_revisions(alerts) if a.kind == "zone_entry"]


# A 0.2° box at 10 N 85 W; tracks run west → east along 10 N.
BOX = box(-85.1, 9.9, -84.9, 10.1)


def zones(**props: Any) -> ZoneIndex:
    return ZoneIndex([Zone("box", "watch", BOX, properties={"name": "box", "role": "watch", **props})])


def eastward(
    mmsi: str,
    start: float,
    minutes: Iterable[float],
    lon0: float = -85.3,
    step: float = 0.005,
    sog: float | None = 12.0,
) -> list[Position]:
    """One fix a minute (for the given minutes), moving ``step``° east per minute: by default
    inside the box (85.1-84.9° W, boundary included) from minute 40 to minute 80."""
    return [Position("vessel", mmsi, start + m * MIN, 10.0, lon0 + m * step, speed_kn=sog) for m in minutes]


def clock(start: float, end: float, step: float = 5 * MIN) -> list[Position]:
    n = int((end - start) / step) + 1
    return [Position("vessel", "224000099", start + k * step, -5.0, 0.0, speed_kn=5.0) for k in range(n)]


def merged(*tracks: Iterable[Position | VesselStatic]) -> list[Position | VesselStatic]:
    return sorted((p for tr in tracks for p in tr), key=lambda p: p.ts)


# --- real crossings of the configured zones -------------------------------------------------


def test_vessel_crossing_the_chesapeake_bay_entrance() -> None:
    # MMSI 367096560 leaves its berth south of the entrance (36.83 N 75.97 W), is inside the
    # chesapeake-bay-entrance watch zone 12:03:28Z-15:56:25Z (out for 3 min at 14:05Z along
    # its northern edge: one visit), again 17:26:52Z-17:34:52Z on its way out to sea, then,
    # two days later, enters again at 12:12:08Z (still inside when the slice ends).
    # cape-henry-approaches, which it also crosses, reports only dark entries; so does the
    # configured chesapeake-bay-entrance (a busy channel: every crossing would be noise), hence
    # nothing from the configured zones, and the crossings from the same polygon unfiltered.
    track = real_track("vb_367096560_2020-06-04_to_06.csv.gz")
    assert entries(run(track)) == []
    (configured,) = [z for z in SETTINGS.zones.zones if z.name == "chesapeake-bay-entrance"]
    assert zone_filter(configured.name, configured.properties).describe() == {"dark_entry_min_gap_s": 1800.0}
    unfiltered = Zone(configured.name, "watch", configured.geometry)
    alerts = run(real_track("vb_367096560_2020-06-04_to_06.csv.gz"), ZoneIndex([unfiltered]))
    found = entries(alerts)
    expected = [
        ("closed", t("12:03:28"), t("15:56:25")),
        ("closed", t("17:26:52"), t("17:34:52")),
        ("open", t("12:12:08", "2020-06-06"), t("12:12:08", "2020-06-06")),
    ]
    assert [(a.evidence["zone"], a.entities[0].id) for a in found] == [("chesapeake-bay-entrance", "367096560")] * 3
    for alert, (status, start, end) in zip(found, expected, strict=True):
        assert alert.status == status
        assert alert.start_ts == pytest.approx(start, abs=TOL)
        assert alert.end_ts == pytest.approx(end, abs=TOL)
        assert alert.evidence["entry"] == "crossed" and "chesapeake-bay-entrance" in alert.zones
    assert found[0].evidence["exit"] == "left" and found[0].evidence["exit_position"]["lat"] < 36.85
    revisions = [a.status for a in alerts if a.id == found[0].id]
    assert revisions[0] == "open" and revisions[-1] == "closed" and set(revisions[1:-1]) == {"update"}


def test_dark_entry_into_cape_henry_approaches() -> None:
    # MMSI 367584050 works ~40 km east of Cape Henry, inside cape-henry-approaches (filter:
    # dark_entry_min_gap_s = 3600, severity high). Its first fix of the slice (00:00:10Z) is
    # a silence of unknown length: not reported. Silent from 03:26:50Z, it reappears inside
    # at 09:56:39Z after 6.5 h: a dark entry (the earlier visit closed as silent after 6 h).
    found = entries(run(real_track("vb_367584050_2020-06-05_gap.csv.gz")))
    assert [(a.evidence["zone"], a.evidence["entry"], a.severity, a.entities[0].id) for a in found] == [
        ("cape-henry-approaches", "after_gap", "high", "367584050")
    ]
    (dark,) = found
    assert dark.start_ts == pytest.approx(t("09:56:39", "2020-06-05"), abs=TOL)
    assert dark.end_ts >= dark.start_ts + H  # still inside at the end of the slice (hourly updates)
    assert dark.evidence["entry_gap_s"] == pytest.approx(23389, abs=TOL)
    assert dark.evidence["filters"] == {"dark_entry_min_gap_s": 3600.0}
    assert dark.status in ("open", "update")


# --- entries, exits, filters ------------------------------------------------------------------


def test_crossing_a_zone_opens_then_closes_with_the_zone_name() -> None:
    # Minutes 40-80 inside the box; leaving is confirmed after leave_after_s (10 min outside).
    start = t("10:00:00")
    alerts = [a for a in run(eastward("224000001", start, range(120)), zones()) if a.kind == "zone_entry"]
    assert [(a.status, a.start_ts, a.end_ts) for a in alerts] == [
        ("open", start + 40 * MIN, start + 40 * MIN),
        ("closed", start + 40 * MIN, start + 79 * MIN),
    ]
    closed = alerts[-1]
    assert closed.zones == ("box",) and closed.evidence["exit"] == "left"
    assert closed.evidence["exit_position"]["time"] == "2020-06-04T11:20:00Z"
    assert closed.evidence["positions"] == 40 and closed.evidence["duration_s"] == 39 * MIN


def test_two_overlapping_zones_give_two_alerts() -> None:
    index = ZoneIndex([Zone("a", "watch", BOX), Zone("b", "watch", box(-85.0, 9.9, -84.8, 10.1))])
    found = entries(run(eastward("224000001", t("10:00:00"), range(140)), index))
    assert sorted(a.evidence["zone"] for a in found) == ["a", "b"]
    assert len({a.id for a in found}) == 2


def test_running_along_the_boundary_is_one_visit() -> None:
    # In, out for 3 min, in again: one visit (leave_after_s = 10 min).
    start = t("10:00:00")
    minutes = list(range(30, 55))
    track = eastward("224000001", start, minutes)
    out = [Position("vessel", "224000001", start + m * MIN, 10.2, -85.0, speed_kn=12.0) for m in range(55, 58)]
    back = eastward("224000001", start, range(58, 100))  # inside to minute 79, then east of the box
    found = entries(run(merged(track, out, back, clock(start, start + 2 * H)), zones()))
    assert len(found) == 1 and found[0].status == "closed"
    assert (found[0].start_ts, found[0].end_ts) == (start + 40 * MIN, start + 79 * MIN)


def test_first_fix_inside_is_an_entry_unless_configured_otherwise() -> None:
    start = t("10:00:00")
    inside = eastward("224000001", start, range(50, 70))
    found = entries(run(inside, zones()))
    assert [(a.evidence["entry"], a.start_ts) for a in found] == [("first_seen", start + 50 * MIN)]
    assert entries(run(inside, zones(), ZoneEntryConfig(first_fix_is_entry=False))) == []


@pytest.mark.parametrize(
    ("ship_type", "reported"),
    [(70, False), (31, True), (52, True), (None, True)],
    ids=["cargo", "towing", "tug", "unknown"],
)
def test_ship_type_filter(ship_type: int | None, reported: bool) -> None:
    start = t("10:00:00")
    track: list[Position | VesselStatic] = list(eastward("224000001", start, range(100)))
    if ship_type is not None:
        track.insert(0, VesselStatic("224000001", start - 1, ship_type=ship_type))
    found = entries(run(track, zones(ship_types=["30-39", 52])))
    assert bool(found) is reported
    if found:
        assert found[0].evidence["ship_type"] == ship_type
        assert found[0].evidence["filters"] == {"ship_types": ["30-39", 52]}


def test_speed_filter_opens_when_the_vessel_slows_inside() -> None:
    # Enters at 12 kn at minute 40, slows to 2 kn from minute 60: a max_speed_kn = 3 zone
    # reports the visit from its entry, matched when it slowed.
    start = t("10:00:00")
    fast = eastward("224000001", start, range(60))
    slow = eastward("224000001", start, range(60, 90), lon0=-85.06, step=0.001, sog=2.0)
    (alert,) = entries(run(merged(fast, slow), zones(max_speed_kn=3)))
    assert alert.start_ts == start + 40 * MIN
    assert alert.evidence["matched_at"] == "2020-06-04T11:00:00Z" and alert.evidence["speed_kn"] == 2.0
    assert entries(run(fast, zones(max_speed_kn=3))) == []
    assert entries(run(merged(fast, slow), zones(min_speed_kn=20))) == []


def test_dark_entry_filter_reports_only_appearances_after_silence() -> None:
    start = t("10:00:00")
    zone = zones(dark_entry_min_gap_s=3600)
    crossing = eastward("224000001", start, range(120))
    assert entries(run(merged(crossing, clock(start, start + 3 * H)), zone)) == []
    # Silent from minute 20 (outside) to minute 110, then appears inside: a dark entry.
    dark = eastward("224000002", start, [*range(20), *range(110, 130)], step=0.0035)
    found = entries(run(merged(dark, clock(start, start + 3 * H)), zone))
    assert [(a.evidence["entry"], a.evidence["entry_gap_s"]) for a in found] == [("after_gap", 91 * MIN)]
    # A track whose very first fix is inside: its silence is unknown, not proven dark.
    assert entries(run(eastward("224000003", start, range(50, 70)), zone)) == []


def test_silence_inside_closes_the_visit_and_the_return_is_a_new_entry() -> None:
    start = t("10:00:00")
    before = eastward("224000001", start, range(40, 50))
    after = eastward("224000001", start, range(50 + 7 * 60, 50 + 7 * 60 + 10), lon0=-85.3 - 7 * 60 * 0.005)
    found = entries(run(merged(before, after, clock(start, start + 15 * H)), zones()))
    assert [(a.status, a.evidence["entry"], a.evidence["exit"]) for a in found] == [
        ("closed", "first_seen", "silent"),
        ("closed", "after_gap", "silent"),
    ]
    assert found[0].end_ts == start + 49 * MIN


def test_visit_across_utc_midnight_is_one_alert() -> None:
    # Half speed: inside from 23:50 to 01:09 the next day, then out.
    start = t("22:30:00")
    (alert,) = entries(run(eastward("224000001", start, range(200), step=0.0025), zones()))
    assert alert.status == "closed"
    assert (alert.start_ts, alert.end_ts) == (t("23:50:00"), t("01:09:00", "2020-06-05"))


def test_implausible_jump_into_a_zone_is_not_an_entry() -> None:
    start = t("10:00:00")
    track = eastward("224000001", start, range(30))
    jump = Position("vessel", "224000001", start + 30 * MIN + 1, 10.0, -85.0, speed_kn=12.0)  # 30 km in 1 s
    found = entries(run([*track, jump, *eastward("224000001", start, range(31, 35))], zones()))
    assert found == []
    assert jump.flags & FLAG_IMPLAUSIBLE


@pytest.mark.parametrize(
    "props",
    [
        {"ship_types": "cargo"},
        {"ship_types": [300]},
        {"ship_types": ["7x"]},
        {"max_speed_kn": -1},
        {"severity": "urgent"},
    ],
)
def test_bad_zone_filters_are_config_errors(props: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="properties"):
        zone_filter("box", props)
    with pytest.raises(ConfigError):
        ZoneEntryDetector(CFG, Environment(zones=zones(**props)))


def test_zone_filters_are_part_of_the_config_hash() -> None:
    a = ZoneEntryDetector(CFG, Environment(zones=zones()))
    b = ZoneEntryDetector(CFG, Environment(zones=zones(max_speed_kn=3)))
    assert a.info.config_hash != b.info.config_hash


# --- event-time invariants --------------------------------------------------------------------

# The configured zones, plus the chesapeake-bay-entrance polygon reporting every entry (the
# configured one reports only dark entries): visits opening and closing for the invariants.
ENTRANCE = next(z.geometry for z in SETTINGS.zones.zones if z.name == "chesapeake-bay-entrance")
EVERY_ENTRY = Zone("entrance-every-entry", "watch", ENTRANCE)
INVARIANT_ZONES = ZoneIndex([*SETTINGS.zones.zones, EVERY_ENTRY])

REAL = merged(
    real_track("vb_367096560_2020-06-04_to_06.csv.gz"),
    real_track("vb_367584050_2020-06-05_gap.csv.gz"),
    real_track("vb_367584050_2020-06-04.csv.gz"),
)


def _copy(p: Position | VesselStatic) -> Position:
    assert isinstance(p, Position)
    return Position(p.entity_type, p.entity_id, p.ts, p.lat, p.lon, speed_kn=p.speed_kn)


def _signature(alerts: Iterable[Alert]) -> list[tuple[Any, ...]]:
    return sorted((a.id, a.revision, a.status, a.start_ts, a.end_ts, repr(sorted(a.evidence.items()))) for a in alerts)


BASELINE = _signature(run([_copy(p) for p in REAL], INVARIANT_ZONES))


def test_baseline_has_zone_alerts() -> None:
    assert len({s[0] for s in BASELINE}) >= 4


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_reordering_within_grace_gives_the_same_alerts(seed: int) -> None:
    rng = random.Random(seed)
    grace = SETTINGS.pipeline.grace_s
    shuffled = sorted(REAL, key=lambda p: p.ts + rng.uniform(0, 0.9 * grace))
    assert _signature(run([_copy(p) for p in shuffled], INVARIANT_ZONES)) == BASELINE


@settings(max_examples=10, deadline=None)
@given(every=st.sampled_from([1, 3, 17, 200, 100_000]))
def test_expiry_cadence_never_changes_the_alerts(every: int) -> None:
    def engine_run(step: int) -> list[Alert]:
        env = Environment(zones=INVARIANT_ZONES)
        engine = TrackEngine([ZoneEntryDetector(CFG, env)], SETTINGS.cleaning, SETTINGS.pipeline)
        out: list[Alert] = []
        for i, rec in enumerate(REAL, start=1):
            out.extend(engine.process(_copy(rec)).alerts)
            if i % step == 0:
                out.extend(engine.expire(rec.ts))
        out.extend(engine.expire(REAL[-1].ts + 1))
        return out

    assert _signature(engine_run(every)) == _signature(engine_run(1))


def test_state_survives_a_restart_from_its_serialised_form() -> None:
    # A faust Table holds the state as JSON: encoding and decoding it at any point (a worker
    # restart) changes nothing.
    import json

    from detectors.state_codec import decode, encode

    def engine_run(restart_every: int) -> list[Alert]:
        engine = TrackEngine(
            [ZoneEntryDetector(CFG, Environment(zones=INVARIANT_ZONES))], SETTINGS.cleaning, SETTINGS.pipeline
        )
        out: list[Alert] = []
        for i, rec in enumerate(REAL, start=1):
            out.extend(engine.process(_copy(rec)).alerts)
            out.extend(engine.expire(rec.ts - SETTINGS.pipeline.grace_s))
            if i % restart_every == 0:
                for track in engine.tracks.values():
                    track.det = [decode(json.loads(json.dumps(encode(s)))) for s in track.det]
        out.extend(engine.expire(REAL[-1].ts + 1))
        return out

    assert _signature(engine_run(37)) == _signature(engine_run(10**9))
