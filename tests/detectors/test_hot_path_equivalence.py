"""The optimised hot path computes exactly what the plain code it replaced computed.

Each test keeps the original, readable implementation as an oracle (copied verbatim from
the version before the optimisation) and checks, on random inputs, that the fast version
gives the same floats, flags, reasons and release order, bit for bit.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import astuple
from typing import Any, ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import Environment, TrackContext
from detectors.cleaning import DUPLICATE, LATE, CleanState, _round, clean
from detectors.loitering import LoiteringConfig, LoiteringDetector
from detectors.ordering import ReorderBuffer
from detectors.track_engine import TrackEngine
from models.alert import Alert, DetectorInfo
from models.geo import bearing_deg, haversine_m
from models.position import FLAG_DERIVED_KINEMATICS, FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, Position
from models.settings import CleaningConfig, PipelineConfig
from models.units import KN_PER_MPS

# --- oracle: detectors/cleaning.py before the optimisation ---------------------------------


def _ref_implied_kn(dist_m: float, dt_s: float) -> float:
    return dist_m / max(dt_s, 1.0) * KN_PER_MPS


def ref_clean(state: CleanState | None, fix: Position, cfg: CleaningConfig) -> tuple[CleanState | None, str | None]:
    if state is None:
        fix.flags |= FLAG_NEW_SEGMENT
        state = CleanState(fix.ts, fix.lat, fix.lon, fix.ts, fix.lat, fix.lon)
        _ref_derive(state, fix, cfg)
        return state, None
    if fix.ts < state.last_ts:
        return state, LATE
    if fix.ts == state.last_ts and fix.lat == state.last_lat and fix.lon == state.last_lon:
        return state, DUPLICATE

    dist = haversine_m(state.good_lat, state.good_lon, fix.lat, fix.lon)
    implied = _ref_implied_kn(dist, fix.ts - state.good_ts)
    fix.implied_speed_kn = round(implied, 2)
    limit = cfg.max_speed_kn(fix.entity_type)
    if dist > cfg.min_jump_m and implied > limit:
        if state.alt_ts is not None and _ref_agrees(state, fix, cfg, limit):
            state.alt_n += 1
        else:
            state.alt_n = 1
        state.alt_ts, state.alt_lat, state.alt_lon = fix.ts, fix.lat, fix.lon
        if state.alt_n >= cfg.reanchor_after:
            fix.flags |= FLAG_NEW_SEGMENT
            _ref_anchor(state, fix)
            state.ref_ts = state.pend_ts = None
        else:
            fix.flags |= FLAG_IMPLAUSIBLE
    else:
        _ref_anchor(state, fix)
    state.last_ts, state.last_lat, state.last_lon = fix.ts, fix.lat, fix.lon
    if not fix.flags & FLAG_IMPLAUSIBLE:
        _ref_derive(state, fix, cfg)
    return state, None


def _ref_agrees(state: CleanState, fix: Position, cfg: CleaningConfig, limit: float) -> bool:
    assert state.alt_ts is not None
    d = haversine_m(state.alt_lat, state.alt_lon, fix.lat, fix.lon)
    return d <= cfg.min_jump_m or _ref_implied_kn(d, fix.ts - state.alt_ts) <= limit


def _ref_anchor(state: CleanState, fix: Position) -> None:
    state.good_ts, state.good_lat, state.good_lon = fix.ts, fix.lat, fix.lon
    state.alt_ts = None
    state.alt_n = 0


def _ref_derive(state: CleanState, fix: Position, cfg: CleaningConfig) -> None:
    if state.pend_ts is None:
        state.pend_ts, state.pend_lat, state.pend_lon = fix.ts, fix.lat, fix.lon
    elif fix.ts - state.pend_ts >= cfg.derive_window_s:
        state.ref_ts, state.ref_lat, state.ref_lon = state.pend_ts, state.pend_lat, state.pend_lon
        state.pend_ts, state.pend_lat, state.pend_lon = fix.ts, fix.lat, fix.lon
    if fix.speed_kn is not None:
        return
    if state.ref_ts is not None:
        base_ts, base_lat, base_lon = state.ref_ts, state.ref_lat, state.ref_lon
    else:
        base_ts, base_lat, base_lon = state.pend_ts, state.pend_lat, state.pend_lon
    dt = fix.ts - base_ts
    if dt <= 0:
        return
    dist = haversine_m(base_lat, base_lon, fix.lat, fix.lon)
    fix.speed_kn = round(dist / dt * KN_PER_MPS, 2)
    if fix.course_deg is None and dist > 10.0:
        fix.course_deg = round(bearing_deg(base_lat, base_lon, fix.lat, fix.lon), 1)
    fix.flags |= FLAG_DERIVED_KINEMATICS


# --- oracle: detectors/ordering.py before the optimisation ---------------------------------


class RefReorderBuffer:
    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.max_ts = float("-inf")
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = 0

    def push(self, ts: float, item: Any) -> None:
        if ts > self.max_ts:
            self.max_ts = ts
        heapq.heappush(self._heap, (ts, self._seq, item))
        self._seq += 1

    def release(self, until: float) -> Iterator[tuple[float, Any]]:
        heap = self._heap
        while heap and heap[0][0] <= until:
            ts, _, item = heapq.heappop(heap)
            yield ts, item


# --- tests ----------------------------------------------------------------------------------


def _fix_fields(p: Position) -> tuple[Any, ...]:
    return (p.speed_kn, p.course_deg, p.flags, p.implied_speed_kn)


def _bits(values: tuple[Any, ...]) -> tuple[str, ...]:
    """repr keeps -0.0 apart from 0.0 and shows every bit of a float that matters."""
    return tuple(repr(v) for v in values)


@st.composite
def tracks(draw: st.DrawFn) -> list[Position]:
    """A random track: mostly plausible moves, some jumps, duplicates, late fixes, missing kinematics."""
    etype = draw(st.sampled_from(["vessel", "aircraft"]))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 60))
    ts, lat, lon = 1.6e9 + rng.uniform(0, 1e5), rng.uniform(-70, 70), rng.uniform(-179, 179)
    out: list[Position] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.08 and out:  # exact duplicate
            prev = out[-1]
            out.append(Position(etype, "1", prev.ts, prev.lat, prev.lon, prev.speed_kn))  # type: ignore[arg-type]
            continue
        if kind < 0.14 and out:  # late fix
            out.append(Position(etype, "1", ts - rng.uniform(0, 600), lat, lon))  # type: ignore[arg-type]
            continue
        ts += rng.choice([0.0, 0.5, 1.0, rng.uniform(1, 30), rng.uniform(30, 900)])
        if kind < 0.22:  # jump (spoofed or shared MMSI)
            lat2, lon2 = lat + rng.uniform(-2, 2), lon + rng.uniform(-2, 2)
            lat2, lon2 = max(-89.0, min(89.0, lat2)), max(-180.0, min(180.0, lon2))
        else:
            lat = max(-89.0, min(89.0, lat + rng.gauss(0, 0.002)))
            lon = max(-180.0, min(180.0, lon + rng.gauss(0, 0.002)))
            lat2, lon2 = lat, lon
        speed = rng.choice([None, None, rng.uniform(0, 30)])
        course = rng.choice([None, rng.uniform(0, 359.9)])
        out.append(Position(etype, "1", ts, lat2, lon2, speed, course))  # type: ignore[arg-type]
    return out


def _copy(p: Position) -> Position:
    return Position(p.entity_type, p.entity_id, p.ts, p.lat, p.lon, p.speed_kn, p.course_deg)


@settings(max_examples=300, deadline=None)
@given(track=tracks(), window=st.sampled_from([0.0, 60.0, 300.0]), reanchor=st.integers(1, 4))
def test_clean_matches_the_plain_implementation(track: list[Position], window: float, reanchor: int) -> None:
    cfg = CleaningConfig(derive_window_s=window, reanchor_after=reanchor)
    fast_state: CleanState | None = None
    ref_state: CleanState | None = None
    for original in track:
        a, b = _copy(original), _copy(original)
        fast_state, fast_reason = clean(fast_state, a, cfg)
        ref_state, ref_reason = ref_clean(ref_state, b, cfg)
        assert fast_reason == ref_reason
        assert _bits(_fix_fields(a)) == _bits(_fix_fields(b))
        assert fast_state is not None and ref_state is not None
        assert _bits(astuple(fast_state)) == _bits(astuple(ref_state))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), max_size=50))
def test_fast_round_is_round(values: list[float]) -> None:
    for x in values:
        assert repr(_round(x, 100.0)) == repr(round(x, 2))
        assert repr(_round(x, 10.0)) == repr(round(x, 1))


def test_fast_round_on_ties_and_edges() -> None:
    rng = random.Random(1)
    edges = [0.0, -0.0, 0.005, 0.015, 0.125, 0.375, 1.005, 2.675, 0.05, 0.15, 0.25, 0.35, 0.45, 1e9, 1e9 - 0.005,
             5e-324, 1e-300, 999999999.995, float("inf"), float("-inf"), 1.0000000000000002]  # fmt: skip
    edges += [k / 1000 for k in range(20000)] + [rng.uniform(0, 60) for _ in range(20000)]
    edges += [rng.uniform(0, 360) for _ in range(20000)] + [k / 200 for k in range(20000)]
    for x in edges:
        assert repr(_round(x, 100.0)) == repr(round(x, 2)), x
        assert repr(_round(x, 10.0)) == repr(round(x, 1)), x
    assert math.isnan(_round(float("nan"), 100.0))


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(
        st.one_of(st.tuples(st.just("push"), st.integers(0, 40)), st.tuples(st.just("release"), st.integers(-5, 45))),
        max_size=80,
    )
)
def test_reorder_buffer_releases_in_the_heap_order(ops: list[tuple[str, int]]) -> None:
    fast: ReorderBuffer[int] = ReorderBuffer(5.0)
    ref = RefReorderBuffer(5.0)
    for n, (op, value) in enumerate(ops):
        if op == "push":
            fast.push(float(value), n)
            ref.push(float(value), n)
            assert fast.max_ts == ref.max_ts
        elif n % 2:
            assert fast.pop_until(float(value)) == [item for _, item in ref.release(float(value))]
        else:
            assert list(fast.release(float(value))) == list(ref.release(float(value)))
        assert len(fast) == len(ref._heap)
    assert list(fast.drain()) == list(ref.release(float("inf")))


class _Phased:
    """A detector whose deadline jumps around, to exercise scheduling (state: last ts seen)."""

    name: ClassVar[str] = "phased"
    version: ClassVar[str] = "0"
    entity_types: ClassVar[tuple[str, ...]] = ("vessel", "aircraft")
    info = DetectorInfo("phased", "0", "x")

    def step(self, state: Any, fix: Position, ctx: TrackContext) -> tuple[Any, list[Alert]]:
        return (None if int(fix.ts) % 3 == 0 else fix.ts), []

    def expire(self, state: Any, watermark: float) -> tuple[Any, list[Alert]]:
        return None, []

    def deadline(self, state: Any) -> float | None:
        return None if int(state) % 5 == 0 else state + (int(state) % 7) * 100.0


def _ref_process(engine: TrackEngine, fix: Position) -> str | None:
    """The original TrackEngine.process (scheduling through _schedule/_deadline)."""
    from detectors.track_engine import TrackState

    key = (fix.entity_type, fix.entity_id)
    track = engine.tracks.get(key)
    if track is None:
        track = engine.tracks[key] = TrackState(det=[None] * len(engine.detectors))
    prev_ts = None if track.clean is None else track.clean.last_ts
    track.clean, reason = clean(track.clean, fix, engine.cleaning)
    if reason is not None:
        engine.counts[reason] += 1
        return reason
    track.last_ts = fix.ts
    track.ctx.interval_s = None if prev_ts is None else fix.ts - prev_ts  # the report interval, for detectors
    for i in engine._applies[fix.entity_type]:
        track.det[i], _ = engine.detectors[i].step(track.det[i], fix, track.ctx)
    engine._schedule(key, track)
    return None


@settings(max_examples=100, deadline=None)
@given(track=tracks())
def test_track_engine_schedules_as_before(track: list[Position]) -> None:
    env = Environment()
    dets = [LoiteringDetector(LoiteringConfig(), env), _Phased()]
    fast = TrackEngine(dets, CleaningConfig(), PipelineConfig(track_ttl_s=3600.0))
    ref = TrackEngine(dets, CleaningConfig(), PipelineConfig(track_ttl_s=3600.0))
    for original in track:
        a, b = _copy(original), _copy(original)
        assert fast.process(a).reject == _ref_process(ref, b)
        assert fast._deadlines == ref._deadlines
        key = (a.entity_type, a.entity_id)
        assert fast.tracks[key].scheduled == ref.tracks[key].scheduled
        assert repr(fast.tracks[key].det) == repr(ref.tracks[key].det)
