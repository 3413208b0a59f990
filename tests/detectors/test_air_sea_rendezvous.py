"""air_sea_rendezvous: a real drone orbit placed over a real stopped vessel, the same orbit
with no vessel near (dark target), an airliner high over the vessel and a drone landing at
its airfield (negatives), event-time invariants and the replay command line.

Tracks (origin in tests/data/README.md):

- aircraft: G-TEKV, the Tekever AR5 drone of the UK Home Office patrols (icao24 407918),
  2020-04-17 07:05–07:45Z: it flies NNE at 975 ft, circles tight loops within ~410 m of
  50.9010 N 1.0215 E from 07:23:50 to 07:31:40 (one altitude spike to 1,775 ft at 07:25:50),
  leaves NW at 07:32 and lands at Lydd (EGMD) at 07:41.
- vessel: 367584050, 2020-06-04, ~40 km east of Cape Henry, stopped at 36.89635 N
  75.49182 W from 12:50 to 14:07Z, reporting every ~70 s.

The alignment moves the aircraft, never the vessel: every aircraft time + ``SHIFT_S``
(2020-04-17T07:20:00Z → 2020-06-04T13:40:00Z), and every position by the same metres east
and north from the orbit centre as it had (degrees of longitude rescaled by the cosine of
the latitude): the orbit centre lands on the vessel. Altitudes are unchanged (the drone
really flew at 975 ft).
"""

from __future__ import annotations

import gzip
import math
import random
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from detectors import state_codec
from detectors.air_sea_rendezvous import AirSeaRendezvousConfig, AirSeaRendezvousDetector, HoldState
from detectors.base import Environment, TrackContext
from detectors.cell_engine import CellEngine, engine_timing
from detectors.cells import Grid
from detectors.pipeline import Pipeline
from models.alert import Alert, validate_alert_wire
from models.position import Position, VesselStatic
from models.reference import ReferenceGeography, load_geography
from models.settings import Settings
from models.timeutil import parse_iso, to_iso
from models.units import M_PER_DEG_LAT
from streams.cli import main
from streams.sources.aircsv import AircraftCsvDecoder
from streams.sources.marinecadastre import MarineCadastreDecoder
from tests.conftest import SHARED_DATA, TEST_DATA, final_revisions, read_lines, run_pipeline

AIR = TEST_DATA / "air_gtekv_orbit_2020-04-17T0705-0745.csv.gz"
VESSEL = TEST_DATA / "vb_367584050_2020-06-04.csv.gz"
AIRLINER = SHARED_DATA / "air" / "airliner_straight_AFR63ZR_2021-10-07.csv.gz"
DRONE, SHIP = "407918", "367584050"

SHIFT_S = parse_iso("2020-06-04T13:40:00Z") - parse_iso("2020-04-17T07:20:00Z")  # 48 d 6 h 20 min
ORBIT_CENTRE = (50.9010, 1.0215)  # the drone's tight loops, 07:23:50–07:31:40Z
SHIP_STOP = (36.89635, -75.49182)  # 367584050 stopped, 12:50–14:07Z
DISPLACED = (SHIP_STOP[0], SHIP_STOP[1] - 6000.0 / (M_PER_DEG_LAT * math.cos(math.radians(SHIP_STOP[0]))))
MIN = 60.0


def t(hhmmss: str, day: str = "2020-06-04") -> float:
    return parse_iso(f"{day}T{hhmmss}Z")


def aircraft(until: str = "07:34:00") -> list[Position]:
    """The drone slice up to ``until`` (2020-04-17): the landing at Lydd comes after 07:34."""
    end = t(until, "2020-04-17")
    items = AircraftCsvDecoder(str(AIR)).decode(read_lines(AIR))
    return [p for p in items if isinstance(p, Position) and p.ts <= end]


def vessel() -> list[Position | VesselStatic]:
    items = MarineCadastreDecoder(str(VESSEL)).decode(read_lines(VESSEL))
    return [i for i in items if isinstance(i, Position | VesselStatic)]


def moved(
    track: Iterable[Position], shift_s: float, frm: tuple[float, float], to: tuple[float, float]
) -> list[Position]:
    """Shift in time and carry every position the same metres east/north of ``to`` as of ``frm``."""
    k_from, k_to = math.cos(math.radians(frm[0])), math.cos(math.radians(to[0]))
    return [
        replace(p, ts=p.ts + shift_s, lat=to[0] + (p.lat - frm[0]), lon=to[1] + (p.lon - frm[1]) * k_from / k_to)
        for p in track
    ]


def scenario(centre: tuple[float, float] = SHIP_STOP) -> list[Position | VesselStatic]:
    """The vessel 12:30–14:30Z with the drone's orbit centred on ``centre``, in event-time order."""
    drone = moved(aircraft(), SHIFT_S, ORBIT_CENTRE, centre)
    boat = [p for p in vessel() if t("12:30:00") <= p.ts <= t("14:30:00")]
    return sorted([*boat, *drone], key=lambda p: (p.ts, p.entity_id))


@pytest.fixture(scope="module")
def geography(settings: Settings) -> ReferenceGeography:
    return load_geography(settings)


def engine(env: Environment, **cfg: object) -> CellEngine:
    detector = AirSeaRendezvousDetector(AirSeaRendezvousConfig(**cfg), env)  # type: ignore[arg-type]
    return CellEngine([detector], timing=engine_timing([detector]))


def air_sea(
    records: Iterable[Position | VesselStatic], settings: Settings, env: Environment, **cfg: object
) -> list[Alert]:
    alerts = run_pipeline(records, settings, env, detectors=[], cells=engine(env, **cfg))
    return [a for a in final_revisions(alerts) if a.kind == "air_sea_rendezvous"]


def ids(alert: Alert) -> list[tuple[str, str]]:
    return [(e.type, e.id) for e in alert.entities]


# ------------------------------------------------------------------ the combined scenario


def test_drone_circling_over_a_stopped_vessel_is_one_rendezvous(
    settings: Settings, geography: ReferenceGeography
) -> None:
    # The drone reaches 2 km of the vessel at 13:42:40 (07:22:40 + shift) and leaves 2 km at
    # 13:52:40: the slots 13:43 … 13:52 count (1,533 m at 13:43, 130–410 m in the loops).
    env = Environment(geography=geography)
    final = air_sea(scenario(), settings, env)
    assert [ids(a) for a in final] == [[("aircraft", DRONE), ("vessel", SHIP)]]
    (alert,) = final
    assert alert.start_ts == pytest.approx(t("13:43:00"), abs=MIN)
    assert alert.end_ts == pytest.approx(t("13:52:00"), abs=MIN)
    assert alert.status == "closed"
    ev = alert.evidence
    assert ev["target"] == "vessel" and ev["aircraft"] == DRONE and ev["vessel"] == SHIP
    assert ev["closest_approach_m"] < 200
    assert ev["min_altitude_ft"] == 975 and ev["max_altitude_ft"] <= 1500
    assert ev["duration_s"] == pytest.approx(alert.end_ts - alert.start_ts, abs=1) and ev["duration_s"] >= 300
    assert ev["samples"] >= 8
    assert ev["vessel_median_speed_kn"] < 0.5
    assert ev["thresholds"] == {
        "max_altitude_ft": 1500.0, "max_distance_m": 2000.0, "min_duration_s": 300.0, "max_gap_s": 300.0,
        "airfield_exclusion_m": 5000.0, "max_vessel_speed_kn": 5.0, "slow_vessel_kn": 2.0,
        "port_exclusion_m": 3000.0, "min_shore_distance_m": 1852.0,
    }  # fmt: skip
    assert ev["closest_approach_m"] <= ev["thresholds"]["max_distance_m"]
    assert ev["max_altitude_ft"] <= ev["thresholds"]["max_altitude_ft"]
    assert ev["duration_s"] >= ev["thresholds"]["min_duration_s"]
    assert ev["distance_to_shore_m"] > 30_000
    assert alert.severity == "high"  # a stopped vessel under a low aircraft: one step above medium
    assert alert.lat == pytest.approx(SHIP_STOP[0], abs=1e-3) and alert.lon == pytest.approx(SHIP_STOP[1], abs=1e-3)
    assert validate_alert_wire(alert.to_wire()) == []


def test_the_same_orbit_6_km_away_is_a_dark_target(settings: Settings, geography: ReferenceGeography) -> None:
    # Orbit centre 6 km west of the vessel: no vessel within 2 km, so no pair; the drone holds
    # within 1 km of one spot at sea from 13:44 (its first loop) to 13:52 with no AIS vessel
    # near: the dark-target form, the drone alone.
    env = Environment(geography=geography)
    final = air_sea(scenario(DISPLACED), settings, env)
    assert [ids(a) for a in final] == [[("aircraft", DRONE)]]
    (alert,) = final
    assert alert.evidence["target"] == "dark" and alert.evidence["vessel"] is None
    assert alert.start_ts == pytest.approx(t("13:44:00"), abs=MIN)
    assert alert.end_ts == pytest.approx(t("13:52:00"), abs=MIN)
    assert alert.evidence["radius_m"] <= 1000 and alert.evidence["min_altitude_ft"] == 975
    th = alert.evidence["thresholds"]
    assert th["dark_radius_m"] == 1000.0 and th["dark_min_shore_distance_m"] == 5556.0
    assert alert.evidence["distance_to_shore_m"] >= th["dark_min_shore_distance_m"]
    assert alert.evidence["duration_s"] >= th["min_duration_s"]
    assert alert.severity == "high" and alert.status == "closed"
    assert alert.lat == pytest.approx(DISPLACED[0], abs=0.005) and alert.lon == pytest.approx(DISPLACED[1], abs=0.005)
    # Without the dark form, or without the coastline to tell sea from land, nothing at all.
    assert air_sea(scenario(DISPLACED), settings, env, dark_target=False) == []
    assert air_sea(scenario(DISPLACED), settings, Environment()) == []


def test_a_vessel_reporting_under_the_orbit_is_never_a_dark_target(settings: Settings) -> None:
    # Even a vessel that may not pair (law enforcement, ship type 55) shows the spot is not dark.
    cutter = VesselStatic(SHIP, t("00:00:00"), name="CUTTER", ship_type=55)
    assert air_sea([cutter, *scenario()], settings, Environment()) == []


def test_a_vessel_heard_only_by_satellite_under_the_orbit_is_the_target(
    settings: Settings, geography: ReferenceGeography
) -> None:
    # The same scenario with the vessel heard once every 30 min: interpolated between its
    # reports, it is under the drone from 13:43 as before, so the spot is not "dark".
    sparse, last = [], -math.inf
    for item in scenario():
        if isinstance(item, Position) and item.entity_type == "vessel":
            if item.ts - last < 1800:
                continue
            last = item.ts
        sparse.append(item)
    env = Environment(geography=geography)
    (alert,) = air_sea(sparse, settings, env)
    assert ids(alert) == [("aircraft", DRONE), ("vessel", SHIP)] and alert.evidence["target"] == "vessel"
    assert alert.start_ts == pytest.approx(t("13:43:00"), abs=2 * MIN)
    # Not interpolated across its half-hour silences, it is seen under the drone at no slot.
    (dark,) = air_sea(sparse, settings, env, max_interp_gap_s=600.0)
    assert dark.evidence["target"] == "dark"


# ----------------------------------------------------------------------- hard negatives


def test_airliner_climbing_over_the_vessel_gives_nothing(settings: Settings, geography: ReferenceGeography) -> None:
    if not AIRLINER.exists():
        pytest.skip(f"shared data not found at {AIRLINER}")
    items = AircraftCsvDecoder(str(AIRLINER)).decode(read_lines(AIRLINER))
    jet = [p for p in items if isinstance(p, Position)]
    over = next(p for p in jet if p.ts >= t("14:15:40", "2021-10-07"))  # 12,350 ft, 298 kn
    assert over.altitude_ft is not None and over.altitude_ft > 10_000
    # Its 14:15:40Z position over the stopped vessel at 13:45:00Z (west of it: 825 ft at the start).
    passing = moved(jet, t("13:45:00") - over.ts, (over.lat, over.lon), SHIP_STOP)
    records = sorted([*vessel(), *passing], key=lambda p: (p.ts, p.entity_id))
    assert air_sea(records, settings, Environment(geography=geography)) == []


def test_drone_low_at_its_airfield_gives_nothing(settings: Settings) -> None:
    # G-TEKV's approach and landing at Lydd (EGMD), 07:34–07:45Z at 350–775 ft then 0 ft on
    # the runway, all within 5 km of the airfield; the vessel's stop carried under it at
    # 50.952 N 0.942 E (no geography: everywhere is sea, so only the airfield rule is tested).
    start = t("07:34:00", "2020-04-17")
    landing = [p for p in aircraft(until="07:44:50") if p.ts >= start]
    boat = moved([p for p in vessel() if isinstance(p, Position)], -SHIFT_S, SHIP_STOP, (50.952, 0.942))
    records = sorted([*boat, *landing], key=lambda p: (p.ts, p.entity_id))
    assert air_sea(records, settings, Environment()) == []
    # The test can fail: without the airfield exclusion the same tracks are a rendezvous.
    found = air_sea(records, settings, Environment(), airfield_exclusion_m=0.0)
    assert [(ids(a), a.evidence["target"]) for a in found] == [([("aircraft", DRONE), ("vessel", SHIP)], "vessel")]


@pytest.mark.parametrize(
    "name",
    [
        "surveillance_drone_GTEKV_2020-04-17",  # its tight orbit is 3 km off Dungeness; other loops are wider
        "tv_relay_orbits_OOLET_vasaloppet_2020-03-01",  # orbits at 24,000 ft, inland
        "glider_thermals_G-CLPU_2019-05-23",  # thermalling circles over land
    ],
)
def test_real_flights_where_they_flew_give_no_dark_target(
    name: str, shared_data: Path, settings: Settings, geography: ReferenceGeography
) -> None:
    path = shared_data / "air" / f"{name}.csv.gz"
    track = [p for p in AircraftCsvDecoder(str(path)).decode(read_lines(path)) if isinstance(p, Position)]
    assert air_sea(track, settings, Environment(geography=geography)) == []


# ------------------------------------------------------------------------- invariants


def wire(alerts: list[Alert]) -> list[dict[str, object]]:
    return [a.to_wire() for a in alerts]


class Recording:
    """The cell engine behind the pipeline, keeping the cleaned fixes and its own alerts."""

    def __init__(self, inner: CellEngine) -> None:
        self.inner = inner
        self.fixes: list[Position] = []
        self.alerts: list[Alert] = []

    def process(self, fix: Position, ctx: TrackContext) -> list[Alert]:
        self.fixes.append(replace(fix))
        out = self.inner.process(fix, ctx)
        self.alerts += out
        return out

    def expire(self, watermark: float) -> list[Alert]:
        out = self.inner.expire(watermark)
        self.alerts += out
        return out

    def finish(self, end: float) -> list[Alert]:
        out = self.inner.finish(end)
        self.alerts += out
        return out


@hsettings(max_examples=8, deadline=None)
@given(
    east_m=st.sampled_from([0.0, 900.0, -6000.0]),
    seed=st.integers(0, 2**32 - 1),
    expire_every=st.integers(1, 300),
)
def test_batching_and_reordering_within_the_grace_period_never_change_the_alerts(
    settings: Settings, geography: ReferenceGeography, east_m: float, seed: int, expire_every: int
) -> None:
    centre = (SHIP_STOP[0], SHIP_STOP[1] + east_m / (M_PER_DEG_LAT * math.cos(math.radians(SHIP_STOP[0]))))
    env = Environment(geography=geography)
    recorded = Recording(engine(env))
    reference = run_pipeline(scenario(centre), settings, env, detectors=[], cells=recorded)
    assert reference
    rng = random.Random(seed)
    fresh = scenario(centre)  # fresh objects: the cleaner annotates fixes in place
    late = [p.ts + rng.uniform(0, 0.9 * settings.pipeline.grace_s) for p in fresh]
    shuffled = [fresh[i] for i in sorted(range(len(fresh)), key=late.__getitem__)]
    got = run_pipeline(shuffled, settings, env, detectors=[], cells=engine(env))
    assert wire(got) == wire(reference)  # every revision, in the same order
    # The same cleaned fixes into the engine alone, expired every `expire_every` fixes
    # instead of at every release (a streaming worker's batches).
    cells = engine(env)
    batched: list[Alert] = []
    ctx = TrackContext()
    for i, p in enumerate(recorded.fixes):
        batched += cells.process(p, ctx)
        if (i + 1) % expire_every == 0:
            batched += cells.expire(p.ts - settings.pipeline.grace_s)
    batched += cells.finish(recorded.fixes[-1].ts)  # the end of the input, as the pipeline's
    assert wire(batched) == wire(recorded.alerts)


def test_a_hold_across_cell_borders_is_one_alert_and_plain_state(
    settings: Settings, geography: ReferenceGeography
) -> None:
    # The orbit centred on a cell corner: its loops cross into four cells, and the hold state
    # moves with the drone's pair states (handoffs) instead of starting over in each cell.
    grid = Grid()
    south, west, _, _ = grid.bounds(grid.home(*DISPLACED))
    env = Environment(geography=geography)
    cells = engine(env)
    pipeline = Pipeline(settings, env, detectors=[], cells=cells)
    alerts: list[Alert] = []
    holds: set[int] = set()
    for record in scenario((south, west)):
        alerts += pipeline.push(record)
        for (owner, other), (cid, state) in cells.pair_states().items():
            if isinstance(state, HoldState):
                assert owner == other == f"aircraft:{DRONE}"
                holds.add(cid)
                assert state_codec.decode(orjson.loads(orjson.dumps(state_codec.encode(state)))) == state
    alerts += pipeline.finish()
    final = final_revisions(alerts)
    assert [(ids(a), a.evidence["target"]) for a in final] == [([("aircraft", DRONE)], "dark")]
    assert final[0].start_ts == pytest.approx(t("13:44:00"), abs=MIN)
    assert final[0].end_ts == pytest.approx(t("13:52:00"), abs=MIN)
    assert len(holds) >= 2 and cells.counts["handoffs"] > 0


def test_fast_vessels_are_never_slotted_for_it_but_aircraft_are(settings: Settings) -> None:
    # 367584050 runs at 9–13 kn 15:50–17:10Z: over max_vessel_speed_kn (5), its samples are not
    # even built (the engine's per-type cap), while the drone's samples at 40–70 kn are.
    cells = engine(Environment())
    drone = moved(aircraft(), SHIFT_S, ORBIT_CENTRE, SHIP_STOP)
    records = sorted([*vessel(), *drone], key=lambda p: p.ts)
    alerts = final_revisions(run_pipeline(records, settings, Environment(), detectors=[], cells=cells))
    assert cells.counts["fast_samples"] > 30
    assert [ids(a) for a in alerts] == [[("aircraft", DRONE), ("vessel", SHIP)]]


def test_the_dark_form_needs_its_shore_margin_to_cover_every_vessel_left_out() -> None:
    with pytest.raises(ValueError, match="dark_min_shore_distance_m"):
        AirSeaRendezvousConfig(dark_min_shore_distance_m=3000.0)  # < 1852 + 2000
    AirSeaRendezvousConfig(dark_min_shore_distance_m=3000.0, dark_target=False)


# ---------------------------------------------------------------------- command line


def test_replay_merges_a_vessel_file_and_an_aircraft_file(tmp_path: Path) -> None:
    # `vigiamar replay VESSELS AIRCRAFT`: two inputs in different formats, merged by event time,
    # every default detector on; the aircraft file is the shifted, carried drone slice.
    air_csv = tmp_path / "drone.csv.gz"
    header = "timestamp,icao24,callsign,latitude,longitude,altitude,groundspeed,track,vertical_rate\n"
    rows = [
        f"{to_iso(p.ts)},{p.entity_id},GTEKV,{p.lat:.6f},{p.lon:.6f},{p.altitude_ft},{p.speed_kn},{p.course_deg},0\n"
        for p in moved(aircraft(), SHIFT_S, ORBIT_CENTRE, SHIP_STOP)
    ]
    with gzip.open(air_csv, "wt", encoding="utf-8") as fh:
        fh.write(header + "".join(rows))
    out = tmp_path / "alerts.jsonl"
    assert main(["replay", "--format", "jsonl", "--out", str(out), "--no-summary", str(VESSEL), str(air_csv)]) == 0
    last: dict[str, dict[str, object]] = {}
    for line in out.read_text().splitlines():
        rec = orjson.loads(line)
        last[rec["id"]] = rec
    found = [r for r in last.values() if r["kind"] == "air_sea_rendezvous"]
    assert len(found) == 1
    (rec,) = found
    assert [(e["type"], e["id"]) for e in rec["entities"]] == [("aircraft", DRONE), ("vessel", SHIP)]  # type: ignore[index, union-attr]
    assert abs(parse_iso(str(rec["start"])) - t("13:43:00")) <= MIN
    assert abs(parse_iso(str(rec["end"])) - t("13:52:00")) <= MIN
    assert {r["kind"] for r in last.values()} >= {"loitering", "air_sea_rendezvous"}


def test_a_dark_hold_needs_no_slot_exactly_min_duration_back(settings: Settings, geography: ReferenceGeography) -> None:
    # 330 s is not a whole number of 60 s slots: no sample ever sits exactly at the window's
    # start, and the hold must still be seen (as one alert, over the same span).
    env = Environment(geography=geography)
    final = air_sea(scenario(DISPLACED), settings, env, min_duration_s=330.0)
    assert [ids(a) for a in final] == [[("aircraft", DRONE)]]
    (alert,) = final
    assert alert.evidence["target"] == "dark"
    assert alert.start_ts == pytest.approx(t("13:44:00"), abs=2 * MIN)
    assert alert.end_ts == pytest.approx(t("13:52:00"), abs=MIN)
