"""Spoofing: shared MMSIs and ghosts on real tracks, glitches that must stay quiet, the rules."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Environment
from detectors.pipeline import NoCells, Pipeline
from detectors.spoofing import SpoofingConfig, SpoofingDetector, mmsi_problem
from detectors.track_engine import TrackEngine
from models.alert import Alert
from models.position import Position
from models.settings import load_settings
from models.timeutil import parse_iso
from tests.conftest import final_revisions, real_track

MIN = 60.0
H = 3600.0
TOL = 10 * MIN  # evidence is counted at most once per burst_s (5 min): start/end within 10 min
SETTINGS = load_settings()
CFG = SpoofingConfig()


def t(hhmmss: str, day: str = "2020-06-30") -> float:
    return parse_iso(f"{day}T{hhmmss}Z")


class HalfLand:
    """Everything east of 80° W is land (a coastline along the meridian); no ports."""

    def __init__(self) -> None:
        self.land_calls = 0

    def distance_to_port_m(self, lat: float, lon: float) -> float:
        return float("inf")

    def distance_to_shore_m(self, lat: float, lon: float) -> float:
        return 0.0 if lon > -80.0 else abs(lon + 80.0) * 100_000

    def on_land(self, lat: float, lon: float) -> bool:
        self.land_calls += 1
        return lon > -80.0


def run(records: Iterable[Position], env: Environment | None = None, cfg: SpoofingConfig = CFG) -> list[Alert]:
    env = env or Environment()
    pipeline = Pipeline(SETTINGS, env, detectors=[SpoofingDetector(cfg, env)], cells=NoCells())
    out: list[Alert] = []
    for rec in records:
        out.extend(pipeline.push(rec))
    out.extend(pipeline.finish())
    return out


def clock(start: float, end: float, step: float = 5 * MIN) -> list[Position]:
    """Another (honest) vessel far away whose reports move the watermark on."""
    n = int((end - start) / step) + 1
    return [Position("vessel", "224000099", start + k * step, -5.0, 0.0 + k * 1e-4, speed_kn=5.0) for k in range(n)]


def merged(*tracks: Iterable[Position]) -> list[Position]:
    return sorted((p for tr in tracks for p in tr), key=lambda p: p.ts)


def spoofing(alerts: Iterable[Alert], mmsi: str | None = None) -> list[Alert]:
    return [a for a in final_revisions(alerts) if a.kind == "spoofing" and (mmsi is None or a.entities[0].id == mmsi)]


# --- real positives -------------------------------------------------------------------------


def test_shared_mmsi_on_the_illinois_waterway() -> None:
    # MMSI 368134280 (us_coastal 2020-06-30): from 11:01Z reports alternate every 1-2 min
    # between a vessel moored at 41.514 N 88.090 W and another 18 km away near 41.672 N
    # 88.028 W, until 19:32Z when only the second remains (to 20:52Z). One alert for the
    # whole episode, not one per jump.
    alerts = run(real_track("uc_368134280_shared_mmsi.csv.gz"))
    (alert,) = spoofing(alerts)
    assert (alert.kind, alert.status, [e.id for e in alert.entities]) == ("spoofing", "closed", ["368134280"])
    assert alert.start_ts == pytest.approx(t("11:01:13"), abs=TOL)
    assert alert.end_ts == pytest.approx(t("19:32:55"), abs=TOL)
    ev = alert.evidence
    assert "shared_mmsi" in ev["reasons"] and ev["alternations"] > 50
    assert ev["max_implied_speed_kn"] > 500  # 18 km in about a minute
    assert 17_000 < ev["max_jump_m"] < 21_000
    assert 1 < len(ev["positions"]) <= CFG.max_examples
    # The conflicting positions: each example names the fix and the track position it contradicts.
    places = {(round(p["lat"], 1), round(p["lon"], 1)) for p in ev["positions"]}
    places |= {(round(p["track_lat"], 1), round(p["track_lon"], 1)) for p in ev["positions"]}
    assert {(41.5, -88.1), (41.7, -88.0)} <= places
    # One id through open, updates and close.
    revisions = [a for a in alerts if a.id == alert.id]
    assert revisions[0].status == "open" and [a.revision for a in revisions] == list(range(1, len(revisions) + 1))


def test_shared_mmsi_on_the_fraser_river() -> None:
    # MMSI 316039006 (us_coastal): a vessel at 49.2004 N 123.1206 W while another transmitter
    # with the same MMSI reports from 49.2029 N 123.0457 W, 5.5 km away, every few minutes.
    # With 3-10 min between reports most returns look "possible" at 50 kn: only the ones
    # faster than that are flagged, and the detector sees two bursts of alternation.
    alerts = spoofing(run(real_track("uc_316039006_shared_mmsi.csv.gz")))
    assert [(a.status, "shared_mmsi" in a.evidence["reasons"]) for a in alerts] == [("closed", True), ("closed", True)]
    first, second = alerts
    assert first.start_ts == pytest.approx(t("14:14:00"), abs=TOL)
    assert first.end_ts == pytest.approx(t("15:20:00"), abs=TOL)
    assert second.start_ts == pytest.approx(t("18:44:00"), abs=TOL)
    assert second.end_ts == pytest.approx(t("20:43:44"), abs=TOL)
    assert all(5_000 < a.evidence["max_jump_m"] < 6_000 for a in alerts)


def test_ghost_transmitter_beside_a_moving_vessel() -> None:
    # MMSI 367541980 (us_coastal): a vessel under way at ~4.5 kn off Mississippi Sound while
    # reports with its MMSI keep coming from one fixed point (30.3320 N 88.5106 W) 8-19 km
    # away, 19:27:50Z-20:54:12Z. The track ends at 21:00Z; another vessel keeps the clock.
    track = real_track("uc_367541980_ghost.csv.gz")
    (alert,) = spoofing(run(merged(track, clock(t("18:00:00"), t("23:00:00")))))
    assert alert.status == "closed"
    assert alert.start_ts == pytest.approx(t("19:27:50"), abs=TOL)
    assert alert.end_ts == pytest.approx(t("20:54:12"), abs=TOL)
    ev = alert.evidence
    assert ev["alternations"] >= 6 and ev["max_implied_speed_kn"] > 3000
    ghost = {(round(p["lat"], 3), round(p["lon"], 3)) for p in ev["positions"]}
    assert ghost == {(30.332, -88.511)}


def test_invalid_mmsi_is_reported_once_with_low_severity() -> None:
    # MMSI 896876500 (towing vessel MACKENZIE ROSE, NY first hour) starts with 8: not a ship
    # station. One low-severity alert at its first fix, closed after the quiet hour.
    track = real_track("nyh_896876500_first_hour.csv.gz")
    alerts = spoofing(run(merged(track, clock(t("00:00:00"), t("02:30:00")))))
    assert [(a.entities[0].id, a.status, a.severity, a.evidence["reasons"]) for a in alerts] == [
        ("896876500", "closed", "low", ["invalid_mmsi"])
    ]
    assert alerts[0].start_ts == track[0].ts and alerts[0].evidence["mmsi_problem"] == "not_a_ship_station"


# --- real negatives -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "implausible_at_least"),
    [
        # 8 vessels in the Gulf during the 12:51-12:52Z burst: same-second rows 10-30 km apart
        ("uc_gulf_burst_2020-06-30T1230-1315.csv.gz", 20),
        # 5 vessels off Southern California during the 19:02Z burst
        ("uc_socal_burst_2020-06-30T1845-1915.csv.gz", 5),
        # a 28 kn boat whose timestamps jitter: 1.5-1.8 km in about a minute reads as 54-56 kn
        ("uc_367199310_fast_jitter.csv.gz", 3),
    ],
    ids=["gulf-burst", "socal-burst", "fast-boat-jitter"],
)
def test_bursts_and_timestamp_jitter_are_not_spoofing(name: str, implausible_at_least: int) -> None:
    env = Environment()
    pipeline = Pipeline(SETTINGS, env, detectors=[SpoofingDetector(CFG, env)], cells=NoCells())
    alerts: list[Alert] = []
    for rec in real_track(name):
        alerts.extend(pipeline.push(rec))
    alerts.extend(pipeline.finish())
    assert pipeline.stats.implausible >= implausible_at_least  # the cleaner did flag them
    assert spoofing(alerts) == []


# --- the rules, on readable synthetic tracks ------------------------------------------------


def _at_sea(mmsi: str, start: float, n: int, step: float = MIN, lon: float = -80.5) -> list[Position]:
    return [Position("vessel", mmsi, start + k * step, 25.0 + k * 2e-4, lon, speed_kn=6.0) for k in range(n)]


def _jump(p: Position, dlat: float = 0.5) -> Position:
    """A report ~55 km away from where the vessel is: about 3,000 kn in a minute."""
    return Position("vessel", p.entity_id, p.ts + 1, p.lat + dlat, p.lon, speed_kn=6.0)


def _trawlers_sharing_an_mmsi(apart_km: float, every_s: float = 30 * MIN, hours: float = 4.0) -> list[Position]:
    """Two trawlers working 3 kn, ``apart_km`` apart, both transmitting 224000001, each heard by
    satellite every ``every_s``, the second half an interval after the first."""
    out = []
    start = t("10:00:00")
    for k in range(int(hours * H / every_s)):
        for lat, offset in ((25.0, 0.0), (25.0 + apart_km / 111.2, every_s / 2)):
            ts = start + k * every_s + offset
            drift = 3.0 * 1852 / 3600 * (ts - start) / 111_200  # east at 3 kn, in degrees of longitude (near enough)
            out.append(Position("vessel", "224000001", ts, lat, -80.5 + drift, speed_kn=3.0, course_deg=90.0))
    return out


def test_shared_mmsi_heard_by_satellite_is_found_by_the_speeds_it_reports() -> None:
    # 20 km apart and 15 min between reports: 43 kn between them, under the cleaner's 50 kn
    # limit, so no fix is implausible; but each vessel reports 3 kn. The alternations at
    # 10:45, 11:15 and 11:45 (one per return, each 30 min apart) open the episode.
    track = _trawlers_sharing_an_mmsi(20.0)
    assert not any(p.flags for p in track)
    (alert,) = spoofing(run(track))
    assert alert.evidence["reasons"] == ["shared_mmsi"]
    assert alert.start_ts == pytest.approx(t("10:45:00"), abs=MIN)
    assert alert.end_ts == pytest.approx(t("13:45:00"), abs=MIN)
    # Without the reported speeds, the same track says nothing.
    assert spoofing(run(track, cfg=SpoofingConfig(sog_mismatch_kn=0.0))) == []


def test_honest_tracks_that_outrun_their_reported_speed_are_not_spoofing() -> None:
    # A fast boat whose AIS reports 0 kn while it runs 30 kn along a straight line (a wrong
    # speed source): every leg outruns its reports, but it never comes back.
    start = t("10:00:00")
    stuck = [Position("vessel", "224000002", start + k * 600, 25.0, -80.5 + k * 0.09, speed_kn=0.0) for k in range(30)]
    assert spoofing(run(stuck)) == []
    # A water taxi with that fault, shuttling 3 km each way at 32 kn for an hour, heard every
    # 10 s: no leg between two reports reaches mismatch_min_jump_m, so the track follows it.
    taxi = []
    for k in range(0, 3600, 10):
        phase = (k % 360) / 180.0  # 0 → 1 out, 1 → 2 back
        frac = phase if phase <= 1.0 else 2.0 - phase
        taxi.append(Position("vessel", "224000003", start + k, 25.0, -80.5 + 0.0298 * frac, speed_kn=0.0))
    assert spoofing(run(taxi)) == []
    # Two vessels 8 km apart at 15 min: 17 kn between them, within what a vessel can do.
    assert spoofing(run(_trawlers_sharing_an_mmsi(8.0))) == []


def test_single_glitch_is_not_spoofing() -> None:
    track = _at_sea("224000001", t("10:00:00"), 120)
    track.insert(60, _jump(track[59]))
    assert spoofing(run(track)) == []


def test_burst_of_glitches_counts_once() -> None:
    # Five wild reports within two minutes: one event (burst_s), below min_events.
    track = _at_sea("224000001", t("10:00:00"), 120)
    for k in (60, 61, 62):
        track.append(_jump(track[k], 0.3 + 0.1 * k % 3))
    assert spoofing(run(sorted(track, key=lambda p: p.ts))) == []


def test_repeated_teleports_open_one_episode_and_quiet_closes_it() -> None:
    # Wild reports at 10:30, 10:40 and 10:50 (each far from the track and from each other):
    # three counted events within the hour open an episode at 10:30; nothing after 10:50,
    # so it closes an hour later with end = 10:50.
    track = _at_sea("224000001", t("10:00:00"), 240)
    for k, dlat in ((30, 0.5), (40, -0.6), (50, 0.9)):
        track.append(_jump(track[k], dlat))
    alerts = run(sorted(track, key=lambda p: p.ts))
    (alert,) = spoofing(alerts)
    assert (alert.status, alert.evidence["reasons"], alert.severity) == ("closed", ["teleport"], "medium")
    assert (alert.start_ts, alert.end_ts) == (t("10:30:01"), t("10:50:01"))
    assert alert.evidence["teleports"] == 3 and alert.evidence["evidence_events"] == 3
    assert [a.status for a in alerts if a.id == alert.id] == ["open", "closed"]
    # fewer events needed → it opens at the first
    loose = SpoofingConfig(min_events=1)
    (early,) = spoofing(run(sorted(track, key=lambda p: p.ts), cfg=loose))
    assert early.start_ts == t("10:30:01")


def test_episode_across_utc_midnight_is_one_alert() -> None:
    track = _at_sea("224000001", t("23:00:00"), 120)
    for k, dlat in ((50, 0.5), (60, -0.6), (70, 0.9)):  # 23:50, 00:00, 00:10
        track.append(_jump(track[k], dlat))
    (alert,) = spoofing(run(sorted(track, key=lambda p: p.ts)))
    assert (alert.start_ts, alert.end_ts) == (t("23:50:01"), t("00:10:01", "2020-07-01"))


def test_teleport_onto_land_is_high_severity() -> None:
    # A vessel at sea (80.5° W) suddenly reports from 79.5° W, 100 km inland, and stays there
    # 20 min (a spoofed GNSS fix, an airport-style cluster), then comes back to sea.
    geo = HalfLand()
    env = Environment(geography=geo)
    sea = _at_sea("224000001", t("10:00:00"), 30)
    inland = [Position("vessel", "224000001", t("10:30:00") + k * MIN, 25.5, -79.5, speed_kn=0.0) for k in range(20)]
    back = _at_sea("224000001", t("10:50:00"), 60)
    alerts = run(merged(sea, inland, back, clock(t("10:00:00"), t("13:00:00"))), env)
    (alert,) = spoofing(alerts)
    assert alert.status == "closed" and alert.severity == "high"
    assert set(alert.evidence["reasons"]) == {"on_land", "teleport"}
    assert alert.start_ts == t("10:30:00")  # the jump onto land
    assert alert.evidence["land_fixes"] >= 1
    assert any(p["kind"] == "on_land" and p["lon"] == -79.5 for p in alert.evidence["positions"])


def test_vessel_on_a_river_is_not_on_land_evidence() -> None:
    # A coastline mask has no rivers: a vessel that is "on land" from its first fix, moving
    # at river speed, is never evidence (only a jump from water onto land starts it).
    geo = HalfLand()
    env = Environment(geography=geo)
    river = [
        Position("vessel", "224000001", t("10:00:00") + k * MIN, 30.0 + k * 1e-3, -79.0, speed_kn=6.0)
        for k in range(240)
    ]
    assert spoofing(run(river, env)) == []
    assert geo.land_calls == 0  # and no land lookups for plausible fixes


def test_land_near_the_coast_is_within_the_coastline_margin() -> None:
    # Jumping to a point 1 km inland (inside the ~1 km coastline resolution margin) is not land evidence.
    env = Environment(geography=HalfLand())
    sea = _at_sea("224000001", t("10:00:00"), 30, lon=-80.3)
    near = [Position("vessel", "224000001", t("10:30:00") + k * MIN, 25.3, -79.99, speed_kn=0.0) for k in range(20)]
    alerts = spoofing(run(merged(sea, near, clock(t("10:00:00"), t("13:00:00"))), env))
    assert all("on_land" not in a.evidence["reasons"] for a in alerts)


def test_invalid_mmsi_joined_by_jumps_becomes_high() -> None:
    track = _at_sea("941000001", t("10:00:00"), 240)
    for k, dlat in ((30, 0.5), (40, -0.6), (50, 0.9)):
        track.append(_jump(track[k], dlat))
    alerts = spoofing(run(sorted(track, key=lambda p: p.ts)))
    assert [(a.evidence["reasons"], a.severity) for a in alerts] == [(["invalid_mmsi", "teleport"], "high")]
    assert alerts[0].start_ts == t("10:00:00")  # the invalid-MMSI episode was still open


@pytest.mark.parametrize(
    ("mmsi", "problem"),
    [
        ("0", "known_default"),
        ("1193046", "known_default"),
        ("123456789", "known_default"),
        ("416000000", "known_default"),
        ("366000000", "country_code_only"),
        ("222222222", "repeated_digit"),
        ("941001073", "not_a_ship_station"),
        ("864972424", "not_a_ship_station"),
        ("122292919", "not_a_ship_station"),
        ("002320000", "not_a_ship_station"),
        ("98X", "not_an_mmsi"),
        ("367123450", None),
        ("982123456", None),  # craft associated with a parent ship
        ("992351234", None),  # aid to navigation
        ("970123456", None),  # AIS-SART
        ("111232506", None),  # SAR aircraft
    ],
)
def test_mmsi_problems(mmsi: str, problem: str | None) -> None:
    assert mmsi_problem(mmsi, frozenset(CFG.invalid_mmsis), CFG.non_ship_prefixes) == problem


def test_invalid_mmsi_reporting_can_be_switched_off() -> None:
    track = _at_sea("941000001", t("10:00:00"), 60)
    assert spoofing(run(track, cfg=SpoofingConfig(report_invalid_mmsi=False))) == []


# --- event-time invariants --------------------------------------------------------------------

REAL = merged(
    real_track("uc_368134280_shared_mmsi.csv.gz"),
    real_track("uc_367541980_ghost.csv.gz"),
    real_track("uc_gulf_burst_2020-06-30T1230-1315.csv.gz"),
    real_track("uc_socal_burst_2020-06-30T1845-1915.csv.gz"),
    real_track("nyh_896876500_first_hour.csv.gz"),
)


def _copy(p: Position) -> Position:
    return Position(p.entity_type, p.entity_id, p.ts, p.lat, p.lon, speed_kn=p.speed_kn)


def _signature(alerts: Iterable[Alert]) -> list[tuple[Any, ...]]:
    return sorted((a.id, a.revision, a.status, a.start_ts, a.end_ts, repr(sorted(a.evidence.items()))) for a in alerts)


BASELINE = _signature(run([_copy(p) for p in REAL]))


def test_baseline_has_spoofing_alerts() -> None:
    assert len({s[0] for s in BASELINE}) >= 3


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_reordering_within_grace_gives_the_same_alerts(seed: int) -> None:
    # Each report may arrive up to 0.9 × grace late. Reports of one vessel with the same
    # timestamp (the bursts) keep their arrival order: ties are resolved by arrival.
    rng = random.Random(seed)
    grace = SETTINGS.pipeline.grace_s
    delay: dict[tuple[str, float], float] = {}
    for p in REAL:
        delay.setdefault((p.entity_id, p.ts), rng.uniform(0, 0.9 * grace))
    shuffled = sorted(REAL, key=lambda p: p.ts + delay[(p.entity_id, p.ts)])
    assert _signature(run([_copy(p) for p in shuffled])) == BASELINE


@settings(max_examples=10, deadline=None)
@given(every=st.sampled_from([1, 3, 17, 200, 100_000]))
def test_expiry_cadence_never_changes_the_alerts(every: int) -> None:
    def engine_run(step: int) -> list[Alert]:
        engine = TrackEngine([SpoofingDetector(CFG, Environment())], SETTINGS.cleaning, SETTINGS.pipeline)
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
        engine = TrackEngine([SpoofingDetector(CFG, Environment())], SETTINGS.cleaning, SETTINGS.pipeline)
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
