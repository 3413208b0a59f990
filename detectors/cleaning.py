"""Per-track cleaning in event time: duplicates, late fixes, impossible jumps, derived kinematics.

Nothing is silently dropped: a duplicate or late fix is returned with its reason so the
shell can count and dead-letter it; an impossible jump is *marked* (``FLAG_IMPLAUSIBLE``
and ``implied_speed_kn``) and passed on, so the spoofing detector can use it while the
other detectors skip it.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.geo import bearing_deg, haversine_m
from models.position import FLAG_DERIVED_KINEMATICS, FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, Position
from models.settings import CleaningConfig
from models.units import KN_PER_MPS

DUPLICATE = "duplicate"
LATE = "late"


@dataclass(slots=True)
class CleanState:
    last_ts: float
    last_lat: float
    last_lon: float
    # anchor: the last plausible fix of the track
    good_ts: float
    good_lat: float
    good_lon: float
    # a run of fixes that disagree with the anchor but agree with each other
    alt_ts: float | None = None
    alt_lat: float = 0.0
    alt_lon: float = 0.0
    alt_n: int = 0
    # fixes used to derive speed and course when the source reports none
    ref_ts: float | None = None
    ref_lat: float = 0.0
    ref_lon: float = 0.0
    pend_ts: float | None = None
    pend_lat: float = 0.0
    pend_lon: float = 0.0


def _implied_kn(dist_m: float, dt_s: float) -> float:
    return dist_m / max(dt_s, 1.0) * KN_PER_MPS


def clean(state: CleanState | None, fix: Position, cfg: CleaningConfig) -> tuple[CleanState | None, str | None]:
    """Clean one fix in place. Returns the new state and a reject reason (``None`` = accepted)."""
    if state is None:
        fix.flags |= FLAG_NEW_SEGMENT
        state = CleanState(fix.ts, fix.lat, fix.lon, fix.ts, fix.lat, fix.lon)
        _derive(state, fix, cfg)
        return state, None
    if fix.ts < state.last_ts:
        return state, LATE
    if fix.ts == state.last_ts and fix.lat == state.last_lat and fix.lon == state.last_lon:
        return state, DUPLICATE

    dist = haversine_m(state.good_lat, state.good_lon, fix.lat, fix.lon)
    implied = _implied_kn(dist, fix.ts - state.good_ts)
    fix.implied_speed_kn = round(implied, 2)
    limit = cfg.max_speed_kn(fix.entity_type)
    if dist > cfg.min_jump_m and implied > limit:
        if state.alt_ts is not None and _agrees(state, fix, cfg, limit):
            state.alt_n += 1
        else:
            state.alt_n = 1
        state.alt_ts, state.alt_lat, state.alt_lon = fix.ts, fix.lat, fix.lon
        if state.alt_n >= cfg.reanchor_after:
            # The new positions hold together: the track has moved on (or a new sender took over).
            fix.flags |= FLAG_NEW_SEGMENT
            _anchor(state, fix)
            state.ref_ts = state.pend_ts = None
        else:
            fix.flags |= FLAG_IMPLAUSIBLE
    else:
        _anchor(state, fix)
    state.last_ts, state.last_lat, state.last_lon = fix.ts, fix.lat, fix.lon
    if not fix.flags & FLAG_IMPLAUSIBLE:
        _derive(state, fix, cfg)
    return state, None


def _agrees(state: CleanState, fix: Position, cfg: CleaningConfig, limit: float) -> bool:
    assert state.alt_ts is not None
    d = haversine_m(state.alt_lat, state.alt_lon, fix.lat, fix.lon)
    return d <= cfg.min_jump_m or _implied_kn(d, fix.ts - state.alt_ts) <= limit


def _anchor(state: CleanState, fix: Position) -> None:
    state.good_ts, state.good_lat, state.good_lon = fix.ts, fix.lat, fix.lon
    state.alt_ts = None
    state.alt_n = 0


def _derive(state: CleanState, fix: Position, cfg: CleaningConfig) -> None:
    """Fill speed/course from the track when the source reports none.

    The base fix is at least ``derive_window_s`` older (while one exists), so GPS jitter
    between reports seconds apart does not turn a moored vessel into a fast one.
    """
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
