"""Per-track cleaning in event time: duplicates, late fixes, impossible jumps, derived kinematics.

Nothing is silently dropped: a duplicate or late fix is returned with its reason so the
shell can count and dead-letter it; an impossible jump is *marked* (``FLAG_IMPLAUSIBLE``
and ``implied_speed_kn``) and passed on, so the spoofing detector can use it while the
other detectors skip it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from models.geo import haversine_m
from models.position import FLAG_DERIVED_KINEMATICS, FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, Position
from models.settings import CleaningConfig
from models.units import DEG_TO_RAD, EARTH_RADIUS_M, KN_PER_MPS

DUPLICATE: Final = "duplicate"
LATE: Final = "late"


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


# The hot path below computes exactly what models.geo.haversine_m / bearing_deg and
# round() give (same operations in the same order, so the same floats): it only shares
# the fix's cos(latitude) between the two distances and skips the calls.
_TWO_R: Final = 2.0 * EARTH_RADIUS_M


def _round(x: float, scale: float) -> float:
    """``round(x, n)`` for ``scale == 10.0 ** n``, bit for bit, without its decimal conversion.

    round() rounds the exact value of x to n decimals (ties to even) and returns the
    nearest float to that decimal, which is what ``k / scale`` is (IEEE division is
    correctly rounded). ``x * scale`` is off by at most half an ulp, far below the 0.01
    kept from a tie, so ``k`` is the same integer. Ties, zero, negatives, huge values and
    non-finite values take round() itself.
    """
    if 0.0 < x < 1e9:
        y = x * scale
        k = math.floor(y)
        frac = y - k
        if frac < 0.49:
            return k / scale
        if frac > 0.51:
            return (k + 1) / scale
    return round(x, 2 if scale == 100.0 else 1)


def _distance_m(lat1: float, lon1: float, p2: float, cos_p2: float, lon2: float) -> float:
    """haversine_m(lat1, lon1, lat2, lon2) given p2 = lat2 in radians and cos(p2)."""
    p1 = lat1 * DEG_TO_RAD
    a = math.sin((p2 - p1) * 0.5) ** 2 + math.cos(p1) * cos_p2 * math.sin((lon2 - lon1) * DEG_TO_RAD * 0.5) ** 2
    return _TWO_R * math.asin(math.sqrt(a if a < 1.0 else 1.0))


def clean(state: CleanState | None, fix: Position, cfg: CleaningConfig) -> tuple[CleanState | None, str | None]:
    """Clean one fix in place. Returns the new state and a reject reason (``None`` = accepted)."""
    if state is None:
        fix.flags |= FLAG_NEW_SEGMENT
        state = CleanState(fix.ts, fix.lat, fix.lon, fix.ts, fix.lat, fix.lon)
        p2 = fix.lat * DEG_TO_RAD
        _derive(state, fix, cfg, p2, math.cos(p2))
        return state, None
    ts = fix.ts
    lat = fix.lat
    lon = fix.lon
    if ts < state.last_ts:
        return state, LATE
    if ts == state.last_ts and lat == state.last_lat and lon == state.last_lon:
        return state, DUPLICATE

    p2 = lat * DEG_TO_RAD
    cos_p2 = math.cos(p2)
    dist = _distance_m(state.good_lat, state.good_lon, p2, cos_p2, lon)
    dt = ts - state.good_ts
    implied = dist / (1.0 if dt < 1.0 else dt) * KN_PER_MPS  # _implied_kn
    fix.implied_speed_kn = _round(implied, 100.0)
    limit = cfg.aircraft_max_speed_kn if fix.entity_type == "aircraft" else cfg.vessel_max_speed_kn
    if dist > cfg.min_jump_m and implied > limit:
        if state.alt_ts is not None and _agrees(state, fix, cfg, limit):
            state.alt_n += 1
        else:
            state.alt_n = 1
        state.alt_ts, state.alt_lat, state.alt_lon = ts, lat, lon
        if state.alt_n >= cfg.reanchor_after:
            # The new positions hold together: the track has moved on (or a new sender took over).
            fix.flags |= FLAG_NEW_SEGMENT
            _anchor(state, fix)
            state.ref_ts = state.pend_ts = None
        else:
            fix.flags |= FLAG_IMPLAUSIBLE
    else:
        state.good_ts, state.good_lat, state.good_lon = ts, lat, lon  # _anchor
        state.alt_ts = None
        state.alt_n = 0
    state.last_ts, state.last_lat, state.last_lon = ts, lat, lon
    if not fix.flags & FLAG_IMPLAUSIBLE:
        _derive(state, fix, cfg, p2, cos_p2)
    return state, None


def _agrees(state: CleanState, fix: Position, cfg: CleaningConfig, limit: float) -> bool:
    assert state.alt_ts is not None
    d = haversine_m(state.alt_lat, state.alt_lon, fix.lat, fix.lon)
    return d <= cfg.min_jump_m or _implied_kn(d, fix.ts - state.alt_ts) <= limit


def _anchor(state: CleanState, fix: Position) -> None:
    state.good_ts, state.good_lat, state.good_lon = fix.ts, fix.lat, fix.lon
    state.alt_ts = None
    state.alt_n = 0


def _derive(state: CleanState, fix: Position, cfg: CleaningConfig, p2: float, cos_p2: float) -> None:
    """Fill speed/course from the track when the source reports none.

    The base fix is at least ``derive_window_s`` older (while one exists), so GPS jitter
    between reports seconds apart does not turn a moored vessel into a fast one.
    ``p2`` and ``cos_p2`` are the fix's latitude in radians and its cosine.
    """
    ts = fix.ts
    if state.pend_ts is None:
        state.pend_ts, state.pend_lat, state.pend_lon = ts, fix.lat, fix.lon
    elif ts - state.pend_ts >= cfg.derive_window_s:
        state.ref_ts, state.ref_lat, state.ref_lon = state.pend_ts, state.pend_lat, state.pend_lon
        state.pend_ts, state.pend_lat, state.pend_lon = ts, fix.lat, fix.lon
    if fix.speed_kn is not None:
        return
    if state.ref_ts is not None:
        base_ts, base_lat, base_lon = state.ref_ts, state.ref_lat, state.ref_lon
    else:
        base_ts, base_lat, base_lon = state.pend_ts, state.pend_lat, state.pend_lon
    dt = ts - base_ts
    if dt <= 0:
        return
    # haversine_m(base, fix) and, when needed, bearing_deg(base, fix), sharing cos/sin terms
    p1 = base_lat * DEG_TO_RAD
    cos_p1 = math.cos(p1)
    dl = (fix.lon - base_lon) * DEG_TO_RAD
    a = math.sin((p2 - p1) * 0.5) ** 2 + cos_p1 * cos_p2 * math.sin(dl * 0.5) ** 2
    dist = _TWO_R * math.asin(math.sqrt(a if a < 1.0 else 1.0))
    fix.speed_kn = _round(dist / dt * KN_PER_MPS, 100.0)
    if fix.course_deg is None and dist > 10.0:
        y = math.sin(dl) * cos_p2
        x = cos_p1 * math.sin(p2) - math.sin(p1) * cos_p2 * math.cos(dl)
        fix.course_deg = _round((math.degrees(math.atan2(y, x)) + 360.0) % 360.0, 10.0)
    fix.flags |= FLAG_DERIVED_KINEMATICS
