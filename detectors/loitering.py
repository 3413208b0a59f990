"""Loitering at sea: a vessel slow (under ``max_speed_kn``) for at least ``min_duration_s``.

Anchored on Global Fishing Watch's loitering event (under 2 kn for at least 1 h, away
from shore and anchorages) and RTEC's (> 30 min). Fixes near a port, inside an exclusion
zone or closer to shore than ``min_shore_distance_m`` end an episode instead of extending
it, and so do fixes whose AIS navigational status is one of ``excluded_nav_statuses`` (at
anchor, moored: ships waiting in an anchorage or made fast to a buoy or platform; the status
is set by the crew, ``[]`` turns this off). A silence longer than ``max_gap_s`` also ends
it: silence is not loitering.

Except for a vessel whose reports are that sparse anyway: offshore, satellites may hear a
vessel every 10–60 min, and then such a silence is its habit, not a silence. An episode
allows ``interval_factor`` times the vessel's usual interval (the lower median of its last
few intervals, the one before the episode included when it was at most
``sparse_max_gap_s``), between ``max_gap_s`` and ``sparse_max_gap_s`` (1 h: Global Fishing
Watch resamples tracks across gaps under 1 h). A vessel heard every few seconds keeps
``max_gap_s``; ``longest_silence_s`` in the evidence says what an episode bridged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Final

from detectors.base import Environment, TrackContext
from detectors.cells import finite_or_none, sample_key, shared_sea_check
from detectors.evidence import histogram_median, threshold_values, with_thresholds
from detectors.lifecycle import AlertDraft, due_status, emit, saturating
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash
from models.geo import haversine_m
from models.position import FLAG_DERIVED_KINEMATICS, FLAG_IMPLAUSIBLE, Position

SPEED_BIN_KN: Final = 0.1
# evidence["thresholds"]: the config values an episode is judged against
THRESHOLDS: Final = (
    "max_speed_kn", "min_duration_s", "max_gap_s", "sparse_max_gap_s", "interval_factor", "break_after_s",
    "port_exclusion_m", "min_shore_distance_m",
)  # fmt: skip
INTERVALS: Final = 5  # the usual interval: the lower median of an episode's last few


@dataclass(frozen=True)
class LoiteringConfig:
    enabled: bool = True
    max_speed_kn: float = field(default=2.0, metadata=bounds(0.1, 20))
    min_duration_s: float = field(default=3600.0, metadata=bounds(60, 7 * 86400))
    max_gap_s: float = field(default=1800.0, metadata=bounds(60, 86400))
    sparse_max_gap_s: float = field(default=3600.0, metadata=bounds(60, 86400))
    interval_factor: float = field(default=3.0, metadata=bounds(1, 100))
    break_after_s: float = field(default=600.0, metadata=bounds(0, 86400))
    update_every_s: float = field(default=1800.0, metadata=bounds(60, 86400))
    port_exclusion_m: float = field(default=3000.0, metadata=bounds(0, 100000))
    min_shore_distance_m: float = field(default=0.0, metadata=bounds(0, 500000))
    excluded_nav_statuses: tuple[int, ...] = (1, 5)
    severity: str = field(default="medium", metadata=bounds(choices=("low", "medium", "high")))


# init=False: a written __init__ is compiled, a generated one runs interpreted (test_written_init.py)
@dataclass(slots=True, init=False)
class LoiteringState:
    entity_id: str = ""
    since_ts: float | None = None  # first slow fix of the episode
    last_ts: float = 0.0  # last fix of any kind
    slow_ts: float = 0.0  # last slow fix of the episode
    fast_since: float | None = None
    n: int = 0
    sum_lat: float = 0.0
    sum_lon: float = 0.0
    first_lat: float = 0.0
    first_lon: float = 0.0
    radius_m: float = 0.0
    derived: int = 0
    hist: list[int] = field(default_factory=list)
    revision: int = 0
    emitted_end: float = 0.0
    intervals: list[float] = field(default_factory=list)  # the episode's last report intervals
    longest_s: float = 0.0  # longest interval the episode bridged

    def __init__(
        self,
        entity_id: str = "",
        since_ts: float | None = None,
        last_ts: float = 0.0,
        slow_ts: float = 0.0,
        fast_since: float | None = None,
        n: int = 0,
        sum_lat: float = 0.0,
        sum_lon: float = 0.0,
        first_lat: float = 0.0,
        first_lon: float = 0.0,
        radius_m: float = 0.0,
        derived: int = 0,
        hist: list[int] | None = None,
        revision: int = 0,
        emitted_end: float = 0.0,
        intervals: list[float] | None = None,
        longest_s: float = 0.0,
    ) -> None:
        self.entity_id = entity_id
        self.since_ts = since_ts
        self.last_ts = last_ts
        self.slow_ts = slow_ts
        self.fast_since = fast_since
        self.n = n
        self.sum_lat = sum_lat
        self.sum_lon = sum_lon
        self.first_lat = first_lat
        self.first_lon = first_lon
        self.radius_m = radius_m
        self.derived = derived
        self.hist = [] if hist is None else hist
        self.revision = revision
        self.emitted_end = emitted_end
        self.intervals = [] if intervals is None else intervals
        self.longest_s = longest_s


class LoiteringDetector:
    name: ClassVar[str] = "loitering"
    version: ClassVar[str] = "1.0"
    entity_types: ClassVar[tuple[str, ...]] = ("vessel",)

    def __init__(self, cfg: LoiteringConfig, env: Environment) -> None:
        self.cfg = cfg
        self.env = env
        self.info = DetectorInfo(self.name, self.version, config_hash(cfg))
        self._bins = int(cfg.max_speed_kn / SPEED_BIN_KN) + 1
        self._anchored = frozenset(cfg.excluded_nav_statuses)
        self._sea = shared_sea_check(env, cfg.port_exclusion_m, cfg.min_shore_distance_m)
        self._thresholds = threshold_values(cfg, THRESHOLDS)

    # --- protocol -------------------------------------------------------------------
    def step(
        self, state: LoiteringState | None, fix: Position, ctx: TrackContext
    ) -> tuple[LoiteringState | None, list[Alert]]:
        if fix.flags & FLAG_IMPLAUSIBLE or fix.speed_kn is None:
            return state, []
        cfg = self.cfg
        alerts: list[Alert] = []
        if state is None:
            state = LoiteringState(entity_id=fix.entity_id)
        elif state.since_ts is not None:
            gap = fix.ts - state.last_ts
            if gap > self._allowed_gap_s(state):
                alerts += self._close(state)
            else:
                _note_interval(state, gap)
        state.last_ts = fix.ts
        slow = fix.speed_kn <= cfg.max_speed_kn
        if slow and (fix.nav_status in self._anchored or self._excluded(fix)):
            alerts += self._close(state)
            return self._idle(state), alerts
        if not slow:
            if state.since_ts is not None:
                if state.fast_since is None:
                    state.fast_since = fix.ts
                if fix.ts - state.fast_since >= cfg.break_after_s:
                    alerts += self._close(state)
            return self._idle(state), alerts
        if state.fast_since is not None and fix.ts - state.fast_since >= cfg.break_after_s:
            alerts += self._close(state)
        state.fast_since = None
        if state.since_ts is None:
            self._begin(state, fix, ctx.interval_s)
        self._extend(state, fix)
        alerts += self._maybe_emit(state, ctx)
        return state, alerts

    def expire(self, state: LoiteringState, watermark: float) -> tuple[LoiteringState | None, list[Alert]]:
        if state.since_ts is not None and watermark - state.last_ts >= self._allowed_gap_s(state):
            alerts = self._close(state)
            return None, alerts
        return (state if state.since_ts is not None else None), []

    def deadline(self, state: LoiteringState) -> float | None:
        return state.last_ts + self._allowed_gap_s(state) if state.since_ts is not None else None

    def _allowed_gap_s(self, state: LoiteringState) -> float:
        """The silence that ends the episode: ``max_gap_s``, longer for a sparse reporter."""
        cfg = self.cfg
        intervals = state.intervals
        if not intervals or cfg.sparse_max_gap_s <= cfg.max_gap_s:
            return cfg.max_gap_s
        usual = sorted(intervals)[(len(intervals) - 1) // 2]
        return max(cfg.max_gap_s, min(cfg.sparse_max_gap_s, cfg.interval_factor * usual))

    # --- episode --------------------------------------------------------------------
    def _excluded(self, fix: Position) -> bool:
        """Near a port or the shore, or in an exclusion zone (the cache the pair detectors share)."""
        return self._sea.excluded(sample_key("vessel", fix.entity_id), fix.lat, fix.lon)

    def _idle(self, state: LoiteringState) -> LoiteringState | None:
        return state if state.since_ts is not None else None

    def _begin(self, state: LoiteringState, fix: Position, interval_s: float | None) -> None:
        state.since_ts = fix.ts
        state.intervals = [] if interval_s is None or interval_s > self.cfg.sparse_max_gap_s else [interval_s]
        state.longest_s = 0.0
        state.n = 0
        state.sum_lat = state.sum_lon = 0.0
        state.first_lat, state.first_lon = fix.lat, fix.lon
        state.radius_m = 0.0
        state.derived = 0
        state.hist = [0] * self._bins
        state.revision = 0
        state.emitted_end = 0.0

    def _extend(self, state: LoiteringState, fix: Position) -> None:
        assert fix.speed_kn is not None
        state.slow_ts = fix.ts
        state.n += 1
        state.sum_lat += fix.lat
        state.sum_lon += fix.lon
        if fix.flags & FLAG_DERIVED_KINEMATICS:
            state.derived += 1
        b = min(int(fix.speed_kn / SPEED_BIN_KN), self._bins - 1)
        state.hist[b] += 1
        d = haversine_m(state.first_lat, state.first_lon, fix.lat, fix.lon)
        if d > state.radius_m:
            state.radius_m = d

    def _maybe_emit(self, state: LoiteringState, ctx: TrackContext) -> list[Alert]:
        assert state.since_ts is not None
        cfg = self.cfg
        ready = state.slow_ts - state.since_ts >= cfg.min_duration_s
        status = due_status(state.revision, ready, state.slow_ts, state.emitted_end, cfg.update_every_s)
        return [] if status is None else [self._revision(state, status, ctx.name)]

    def _close(self, state: LoiteringState) -> list[Alert]:
        out = []
        if state.revision > 0 and state.since_ts is not None:
            out.append(self._revision(state, "closed", None))
        state.since_ts = None
        state.fast_since = None
        state.revision = 0
        return out

    def _revision(self, state: LoiteringState, status: AlertStatus, name: str | None) -> Alert:
        assert state.since_ts is not None
        state.revision += 1
        state.emitted_end = state.slow_ts
        duration = state.slow_ts - state.since_ts
        lat, lon = state.sum_lat / state.n, state.sum_lon / state.n
        geo = self.env.geography
        evidence = {
            "duration_s": round(duration),
            "min_duration_s": self.cfg.min_duration_s,
            "median_speed_kn": round(histogram_median(state.hist, SPEED_BIN_KN), 2),
            "max_speed_kn": self.cfg.max_speed_kn,
            "positions": state.n,
            "radius_m": round(state.radius_m),
            "derived_speed_share": round(state.derived / state.n, 3),
            "longest_silence_s": round(state.longest_s),
            "distance_to_shore_m": finite_or_none(geo.distance_to_shore_m(lat, lon)),
            "distance_to_port_m": finite_or_none(geo.distance_to_port_m(lat, lon)),
        }
        with_thresholds(evidence, self._thresholds)
        confidence = 0.5 + 0.3 * saturating(duration, 2 * self.cfg.min_duration_s)
        confidence += 0.2 * saturating(state.n, 30) * (1 - state.derived / state.n * 0.5)
        severity: Severity = self.cfg.severity  # type: ignore[assignment]
        draft = AlertDraft(
            kind="loitering",
            entities=(EntityRef("vessel", state.entity_id, name),),
            start_ts=state.since_ts,
            end_ts=state.slow_ts,
            lat=lat,
            lon=lon,
            severity=severity,
            confidence=confidence,
            evidence=evidence,
        )
        return emit(self.info, draft, state.revision, status)


def _note_interval(state: LoiteringState, gap: float) -> None:
    intervals = state.intervals
    intervals.append(gap)
    if len(intervals) > INTERVALS:
        del intervals[0]
    if gap > state.longest_s:
        state.longest_s = gap
