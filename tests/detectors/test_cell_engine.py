"""The cell engine: slotting, spatial partitioning, pair ownership, expiry and serialisable state."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from detectors.base import Environment, TrackContext
from detectors.cell_engine import CellEngine, EngineTiming, build_cell_engine, engine_timing
from detectors.cells import Grid, Sample, SeaCheck, cell_key, near_port_or_shore
from detectors.rendezvous import RendezvousConfig, RendezvousDetector
from models.alert import Alert, DetectorInfo
from models.geo import haversine_m
from models.position import EntityType, Position
from models.timeutil import parse_iso
from models.units import DEG_TO_RAD, EARTH_RADIUS_M, M_PER_DEG_LAT, MPS_PER_KN

T0 = parse_iso("2020-06-30T10:00:00Z")
CTX = TrackContext()


def destination(lat: float, lon: float, bearing_deg: float, dist_m: float) -> tuple[float, float]:
    """Spherical destination point (the inverse of haversine_m)."""
    p1, l1, b, d = lat * DEG_TO_RAD, lon * DEG_TO_RAD, bearing_deg * DEG_TO_RAD, dist_m / EARTH_RADIUS_M
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    lon2 = (math.degrees(l2) + 540.0) % 360.0 - 180.0
    return math.degrees(p2), lon2


def fixes(
    mmsi: str,
    start: float,
    end: float,
    every_s: float,
    lat: float,
    lon: float,
    *,
    speed_kn: float = 0.3,
    course_deg: float = 90.0,
    etype: EntityType = "vessel",
) -> list[Position]:
    """A vessel reporting every ``every_s`` from ``start`` to ``end``, moving steadily."""
    out = []
    t = start
    while t <= end:
        d = speed_kn * MPS_PER_KN * (t - start)
        la, lo = destination(lat, lon, course_deg, d) if d > 0 else (lat, lon)
        out.append(Position(etype, mmsi, t, la, lo, speed_kn=speed_kn, course_deg=course_deg))
        t += every_s
    return out


def merged(*tracks: list[Position]) -> list[Position]:
    return sorted(itertools.chain(*tracks), key=lambda p: (p.ts, p.entity_id))


class Recorder:
    """A pair detector that records every comparison it is given and never alerts."""

    name: ClassVar[str] = "recorder"
    version: ClassVar[str] = "0"

    def __init__(self, radius_m: float = 500.0, pairs: frozenset[tuple[str, str]] | None = None) -> None:
        self.entity_pairs = pairs or frozenset({("vessel", "vessel")})
        self.info = DetectorInfo(self.name, self.version, "-")
        self.radius_m = radius_m
        self.slot_s = 60.0
        self.max_interp_gap_s = 600.0
        self.memory_s = 0.0
        self.speed_limit_kn = math.inf
        self.seen: list[tuple[str, str, float, float]] = []

    def accepts(self, s: Sample) -> bool:
        return any(s.etype in p for p in self.entity_pairs)

    def observe(self, state: Any, a: Sample, b: Sample, distance_m: float) -> tuple[Any, list[Alert]]:
        self.seen.append((a.key, b.key, a.ts, distance_m))
        return None, []

    def expire(self, state: Any, now: float) -> tuple[Any, list[Alert]]:
        return None, []

    def deadline(self, state: Any) -> float | None:
        return None


def drive(
    engine: CellEngine, positions: list[Position], expire_every: int = 1, finish: float | None = None
) -> list[Alert]:
    """Feed fixes in time order, expiring at the watermark (last time − 60 s) every n fixes."""
    alerts: list[Alert] = []
    for i, p in enumerate(positions):
        alerts += engine.process(p, CTX)
        if (i + 1) % expire_every == 0:
            alerts += engine.expire(p.ts - 60.0)
    alerts += engine.expire(finish if finish is not None else positions[-1].ts)
    return alerts


# ------------------------------------------------------------------------------ grid


@hsettings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-75, 75),
    lon=st.floats(-180, 180, exclude_max=True),
    bearing=st.floats(0, 360),
    frac=st.floats(0, 1),
    radius=st.sampled_from([100.0, 500.0, 3000.0, 5000.0]),
)
def test_every_position_within_the_radius_is_in_a_listed_cell(
    lat: float, lon: float, bearing: float, frac: float, radius: float
) -> None:
    grid = Grid()
    lat2, lon2 = destination(lat, lon, bearing, radius * frac * 0.999)
    cells = grid.cells_within(lat, lon, radius)
    assert cells[0] == grid.home(lat, lon)
    assert len(cells) == len(set(cells))
    assert grid.home(lat2, lon2) in cells


@pytest.mark.parametrize("lat", [0.0, 20.0, 37.0, 45.0, 60.0, 70.0, 80.0])
def test_cells_are_never_narrower_than_tall(lat: float) -> None:
    grid = Grid()
    south, west, north, east = grid.bounds(grid.home(lat, 10.0))
    width_m = haversine_m(max(abs(south), abs(north)), west, max(abs(south), abs(north)), east)
    assert width_m >= grid.min_cell_m * 0.999
    assert (north - south) * M_PER_DEG_LAT == pytest.approx(grid.min_cell_m)
    assert cell_key(grid.home(lat, 10.0)).count("/") == 1


def test_a_position_deep_inside_a_cell_is_not_copied_to_neighbours() -> None:
    grid = Grid()
    south, west, north, east = grid.bounds(grid.home(37.02, -76.02))
    middle = ((south + north) / 2, (west + east) / 2)
    assert grid.cells_within(*middle, 500.0) == [grid.home(*middle)]
    # near a corner: the west neighbour, and the one or two cells of the row below (rows need not align)
    assert len(grid.cells_within(south + 1e-4, west + 1e-4, 500.0)) in (3, 4)


# --------------------------------------------------------------------------- slotting


def test_irregular_rates_are_compared_at_every_common_slot() -> None:
    # A reports every 2 s, B every 170 s (a Class B vessel), never in the same second;
    # they lie 100 m apart for 30 minutes.
    rec = Recorder()
    engine = CellEngine([rec])
    lat2, lon2 = destination(37.02, -76.02, 0.0, 100.0)
    a = fixes("367000001", T0, T0 + 1800, 2.0, 37.02, -76.02, speed_kn=0.0)
    b = fixes("367000002", T0 + 7, T0 + 1800, 170.0, lat2, lon2, speed_kn=0.0)
    drive(engine, merged(a, b), finish=T0 + 7200)
    slots = sorted(ts for _, _, ts, _ in rec.seen)
    assert all(ts % 60 == 0 for ts in slots)
    # B's first fix (10:00:07) is snapped to 10:00; its last (10:28:27) brackets 10:28 at most
    assert slots == [T0 + 60.0 * k for k in range(29)]
    assert all(d == pytest.approx(100.0, abs=1.0) for *_, d in rec.seen)


def test_no_interpolation_across_a_silence_longer_than_the_cap() -> None:
    engine = CellEngine([Recorder()])
    a = [Position("vessel", "367000001", T0 + dt, 37.02, -76.02, speed_kn=0.0) for dt in (0.0, 10.0, 1300.0)]
    drive(engine, a, finish=T0 + 4000)
    assert engine.counts["samples"] == 2  # the first fix snapped to 10:00, the one after the silence to 10:22


def test_vessels_far_apart_are_never_compared() -> None:
    rec = Recorder()
    engine = CellEngine([rec])
    lat2, lon2 = destination(37.02, -76.02, 45.0, 10_000.0)
    drive(
        engine,
        merged(fixes("367000001", T0, T0 + 1800, 30, 37.02, -76.02), fixes("367000002", T0, T0 + 1800, 30, lat2, lon2)),
    )
    assert rec.seen == []
    assert engine.counts["compared_samples"] == 0


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.floats(0, 360), st.floats(0, 2500)), min_size=2, max_size=12),
    st.sampled_from([(37.0, -76.0), (60.0, -150.0), (0.0, 179.99)]),
)
def test_each_close_pair_is_compared_exactly_once_per_slot(
    offsets: list[tuple[float, float]], corner: tuple[float, float]
) -> None:
    # Stationary vessels scattered around a grid corner (cells meet there), compared with
    # every pair within the radius, by brute force.
    rec = Recorder(radius_m=1500.0)
    engine = CellEngine([rec])
    points = [destination(*corner, b, d) for b, d in offsets]
    tracks = [fixes(f"3670000{i:02d}", T0, T0 + 300, 20.0, la, lo, speed_kn=0.0) for i, (la, lo) in enumerate(points)]
    drive(engine, merged(*tracks), finish=T0 + 3000)
    expected = {
        (f"vessel:3670000{i:02d}", f"vessel:3670000{j:02d}", T0 + 60.0 * k)
        for i, j in itertools.combinations(range(len(points)), 2)
        if haversine_m(*points[i], *points[j]) <= 1500.0
        for k in range(6)
    }
    seen = [(a, b, ts) for a, b, ts, _ in rec.seen]
    assert len(seen) == len(set(seen))
    assert set(seen) == expected


def test_aircraft_are_not_paired_as_vessels_but_the_engine_can_pair_them() -> None:
    vessel = fixes("367000001", T0, T0 + 1800, 10, 37.02, -76.02, speed_kn=0.0)
    plane = fixes("a1b2c3", T0, T0 + 1800, 10, 37.02, -76.021, speed_kn=0.0, etype="aircraft")
    sea = Recorder()
    engine = CellEngine([sea])
    drive(engine, merged(vessel, plane))
    assert sea.seen == []
    air_sea = Recorder(pairs=frozenset({("aircraft", "vessel")}))
    engine = CellEngine([air_sea])
    drive(engine, merged(vessel, plane))
    assert {(a, b) for a, b, *_ in air_sea.seen} == {("aircraft:a1b2c3", "vessel:367000001")}


def test_samples_waiting_for_their_slot_hold_no_cell_state() -> None:
    """Cells get state only when a slot gives them something to do; a slot where only one kind
    of entity reported does nothing for a detector that pairs unlike kinds."""
    vessels = merged(
        fixes("367000001", T0, T0 + 1800, 10, 37.02, -76.02, speed_kn=0.0),
        fixes("367000002", T0, T0 + 1800, 10, 37.0201, -76.02, speed_kn=0.0),
    )
    lat, lon = destination(37.02, -76.02, 90.0, 50_000.0)
    far_plane = fixes("a1b2c3", T0, T0 + 1800, 10, lat, lon, speed_kn=0.0, etype="aircraft")
    air_sea = Recorder(pairs=frozenset({("aircraft", "vessel")}))
    engine = CellEngine([air_sea])
    for p in merged(vessels, far_plane):
        engine.process(p, CTX)
    waiting = engine.stage.export()["cells"]
    assert sum(len(ch) for _, pending, *_ in waiting for _, chans in pending for ch in chans) > 30
    assert engine.cells == {}
    engine.expire(T0 + 1800)
    assert air_sea.seen == [] and engine.counts["compared_samples"] == 0
    assert engine.cells == {}

    near_plane = fixes("a1b2c3", T0, T0 + 1800, 10, 37.0202, -76.02, speed_kn=0.0, etype="aircraft")
    air_sea = Recorder(pairs=frozenset({("aircraft", "vessel")}))
    drive(CellEngine([air_sea]), merged(vessels, near_plane))
    pairs = {(a, b) for a, b, *_ in air_sea.seen}
    assert pairs == {("aircraft:a1b2c3", "vessel:367000001"), ("aircraft:a1b2c3", "vessel:367000002")}


# --------------------------------------------------------------------- pair ownership


def _rendezvous(**kw: Any) -> RendezvousDetector:
    return RendezvousDetector(RendezvousConfig(**kw), Environment())


def test_a_pair_drifting_across_cells_keeps_one_state_and_one_alert() -> None:
    # Two vessels side by side drift east at 1.5 kn for 6 h (~17 km): several cell borders.
    det = _rendezvous()
    engine = CellEngine([det])
    lat2, lon2 = destination(37.02, -76.04, 0.0, 150.0)
    a = fixes("367000001", T0, T0 + 6 * 3600, 30, 37.02, -76.04, speed_kn=1.5)
    b = fixes("367000002", T0 + 11, T0 + 6 * 3600, 45, lat2, lon2, speed_kn=1.5)
    alerts: list[Alert] = []
    homes = set()
    for p in merged(a, b):
        alerts += engine.process(p, CTX)
        alerts += engine.expire(p.ts - 60.0)
        states = engine.pair_states()
        assert len(states) <= 1  # exactly one cell holds the pair at any time
        for (owner, _), (cid, _) in states.items():
            assert owner == "vessel:367000001"
            homes.add(cid)
    alerts += engine.expire(T0 + 12 * 3600)
    assert len(homes) >= 3 and engine.counts["handoffs"] >= 2
    assert len({a.id for a in alerts}) == 1
    assert alerts[0].status == "open" and alerts[-1].status == "closed"
    assert alerts[-1].end_ts == pytest.approx(T0 + 6 * 3600, abs=60)
    assert engine.cells == {} and engine.entities == {}  # everything forgotten once expired


def test_a_pair_on_both_sides_of_a_cell_border_is_found_once() -> None:
    grid = Grid()
    south, west, _, _ = grid.bounds(grid.home(37.02, -76.02))
    a = fixes("367000009", T0, T0 + 1800, 20, south + 0.0005, west + 0.01, speed_kn=0.0)  # north of the border
    b = fixes("367000001", T0, T0 + 1800, 20, south - 0.0005, west + 0.01, speed_kn=0.0)  # south of it
    rec = Recorder()
    engine = CellEngine([rec])
    drive(engine, merged(a, b), finish=T0 + 4000)
    assert grid.home(a[0].lat, a[0].lon) != grid.home(b[0].lat, b[0].lon)
    slots = [ts for *_, ts, _ in rec.seen]
    assert len(slots) == len(set(slots)) == 31


# ------------------------------------------------------------------ event time, batching


def side_by_side_for_15_min() -> tuple[CellEngine, Recorder]:
    """Two vessels 100 m apart heard every 10 s from T0 to T0 + 15 min, in an engine with a 10-min lag."""
    rec = Recorder()
    engine = CellEngine([rec], timing=EngineTiming(slot_s=60.0, max_interp_gap_s=600.0))
    lat2, lon2 = destination(37.02, -76.02, 0.0, 100.0)
    for p in merged(
        fixes("367000001", T0, T0 + 900, 10, 37.02, -76.02), fixes("367000002", T0, T0 + 900, 10, lat2, lon2)
    ):
        engine.process(p, CTX)
    return engine, rec


def test_nothing_is_compared_before_the_slot_is_final() -> None:
    engine, rec = side_by_side_for_15_min()
    engine.expire(T0 + 900)  # horizon 10:05: slots up to 10:05 are final
    assert max(ts for *_, ts, _ in rec.seen) == T0 + 300
    engine.expire(T0 + 1500)
    assert max(ts for *_, ts, _ in rec.seen) == T0 + 900


def test_end_of_input_makes_the_last_slots_final() -> None:
    # No fix can follow the end of the input, so its last slots need not wait for the lag.
    engine, rec = side_by_side_for_15_min()
    engine.expire(T0 + 900)
    assert max(ts for *_, ts, _ in rec.seen) == T0 + 300
    engine.finish(T0 + 900)
    slots = [ts for *_, ts, _ in rec.seen]
    assert max(slots) == T0 + 900 and len(slots) == len(set(slots)) == 16


def test_each_detector_interpolates_across_its_own_longest_silence() -> None:
    # Two vessels 100 m apart, each heard every 30 min (satellite AIS), 15 min after each other.
    short, patient = Recorder(), Recorder()
    patient.max_interp_gap_s = 3600.0
    engine = CellEngine([short, patient], timing=engine_timing([short, patient]))
    assert engine.lag_s == 3600.0
    lat2, lon2 = destination(37.02, -76.02, 0.0, 100.0)
    a = fixes("367000001", T0, T0 + 3 * 3600, 1800, 37.02, -76.02)
    b = fixes("367000002", T0 + 900, T0 + 3 * 3600, 1800, lat2, lon2)
    drive(engine, merged(a, b), finish=T0 + 6 * 3600)
    # the patient detector compares them at every slot from B's first fix to its last
    assert sorted(ts for *_, ts, _ in patient.seen) == [T0 + 900 + 60 * k for k in range(151)]
    # the other gets each fix alone at its nearest slot: never the same slot for both
    assert short.seen == []


@hsettings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=6), st.integers(0, 1))
def test_expiry_cadence_never_changes_the_alerts(cadences: list[int], swap: int) -> None:
    lat2, lon2 = destination(37.02, -76.02, 0.0, 200.0)
    a = fixes("367000001", T0, T0 + 3 * 3600, 13, 37.02, -76.02, speed_kn=0.5)
    b = fixes("367000002", T0 + 5, T0 + 3 * 3600, 97, lat2, lon2, speed_kn=0.5)
    a += fixes("367000001", T0 + 3 * 3600 + 13, T0 + 4 * 3600, 13, 37.05, -76.02, speed_kn=0.5)
    track = merged(a, b)
    reference = drive(CellEngine([_rendezvous()]), track, finish=T0 + 10 * 3600)
    assert reference
    for every in cadences:
        got = drive(CellEngine([_rendezvous()]), track, expire_every=every, finish=T0 + 10 * 3600)
        assert [x.to_wire() for x in got] == [x.to_wire() for x in reference]


def test_state_is_plain_serialisable_data() -> None:
    det = _rendezvous()
    engine = CellEngine([det])
    lat2, lon2 = destination(37.02, -76.02, 0.0, 100.0)
    for p in merged(
        fixes("367000001", T0, T0 + 3600, 10, 37.02, -76.02), fixes("367000002", T0, T0 + 3600, 10, lat2, lon2)
    ):
        engine.process(p, CTX)
        engine.expire(p.ts - 60)
    assert engine.pair_states()
    for cell in engine.cells.values():
        json.dumps(dataclasses.asdict(cell))
    for entity in engine.entities.values():
        json.dumps(dataclasses.asdict(entity))


def test_builder_follows_the_config(settings: Any) -> None:
    engine = build_cell_engine(settings.detectors, Environment())
    assert engine is not None
    assert [d.name for d in engine.pair_detectors] == ["rendezvous", "air_sea_rendezvous"]
    assert [d.name for d in engine.area_detectors] == ["dark_rendezvous"]
    off = {name: {"enabled": False} for name in ("rendezvous", "dark_rendezvous", "air_sea_rendezvous")}
    assert build_cell_engine(off, Environment()) is None
    with pytest.raises(ValueError, match="exceeds the cell size"):
        CellEngine([Recorder(radius_m=20_000.0)])


class PointPortStraightShore:
    """Exact distances: one port at (37.0, -76.0); the shore is the meridian 76.1° W."""

    def distance_to_port_m(self, lat: float, lon: float) -> float:
        return haversine_m(lat, lon, 37.0, -76.0)

    def distance_to_shore_m(self, lat: float, lon: float) -> float:
        return haversine_m(lat, lon, lat, -76.1)

    def on_land(self, lat: float, lon: float) -> bool:
        return lon < -76.1


@hsettings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 360), st.floats(0, 3000)), min_size=1, max_size=80),
    st.floats(0, 360),
    st.floats(0, 9000),
)
def test_the_sea_check_cache_answers_like_the_geography(
    steps: list[tuple[float, float]], bearing0: float, dist0: float
) -> None:
    # A vessel wandering around a port near the shore: the cached answer is always the direct one.
    env = Environment(geography=PointPortStraightShore())
    check = SeaCheck(env, 3000.0, 1852.0)
    lat, lon = destination(37.0, -76.0, bearing0, dist0)
    for bearing, dist in steps:
        lat, lon = destination(lat, lon, bearing, dist)
        assert check.excluded("vessel:367000001", lat, lon) == near_port_or_shore(env, lat, lon, 3000.0, 1852.0)


def test_a_stage_snapshot_keeps_pending_samples_and_reads_the_earlier_form() -> None:
    """Pending samples go into a snapshot in their wire form; one written in the generic state
    form (earlier versions) restores to the same stage, and both go on to the same alerts."""
    from detectors import state_codec
    from detectors.cell_records import sample_from_wire
    from detectors.cell_stage import CellStage

    lat2, lon2 = destination(37.02, -76.02, 0.0, 100.0)
    track = merged(
        fixes("367000001", T0, T0 + 3 * 3600, 10, 37.02, -76.02, speed_kn=0.5),
        fixes("367000002", T0, T0 + 3 * 3600, 10, lat2, lon2, speed_kn=0.5),
    )
    engine = CellEngine([_rendezvous()])
    for p in track[: len(track) // 2]:
        engine.process(p, CTX)
    snap = engine.stage.export()
    assert sum(len(ch) for _, pending, *_ in snap["cells"] for _, chans in pending for ch in chans) > 100
    old = json.loads(json.dumps(snap))
    for cell in old["cells"]:
        cell[1] = [[ts, state_codec.encode([[sample_from_wire(x) for x in ch] for ch in chs])] for ts, chs in cell[1]]
    assert old != snap

    def finish(data: dict[str, Any]) -> list[dict[str, Any]]:
        other = CellEngine([_rendezvous()])
        other.slotting.restore(json.loads(json.dumps(engine.slotting.export())))
        other.stage = CellStage(other.pair_detectors, other.area_detectors, other.timing, other.grid)
        other.stage.restore(json.loads(json.dumps(data)))
        assert other.stage.export() == snap
        alerts = [a for p in track[len(track) // 2 :] for a in other.process(p, CTX)] + other.expire(T0 + 10 * 3600)
        return [a.to_wire() for a in alerts]

    got = finish(snap)
    assert got and got == finish(old)
    rest = [a for p in track[len(track) // 2 :] for a in engine.process(p, CTX)] + engine.expire(T0 + 10 * 3600)
    assert got == [a.to_wire() for a in rest]  # as if no snapshot had been taken
