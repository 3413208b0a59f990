"""Vessel–vessel rendezvous: two slow vessels side by side at sea, for long enough.

Anchored on Global Fishing Watch's encounter (within 500 m for at least 2 h, median speed
under 2 kn, away from anchorages; encounters of the same pair less than 4 h apart merged)
but with a default minimum of 15 min of closeness: transfers in smuggling take tens of
minutes, and the stream literature (RTEC) keeps rendezvous of a few minutes. See
``[detectors.rendezvous]`` in ``config/vigiamar.toml`` for the reasons behind each value.

Run by :mod:`detectors.cell_engine` on time-slotted samples, so two vessels are compared at
the same instants whatever their reporting rates. A slot *counts* for a pair when both are
slower than ``max_speed_kn``, away from ports and shore, outside exclusion zones, neither
reports a navigational status of ``excluded_nav_statuses``, and they are within
``max_distance_m``.

Anchorages. Ships waiting for a berth lie at anchor side by side off ports, often beyond the
port and shore distances: the classic rendezvous false alarm. Two things keep them out: a
vessel whose AIS navigational status says "at anchor" (1) or "moored" (5) is not a candidate,
and analysts draw anchorage areas as ``role: exclusion`` polygons in ``config/zones/*.geojson``
(:class:`detectors.cells.SeaCheck` honours them, as loitering and AIS gap do). The status is
set by the crew, so a vessel could hide behind it; dark rendezvous keeps judging such vessels
(a companion at anchor is still a companion), and ``excluded_nav_statuses = []`` turns it off.

Satellite coverage. Offshore, AIS is often heard only by satellites, every 10–60 min, and
two vessels are then almost never heard in the same minute. The engine interpolates this
detector's samples across silences up to ``sparse_interp_gap_s`` (1 h: Global Fishing Watch
resamples encounters across gaps under 1 h), and the other detectors' across their own
limits. Interpolated tracks are less certain than heard ones (two fishing vessels working
one ground may be interpolated side by side for a while), so the close time an episode
needs grows from ``min_duration_s`` towards ``sparse_min_duration_s`` (GFW's 2 h): each
counted slot weighs how far its longer interpolation gap lies from ``max_interp_gap_s``
(weight 0) to ``sparse_interp_gap_s`` (weight 1), and the mean weight sets the need. A
meeting heard every 11 min needs little more than 15 min; every 30 min, about an hour;
every hour, 2 h.

- A **run** is counted slots whose gaps are at most ``max_interp_gap_s`` (a short drop-out
  or drift apart stays part of the run); its close time is last − first slot.
- An **episode** is runs of the same pair less than ``merge_gap_s`` apart: one alert, not
  fragments. It opens when the close time of its runs reaches ``min_duration_s`` and each
  vessel's median speed over the counted slots is at most ``max_median_speed_kn``; it is
  updated at most every ``update_every_s`` while it lasts, and once when a run ends (so the
  latest revision always carries the end of the meeting); it closes ``merge_gap_s`` after
  the last counted slot, when the pair can no longer resume it.

The alert id is built from the sorted MMSIs and the first counted slot: the same whichever
vessel reported first, and whichever cell held the pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Final

from detectors.base import Environment
from detectors.candidates import slow_vessel_at_sea
from detectors.cells import Sample, finite_or_none, shared_sea_check
from detectors.evidence import histogram_median, threshold_values, with_thresholds
from detectors.lifecycle import AlertDraft, emit, saturating
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash

SPEED_BIN_KN: Final = 0.1
DIST_BINS: Final = 50
DENSE_SLOTS: Final = 3  # a slot is well sampled when both were interpolated over at most this many slots

# AIS ship types that work alongside other vessels for a living: towing (31, 32), pilot (50),
# search and rescue (51), tug (52), port tender (53), law enforcement (55).
SERVICE_SHIP_TYPES: Final = (31, 32, 50, 51, 52, 53, 55)

# AIS navigational statuses of a vessel that is not going anywhere: at anchor (1), moored (5).
ANCHORED_NAV_STATUSES: Final = (1, 5)

# evidence["thresholds"]: the config values a pair's slots and episode are judged against
THRESHOLDS: Final = (
    "max_distance_m", "min_duration_s", "max_median_speed_kn", "max_speed_kn", "merge_gap_s",
    "max_interp_gap_s", "sparse_interp_gap_s", "sparse_min_duration_s", "port_exclusion_m", "min_shore_distance_m",
)  # fmt: skip


@dataclass(frozen=True)
class RendezvousConfig:
    enabled: bool = True
    max_distance_m: float = field(default=500.0, metadata=bounds(10, 5000))
    min_duration_s: float = field(default=900.0, metadata=bounds(60, 86400))
    max_median_speed_kn: float = field(default=2.0, metadata=bounds(0.1, 20))
    max_speed_kn: float = field(default=4.0, metadata=bounds(0.1, 30))
    merge_gap_s: float = field(default=14400.0, metadata=bounds(0, 86400))
    port_exclusion_m: float = field(default=3000.0, metadata=bounds(0, 100000))
    min_shore_distance_m: float = field(default=1852.0, metadata=bounds(0, 500000))
    slot_s: float = field(default=60.0, metadata=bounds(10, 900))
    max_interp_gap_s: float = field(default=600.0, metadata=bounds(0, 7200))
    sparse_interp_gap_s: float = field(default=3600.0, metadata=bounds(0, 7200))  # 0: never
    sparse_min_duration_s: float = field(default=7200.0, metadata=bounds(60, 86400))
    update_every_s: float = field(default=1800.0, metadata=bounds(60, 86400))
    ship_stations_only: bool = True
    exempt_ship_types: tuple[int, ...] = SERVICE_SHIP_TYPES
    excluded_nav_statuses: tuple[int, ...] = ANCHORED_NAV_STATUSES
    severity: str = field(default="medium", metadata=bounds(choices=("low", "medium", "high")))

    def __post_init__(self) -> None:
        if self.max_median_speed_kn > self.max_speed_kn:
            raise ValueError("max_median_speed_kn must not exceed max_speed_kn")
        if self.merge_gap_s < self.max_interp_gap_s:
            raise ValueError("merge_gap_s must be at least max_interp_gap_s (a run already bridges that)")
        if 0 < self.sparse_interp_gap_s < self.max_interp_gap_s:
            raise ValueError("sparse_interp_gap_s must be 0 or at least max_interp_gap_s")
        if self.sparse_min_duration_s < self.min_duration_s:
            raise ValueError("sparse_min_duration_s must be at least min_duration_s")


@dataclass(slots=True)
class RendezvousState:
    """One episode of one pair (``a`` the smaller key), kept in the cell that owns the pair."""

    a: str
    b: str
    a_name: str | None
    b_name: str | None
    start_ts: float
    run_start: float
    last_ts: float
    closed_s: float = 0.0  # close time of the episode's earlier runs
    runs: int = 1
    n: int = 0
    dense: int = 0  # counted slots where both vessels reported within DENSE_SLOTS slots
    sparse: int = 0  # counted slots where one was interpolated across more than max_interp_gap_s
    sparse_weight: float = 0.0  # of those slots, summed: (gap - max_interp_gap_s) / (sparse - max) gap, at most 1
    sum_lat: float = 0.0
    sum_lon: float = 0.0
    min_dist_m: float = math.inf
    dist_hist: list[int] = field(default_factory=list)
    speed_a: list[int] = field(default_factory=list)
    speed_b: list[int] = field(default_factory=list)
    revision: int = 0
    emitted_end: float = 0.0

    @property
    def close_s(self) -> float:
        return self.closed_s + (self.last_ts - self.run_start)


class RendezvousDetector:
    name: ClassVar[str] = "rendezvous"
    version: ClassVar[str] = "1.0"
    entity_pairs: ClassVar[frozenset[tuple[str, str]]] = frozenset({("vessel", "vessel")})

    def __init__(self, cfg: RendezvousConfig, env: Environment) -> None:
        self.cfg = cfg
        self.env = env
        self.info = DetectorInfo(self.name, self.version, config_hash(cfg))
        self.radius_m = cfg.max_distance_m
        self.slot_s = cfg.slot_s
        self.max_interp_gap_s = max(cfg.max_interp_gap_s, cfg.sparse_interp_gap_s)
        self.memory_s = cfg.merge_gap_s
        self.speed_limit_kn = cfg.max_speed_kn
        self._exempt = frozenset(cfg.exempt_ship_types)
        self._anchored = frozenset(cfg.excluded_nav_statuses)
        self._sea = shared_sea_check(env, cfg.port_exclusion_m, cfg.min_shore_distance_m)
        self._speed_bins = int(cfg.max_speed_kn / SPEED_BIN_KN) + 1
        self._dist_bin_m = cfg.max_distance_m / DIST_BINS
        self._dense_gap_s = DENSE_SLOTS * cfg.slot_s
        self._sparse_span_s = max(1.0, cfg.sparse_interp_gap_s - cfg.max_interp_gap_s)
        self._thresholds = threshold_values(cfg, THRESHOLDS)

    # --- protocol -------------------------------------------------------------------
    def accepts(self, s: Sample) -> bool:
        if s.nav_status is not None and s.nav_status in self._anchored:
            return False
        cfg = self.cfg
        return slow_vessel_at_sea(s, cfg.max_speed_kn, cfg.ship_stations_only, self._exempt, self._sea)

    def observe(
        self, state: RendezvousState | None, a: Sample, b: Sample, distance_m: float
    ) -> tuple[RendezvousState | None, list[Alert]]:
        alerts: list[Alert] = []
        if state is not None and a.ts - state.last_ts > self.cfg.merge_gap_s:
            alerts += self._close(state)
            state = None
        if state is None:
            state = RendezvousState(
                a.eid, b.eid, a.name, b.name, a.ts, a.ts, a.ts,
                dist_hist=[0] * DIST_BINS, speed_a=[0] * self._speed_bins, speed_b=[0] * self._speed_bins,
            )  # fmt: skip
        elif a.ts - state.last_ts > self.cfg.max_interp_gap_s:
            state.closed_s += state.last_ts - state.run_start
            state.run_start = a.ts
            state.runs += 1
        self._extend(state, a, b, distance_m)
        alerts += self._maybe_emit(state)
        return state, alerts

    def expire(self, state: RendezvousState, now: float) -> tuple[RendezvousState | None, list[Alert]]:
        if now - state.last_ts >= self.cfg.merge_gap_s:
            return None, self._close(state)
        if self._run_ended_unreported(state) and now - state.last_ts >= self.cfg.max_interp_gap_s:
            return state, [self._revision(state, "update")]  # the run is over: report where it ended
        return state, []

    def deadline(self, state: RendezvousState) -> float | None:
        if self._run_ended_unreported(state):
            return state.last_ts + self.cfg.max_interp_gap_s
        return state.last_ts + self.cfg.merge_gap_s

    @staticmethod
    def _run_ended_unreported(state: RendezvousState) -> bool:
        return state.revision > 0 and state.emitted_end < state.last_ts

    # --- episode --------------------------------------------------------------------
    def _extend(self, state: RendezvousState, a: Sample, b: Sample, distance_m: float) -> None:
        assert a.speed_kn is not None and b.speed_kn is not None
        state.last_ts = a.ts
        state.n += 1
        gap = a.gap_s if a.gap_s > b.gap_s else b.gap_s
        if gap <= self._dense_gap_s:
            state.dense += 1
        if gap > self.cfg.max_interp_gap_s:
            state.sparse += 1
            state.sparse_weight += min(1.0, (gap - self.cfg.max_interp_gap_s) / self._sparse_span_s)
        state.sum_lat += (a.lat + b.lat) * 0.5
        state.sum_lon += (a.lon + b.lon) * 0.5  # pairs are at most a few km apart: no antimeridian wrap issue
        if distance_m < state.min_dist_m:
            state.min_dist_m = distance_m
        state.dist_hist[min(int(distance_m / self._dist_bin_m), DIST_BINS - 1)] += 1
        top = self._speed_bins - 1
        state.speed_a[min(int(a.speed_kn / SPEED_BIN_KN), top)] += 1
        state.speed_b[min(int(b.speed_kn / SPEED_BIN_KN), top)] += 1
        if a.name:
            state.a_name = a.name
        if b.name:
            state.b_name = b.name

    def _maybe_emit(self, state: RendezvousState) -> list[Alert]:
        cfg = self.cfg
        if state.revision == 0:
            if state.close_s < self._required_close_s(state):
                return []
            medians = (histogram_median(state.speed_a, SPEED_BIN_KN), histogram_median(state.speed_b, SPEED_BIN_KN))
            if max(medians) > cfg.max_median_speed_kn:
                return []
            return [self._revision(state, "open")]
        if state.last_ts - state.emitted_end >= cfg.update_every_s:
            return [self._revision(state, "update")]
        return []

    def _required_close_s(self, state: RendezvousState) -> float:
        """``min_duration_s``, up to ``sparse_min_duration_s`` as its slots were interpolated
        across longer silences: a meeting heard only every hour must last GFW's 2 h."""
        cfg = self.cfg
        return cfg.min_duration_s + (cfg.sparse_min_duration_s - cfg.min_duration_s) * state.sparse_weight / state.n

    def _close(self, state: RendezvousState) -> list[Alert]:
        if state.revision == 0:
            return []
        return [self._revision(state, "closed")]

    def _revision(self, state: RendezvousState, status: AlertStatus) -> Alert:
        cfg = self.cfg
        state.revision += 1
        state.emitted_end = state.last_ts
        lat, lon = state.sum_lat / state.n, state.sum_lon / state.n
        geo = self.env.geography
        close_s = state.close_s
        median_dist = histogram_median(state.dist_hist, self._dist_bin_m)
        evidence = {
            "duration_s": round(state.last_ts - state.start_ts),
            "close_s": round(close_s),
            "runs": state.runs,
            "min_distance_m": round(state.min_dist_m, 1),
            "median_distance_m": round(median_dist),
            "median_speed_kn": {
                state.a: round(histogram_median(state.speed_a, SPEED_BIN_KN), 2),
                state.b: round(histogram_median(state.speed_b, SPEED_BIN_KN), 2),
            },
            "positions": 2 * state.n,
            "slots": state.n,
            "well_sampled_share": round(state.dense / state.n, 3),
            "sparse_share": round(state.sparse / state.n, 3),
            "required_close_s": round(self._required_close_s(state)),
            "slot_s": cfg.slot_s,
            "max_distance_m": cfg.max_distance_m,
            "min_duration_s": cfg.min_duration_s,
            "max_median_speed_kn": cfg.max_median_speed_kn,
            "merge_gap_s": cfg.merge_gap_s,
            "distance_to_shore_m": finite_or_none(geo.distance_to_shore_m(lat, lon)),
            "distance_to_port_m": finite_or_none(geo.distance_to_port_m(lat, lon)),
        }
        with_thresholds(evidence, self._thresholds)
        confidence = 0.4 + 0.3 * saturating(close_s, 2 * cfg.min_duration_s)
        confidence += 0.2 * (1.0 - min(1.0, median_dist / cfg.max_distance_m))
        confidence += 0.1 * state.dense / state.n
        severity: Severity = cfg.severity  # type: ignore[assignment]
        draft = AlertDraft(
            kind="rendezvous",
            entities=(EntityRef("vessel", state.a, state.a_name), EntityRef("vessel", state.b, state.b_name)),
            start_ts=state.start_ts,
            end_ts=state.last_ts,
            lat=lat,
            lon=lon,
            severity=severity,
            confidence=confidence,
            evidence=evidence,
        )
        return emit(self.info, draft, state.revision, status)
