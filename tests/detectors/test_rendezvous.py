"""Vessel–vessel rendezvous: real encounters, harbour hard negatives, and the invariants.

Scenario slices are cut from ../shared/data/ais (origin in tests/data/README.md). Times in
comments are where the expected event starts and ends, from the tracks themselves.
"""

from __future__ import annotations

import gzip
import math
import random
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from shapely.geometry import box

from detectors.base import Environment
from detectors.cell_engine import CellEngine, engine_timing
from detectors.rendezvous import RendezvousConfig, RendezvousDetector
from models.alert import Alert
from models.position import Position, VesselStatic
from models.reference import ReferenceGeography, load_geography
from models.settings import Settings
from models.timeutil import parse_iso
from models.units import MPS_PER_KN
from models.zones import Zone, ZoneIndex
from streams.sources.marinecadastre import MarineCadastreDecoder
from tests.conftest import TEST_DATA, final_revisions, read_lines, run_pipeline, thinned
from tests.detectors.test_cell_engine import destination, fixes, merged

MIN = 60.0


def t(hhmmss: str, day: str = "2020-06-30") -> float:
    return parse_iso(f"{day}T{hhmmss}Z")


def real_items(path: Path) -> list[Position | VesselStatic]:
    return [
        i for i in MarineCadastreDecoder(str(path)).decode(read_lines(path)) if isinstance(i, Position | VesselStatic)
    ]


@pytest.fixture(scope="module")
def geography(settings: Settings) -> ReferenceGeography:
    """The real ports and shoreline (config/reference)."""
    return load_geography(settings)


def engine(env: Environment, **cfg: Any) -> CellEngine:
    detector = RendezvousDetector(RendezvousConfig(**cfg), env)
    return CellEngine([detector], timing=engine_timing([detector]))


def rendezvous(
    records: Iterable[Position | VesselStatic], settings: Settings, env: Environment, cells: CellEngine | None = None
) -> list[Alert]:
    """Final revisions of rendezvous alerts, the cell engine alone behind the pipeline."""
    cells = cells if cells is not None else engine(env)
    alerts = run_pipeline(records, settings, env, detectors=[], cells=cells)
    return [a for a in final_revisions(alerts) if a.kind == "rendezvous"]


def ids(alert: Alert) -> list[str]:
    return [e.id for e in alert.entities]


# ------------------------------------------------------------------- real encounters


def test_offshore_encounter_is_reported_once(settings: Settings, geography: ReferenceGeography) -> None:
    # US coastal day, ~160 km off Cape Hatteras: 303350200 and 367564890 (both fishing at
    # under 1 kn) hold within 170–500 m of each other from 12:05Z to 13:39Z.
    env = Environment(geography=geography)
    final = rendezvous(real_items(TEST_DATA / "rdv_us_coastal_303350200_367564890.csv.gz"), settings, env)
    assert [(a.kind, ids(a)) for a in final] == [("rendezvous", ["303350200", "367564890"])]
    (alert,) = final
    assert alert.start_ts == pytest.approx(t("12:05:00"), abs=3 * MIN)
    assert alert.end_ts == pytest.approx(t("13:39:00"), abs=3 * MIN)
    assert alert.status == "closed"
    ev = alert.evidence
    assert ev["min_distance_m"] < 200 and ev["median_distance_m"] <= 500
    assert all(v < 2.0 for v in ev["median_speed_kn"].values())
    assert ev["distance_to_shore_m"] > 100_000
    assert ev["duration_s"] == pytest.approx(alert.end_ts - alert.start_ts, abs=1)
    assert alert.lat == pytest.approx(32.873, abs=0.01) and alert.lon == pytest.approx(-76.41, abs=0.01)


@pytest.mark.parametrize("every_min", [11, 20, 30])
def test_offshore_encounter_heard_only_now_and_then_is_still_found(
    settings: Settings, geography: ReferenceGeography, every_min: int
) -> None:
    # The same encounter (12:05–13:39Z, 94 min) with each vessel heard only every 11, 20 or
    # 30 min: interpolated across those silences it is still one alert over about the same span;
    # the close time it needs grows with the silences (never reaching GFW's 2 h here).
    env = Environment(geography=geography)
    items = thinned(real_items(TEST_DATA / "rdv_us_coastal_303350200_367564890.csv.gz"), every_min * MIN)
    (alert,) = rendezvous(items, settings, env)
    assert ids(alert) == ["303350200", "367564890"]
    assert alert.start_ts == pytest.approx(t("12:05:00"), abs=2 * every_min * MIN)  # within two reports
    assert alert.end_ts == pytest.approx(t("13:39:00"), abs=2 * every_min * MIN)
    assert alert.evidence["sparse_share"] > 0.9
    assert 900 < alert.evidence["required_close_s"] < 7200
    # Not interpolated across them (sparse_interp_gap_s = 0), the pair is lost.
    assert rendezvous(items, settings, env, engine(env, sparse_interp_gap_s=0)) == []


def test_meeting_interrupted_by_short_gaps_is_one_alert(settings: Settings, geography: ReferenceGeography) -> None:
    # Virginia Beach file, 2020-06-04: 367571480 and 367593210 lie together mid-bay (37.003N
    # 76.224W, 5.8 km from shore) 13:06–14:58Z, 15:18–15:53Z, 16:43–17:29Z and 19:43–20:04Z:
    # runs less than 4 h apart are one alert (GFW merges encounters < 4 h apart).
    env = Environment(geography=geography)
    items = real_items(TEST_DATA / "rdv_vb_367571480_367593210_2020-06-04.csv.gz")
    final = rendezvous(items, settings, env)
    assert [ids(a) for a in final] == [["367571480", "367593210"]]
    (alert,) = final
    assert alert.start_ts == pytest.approx(t("13:06:00", "2020-06-04"), abs=3 * MIN)
    assert alert.end_ts == pytest.approx(t("20:04:00", "2020-06-04"), abs=3 * MIN)
    assert alert.evidence["runs"] >= 4
    assert alert.evidence["close_s"] < alert.evidence["duration_s"]
    # Without merging (only drop-outs up to max_interp_gap_s bridged) only the first run is
    # reported: the later ones, each too short or too lively on its own, would be lost.
    (first_run,) = rendezvous(items, settings, env, engine(env, merge_gap_s=600.0))
    assert first_run.end_ts == pytest.approx(t("14:35:00", "2020-06-04"), abs=3 * MIN)


def test_pair_drifting_across_cells_is_one_episode(settings: Settings, geography: ReferenceGeography) -> None:
    # US coastal day, off New Jersey: 367565540 and 367672970 work slowly together (~1 kn)
    # from 12:21Z (40.15N 73.91W) to 17:51Z (40.35N 73.94W), 22 km north: many cells, one alert.
    env = Environment(geography=geography)
    cells = engine(env)
    final = rendezvous(real_items(TEST_DATA / "rdv_us_coastal_367565540_367672970.csv.gz"), settings, env, cells)
    assert [ids(a) for a in final] == [["367565540", "367672970"]]
    (alert,) = final
    assert alert.start_ts == pytest.approx(t("12:21:00"), abs=3 * MIN)
    assert alert.end_ts == pytest.approx(t("17:51:00"), abs=3 * MIN)
    assert cells.counts["handoffs"] > 0


def test_vessels_in_convoy_are_not_a_rendezvous(settings: Settings, geography: ReferenceGeography) -> None:
    # Virginia Beach file, 2020-06-06: 367533420 and 368115340 travel within 50 m of each
    # other at 6–7 kn for hours (13:15–18:20Z): together, but not meeting.
    env = Environment(geography=geography)
    assert (
        rendezvous(real_items(TEST_DATA / "rdv_vb_convoy_367533420_368115340_2020-06-06.csv.gz"), settings, env) == []
    )


# ------------------------------------------------------------------ harbour negatives


def vessel_hours(path: Path) -> float:
    """Observed vessel-hours: each vessel's time between consecutive fixes, gaps over 1 h left out."""
    last: dict[str, float] = {}
    total = 0.0
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            mmsi, when = line.split(",", 2)[:2]
            ts = parse_iso(when + "Z")
            prev = last.get(mmsi)
            if prev is not None and 0 < ts - prev <= 3600:
                total += ts - prev
            last[mmsi] = ts if prev is None else max(prev, ts)
    return total / 3600.0


@pytest.mark.slow
def test_new_york_harbour_does_not_flood_rendezvous(
    settings: Settings, geography: ReferenceGeography, shared_data: Path
) -> None:
    # 229 pairs come within 100 m in the first hour (104 of them for 20 min or more), 419 in
    # the week: tugs with tows, ferries, moored ships. Port and shore exclusion leave one pair
    # in the first hour: the Sandy Hook pilot station vessel NEW JERSEY (367008110) with its
    # launch PHANTOM (367726830), 14 km offshore; NEW JERSEY reports AIS status 1 (at anchor),
    # so the status exclusion leaves no alert at all. Nothing in the week (positions only, no
    # status: port and shore exclusion alone).
    env = Environment(geography=geography)
    hour = shared_data / "ais" / "nyharbor_2020-06-30_first_hour.csv.gz"
    week = shared_data / "ais" / "nyharbor_2020-12-01_to_07.csv.gz"
    hour_alerts = rendezvous(real_items(hour), settings, env)
    week_alerts = rendezvous(real_items(week), settings, env)
    assert hour_alerts == []
    assert week_alerts == []
    per_1000_hour = 1000 * (len(hour_alerts) + 1) / vessel_hours(hour)  # 258 vessel-hours; +1: an upper bound
    per_1000_week = 1000 * (len(week_alerts) + 1) / vessel_hours(week)  # 4,569 vessel-hours; +1: an upper bound
    assert per_1000_hour <= 4.0  # reached: 0 alerts (< 3.9 per 1,000 vessel-hours; 1 alert before the status rule)
    assert per_1000_week <= 0.25  # reached: 0 alerts (< 0.22 per 1,000 vessel-hours)
    # Without the status rule the pilot station pair is reported; a pilot station is a place:
    # declared as an exclusion zone (as an analyst draws an anchorage), it stops alerting.
    no_status = rendezvous(real_items(hour), settings, env, engine(env, excluded_nav_statuses=()))
    assert [ids(a) for a in no_status] == [["367008110", "367726830"]]
    station = Zone("sandy-hook-pilot-station", "exclusion", box(-73.83, 40.43, -73.80, 40.46))
    zoned = Environment(zones=ZoneIndex([station]), geography=geography)
    assert rendezvous(real_items(hour), settings, zoned, engine(zoned, excluded_nav_statuses=())) == []


# ----------------------------------------------------------------------- synthetic rules

T0 = t("10:00:00")
LAT, LON = 33.0, -76.0  # open sea (no geography in these tests)


def meeting(
    start: float = T0, minutes: float = 40, every_a: float = 10, every_b: float = 60, speed_kn: float = 0.5
) -> list[Position]:
    """A (367000001) and B (367000002) drift east side by side, 150 m apart, from ``start`` for
    ``minutes`` (B's reports bracket that span); then B leaves north at 10 kn, still reporting."""
    drift = speed_kn * MPS_PER_KN
    a0 = destination(LAT, LON, 270.0, drift * 1800)  # A is at (LAT, LON) at `start`
    a = fixes("367000001", start - 1800, start + minutes * MIN + 3 * 3600, every_a, *a0, speed_kn=speed_kn)
    b0 = destination(LAT, LON, 0.0, 150.0)
    n = math.ceil(minutes * MIN / every_b)
    b = fixes("367000002", start + 1, start + 1 + n * every_b, every_b, *b0, speed_kn=speed_kn)  # odd seconds
    off = destination(*destination(*b0, 90.0, drift * n * every_b), 0.0, 10.0 * MPS_PER_KN * every_b)
    b += fixes("367000002", b[-1].ts + every_b, b[-1].ts + 2 * 3600, every_b, *off, speed_kn=10.0, course_deg=0.0)
    return merged(a, b)


def wire(alerts: list[Alert]) -> list[dict[str, Any]]:
    return [a.to_wire() for a in alerts]


def test_short_transfer_at_irregular_rates_is_found(settings: Settings) -> None:
    # A reports every 2 s, B every 3 min (never in the same second): a 20-minute transfer.
    final = rendezvous(meeting(minutes=20, every_a=2, every_b=180), settings, Environment())
    assert [ids(a) for a in final] == [["367000001", "367000002"]]
    assert final[0].start_ts == pytest.approx(T0, abs=2 * MIN)
    assert final[0].end_ts == pytest.approx(T0 + 20 * MIN, abs=3 * MIN)


def heard_by_satellite(hours: float, every_s: float = 1800.0) -> list[Position]:
    """A and B drift east together, 150 m apart, for ``hours`` from T0, each heard only every
    ``every_s`` (satellite AIS), A half an interval after B: never in the same slot. Then B
    leaves north at 10 kn, still heard at the same rate."""
    drift = 0.5 * MPS_PER_KN
    start_a = T0 - 3600 + every_s / 2
    a0 = destination(LAT, LON, 270.0, drift * (T0 - start_a))  # A is at (LAT, LON) at T0
    a = fixes("367000001", start_a, T0 + (hours + 3) * 3600, every_s, *a0, speed_kn=0.5)
    b0 = destination(LAT, LON, 0.0, 150.0)
    b = fixes("367000002", T0, T0 + hours * 3600, every_s, *b0, speed_kn=0.5)
    off = destination(*destination(*b0, 90.0, drift * hours * 3600), 0.0, 10.0 * MPS_PER_KN * every_s)
    b += fixes("367000002", b[-1].ts + every_s, b[-1].ts + 3 * 3600, every_s, *off, speed_kn=10.0, course_deg=0.0)
    return merged(a, b)


def test_transfer_heard_only_by_satellite_is_found(settings: Settings) -> None:
    # Offshore, where only satellites hear AIS, each vessel is heard every 30 min and never in
    # the same minute as the other: both are interpolated across the silences (GFW resamples
    # across gaps under 1 h), so a 3-h transfer is one alert spanning it.
    (alert,) = rendezvous(heard_by_satellite(3.0), settings, Environment())
    assert ids(alert) == ["367000001", "367000002"]
    assert alert.start_ts == pytest.approx(T0, abs=2 * MIN)
    assert alert.end_ts == pytest.approx(T0 + 3 * 3600, abs=3 * MIN)
    assert alert.evidence["sparse_share"] > 0.9
    assert alert.evidence["required_close_s"] == pytest.approx(3420, abs=100)  # 15 min + 0.4 × (2 h − 15 min)
    # Heard every 50 min, the same.
    (sparser,) = rendezvous(heard_by_satellite(3.0, every_s=3000.0), settings, Environment())
    assert sparser.start_ts == pytest.approx(T0, abs=2 * MIN)
    # With no interpolation across long silences (sparse_interp_gap_s = 0), each fix stands
    # alone in its slot and the pair is never compared.
    assert (
        rendezvous(heard_by_satellite(3.0), settings, Environment(), engine(Environment(), sparse_interp_gap_s=0)) == []
    )


def test_sparse_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="sparse_interp_gap_s"):
        RendezvousConfig(sparse_interp_gap_s=300.0)  # shorter than max_interp_gap_s
    with pytest.raises(ValueError, match="sparse_min_duration_s"):
        RendezvousConfig(sparse_min_duration_s=600.0)  # shorter than min_duration_s
    assert RendezvousConfig(sparse_interp_gap_s=0.0).sparse_interp_gap_s == 0.0


def test_a_meeting_heard_only_now_and_then_must_last_longer(settings: Settings) -> None:
    # Interpolated tracks are less certain than heard ones: two fishing vessels working the
    # same ground could be interpolated side by side for a while. The close time needed grows
    # with the silences interpolated across: heard every 30 min, about an hour; every hour,
    # GFW's 2 h (sparse_min_duration_s). The same 45 min heard every minute is a rendezvous.
    assert rendezvous(heard_by_satellite(0.75), settings, Environment()) == []
    (dense,) = rendezvous(heard_by_satellite(0.75, every_s=60.0), settings, Environment())
    assert dense.evidence["sparse_share"] == 0.0 and dense.evidence["required_close_s"] == 900
    (half_hourly,) = rendezvous(heard_by_satellite(1.5), settings, Environment())
    assert half_hourly.end_ts == pytest.approx(T0 + 1.5 * 3600, abs=3 * MIN)
    assert rendezvous(heard_by_satellite(1.5, every_s=3600.0), settings, Environment()) == []
    (hourly,) = rendezvous(heard_by_satellite(3.0, every_s=3600.0), settings, Environment())
    assert hourly.evidence["required_close_s"] == pytest.approx(7200, abs=100)
    relaxed = engine(Environment(), sparse_min_duration_s=3600)
    (early,) = rendezvous(heard_by_satellite(1.5, every_s=3600.0), settings, Environment(), relaxed)
    assert early.start_ts == pytest.approx(T0, abs=3 * MIN)


def test_a_meeting_at_the_end_of_the_input_is_reported(settings: Settings) -> None:
    # The input ends 20 min into a meeting. Its last slots are final then (no fix can follow),
    # so the meeting is reported, still open, although the engine otherwise waits up to
    # sparse_interp_gap_s (1 h) for late fixes of sparse reporters.
    track = [p for p in meeting(minutes=40, every_a=10, every_b=30) if p.ts <= T0 + 20 * MIN]
    (alert,) = rendezvous(track, settings, Environment())
    assert alert.status == "open"  # opened when the close time reached 15 min; the vessels are still there
    assert alert.start_ts == pytest.approx(T0, abs=MIN)
    assert T0 + 15 * MIN <= alert.end_ts <= T0 + 20 * MIN


def test_too_short_fast_or_in_port_is_not_a_rendezvous(settings: Settings) -> None:
    assert rendezvous(meeting(minutes=10), settings, Environment()) == []
    assert rendezvous(meeting(speed_kn=5.0), settings, Environment()) == []

    class InPort:
        def distance_to_port_m(self, lat: float, lon: float) -> float:
            return 1000.0

        def distance_to_shore_m(self, lat: float, lon: float) -> float:
            return 1e6

        def on_land(self, lat: float, lon: float) -> bool:
            return False

    assert rendezvous(meeting(), settings, Environment(geography=InPort())) == []


def test_service_craft_and_non_ship_stations_are_not_paired(settings: Settings) -> None:
    tug = VesselStatic("367000002", T0 - 3600, name="TUG", ship_type=52)
    assert rendezvous([tug, *meeting()], settings, Environment()) == []
    buoy = [replace(p, entity_id="941000002") if p.entity_id == "367000002" else p for p in meeting()]
    assert rendezvous(buoy, settings, Environment()) == []


def test_vessels_reporting_at_anchor_or_moored_are_not_paired(settings: Settings) -> None:
    # Ships waiting for a berth lie at anchor side by side off ports: AIS status 1 (at anchor)
    # or 5 (moored) of either vessel keeps the pair out; any other status does not.
    def with_status(status: int | None, mmsi: str = "367000002") -> list[Position]:
        return [replace(p, nav_status=status) if p.entity_id == mmsi else p for p in meeting()]

    env = Environment()
    assert rendezvous(with_status(1), settings, env) == []
    assert rendezvous(with_status(5, "367000001"), settings, env) == []
    for status in (None, 0, 7, 15):  # unknown, under way using engine, engaged in fishing, undefined
        assert [ids(a) for a in rendezvous(with_status(status), settings, env)] == [["367000001", "367000002"]]
    # The exclusion is configurable, and the status is judged per slot: a pair that anchors
    # half-way through is reported for the part before (shorter than the whole meeting).
    (kept,) = rendezvous(with_status(1), settings, env, engine(env, excluded_nav_statuses=()))
    assert kept.start_ts == pytest.approx(T0, abs=MIN)
    late = T0 + 20 * MIN
    anchored_later = [
        replace(p, nav_status=1) if p.entity_id == "367000002" and p.ts >= late else p for p in meeting(minutes=40)
    ]
    (before,) = rendezvous(anchored_later, settings, env)
    assert before.end_ts == pytest.approx(late, abs=5 * MIN) and before.end_ts < kept.end_ts - 10 * MIN


def test_a_with_b_is_the_same_alert_as_b_with_a(settings: Settings) -> None:
    track = meeting(every_a=7, every_b=45)
    swapped_ids = {"367000001": "367000002", "367000002": "367000001"}
    swapped = sorted((replace(p, entity_id=swapped_ids[p.entity_id]) for p in track), key=lambda p: (p.ts, p.entity_id))
    first = rendezvous(track, settings, Environment())
    second = rendezvous(swapped, settings, Environment())
    assert len(first) == 1
    assert [(a.id, a.start_ts, a.end_ts, ids(a)) for a in first] == [
        (a.id, a.start_ts, a.end_ts, ids(a)) for a in second
    ]
    speeds = first[0].evidence["median_speed_kn"]
    assert second[0].evidence["median_speed_kn"] == {"367000001": speeds["367000002"], "367000002": speeds["367000001"]}


def test_meeting_across_utc_midnight_is_one_alert(settings: Settings) -> None:
    start = t("23:40:00")
    final = rendezvous(meeting(start=start, minutes=60), settings, Environment())
    assert len(final) == 1
    assert final[0].start_ts == pytest.approx(start, abs=2 * MIN)
    assert final[0].end_ts == pytest.approx(t("00:40:00", "2020-07-01"), abs=3 * MIN)


def test_two_meetings_far_apart_in_time_are_two_alerts(settings: Settings) -> None:
    first = meeting(start=T0, minutes=30)
    later = [replace(p, ts=p.ts + 9 * 3600) for p in meeting(start=T0, minutes=30)]
    final = rendezvous(first + later, settings, Environment())
    assert len(final) == 2 and final[0].id != final[1].id


@hsettings(max_examples=20, deadline=None)
@given(
    minutes=st.integers(16, 90),
    every_a=st.integers(2, 60),
    every_b=st.integers(20, 300),
    seed=st.integers(0, 2**32 - 1),
)
def test_reordering_within_the_grace_period_never_changes_the_alerts(
    settings: Settings, minutes: int, every_a: int, every_b: int, seed: int
) -> None:
    assert_reordering_keeps_the_alerts(settings, minutes, every_a, every_b, seed)


# Reported once as a failure of the property above (minutes=16, every_b=240; the other draws
# unknown). A 16-minute meeting sampled every 4 min is close to the 15-minute minimum: at the
# edge where a slot counted or not would decide the alert. Every reporting rate of A that is
# odd (ties with B's odd seconds), even, or on the slot boundaries, in several arrival orders.
@pytest.mark.parametrize("every_a", [2, 7, 13, 45, 59, 60])
@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1])
def test_sixteen_minute_meeting_sampled_every_four_minutes(settings: Settings, every_a: int, seed: int) -> None:
    assert_reordering_keeps_the_alerts(settings, 16, every_a, 240, seed)
    final = rendezvous(meeting(minutes=16, every_a=every_a, every_b=240), settings, Environment())
    assert [ids(a) for a in final] == [["367000001", "367000002"]]
    assert final[0].start_ts == pytest.approx(T0, abs=MIN)
    assert final[0].end_ts == pytest.approx(T0 + 17 * MIN, abs=MIN)  # B's last slow, close slot
    assert final[0].evidence["close_s"] >= RendezvousConfig().min_duration_s


def assert_reordering_keeps_the_alerts(settings: Settings, minutes: int, every_a: int, every_b: int, seed: int) -> None:
    def track() -> list[Position]:  # fresh objects: the cleaner annotates fixes in place
        return meeting(minutes=minutes, every_a=every_a, every_b=every_b)

    reference = run_pipeline(track(), settings, Environment(), detectors=[], cells=engine(Environment()))
    assert reference
    rng = random.Random(seed)
    fresh = track()
    # each fix arrives up to 0.9 × grace late: the arrival order changes, event times do not
    late = [p.ts + rng.uniform(0, 0.9 * settings.pipeline.grace_s) for p in fresh]
    shuffled = [fresh[i] for i in sorted(range(len(fresh)), key=late.__getitem__)]
    got = run_pipeline(shuffled, settings, Environment(), detectors=[], cells=engine(Environment()))
    assert wire(final_revisions(got)) == wire(final_revisions(reference))
    assert wire(got) == wire(reference)  # every revision, in the same order
