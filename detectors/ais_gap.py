"""AIS gap: a vessel at sea goes silent for longer than its own reporting habits explain.

Anchored on Global Fishing Watch's AIS-disabling events (a gap over 12 h while more than
50 nm from shore, where satellite coverage is the limit). Closer to shore, terrestrial
receivers hear a class A transponder every 2-10 s and class B every 30 s, so much shorter
silences matter; small interdiction zones may ask for shorter ones still.

Threshold for one silence, judged at the vessel's last position before it::

    threshold = max(base, interval_factor x usual interval)
    base      = the zone's ``ais_gap_min_gap_s`` (smallest of the zones there that set it)
                else offshore_min_gap_s   beyond offshore_distance_m from shore
                else min_gap_s

The usual interval is the median of a small log2 histogram of the track's own report
intervals (halved when it fills, so it follows the vessel's current habits); until
``min_intervals`` are known only ``base`` counts. A silence counts only *at sea*: the last
position at least ``min_shore_distance_m`` from shore, more than ``port_exclusion_m`` from a
port and outside every exclusion zone (moored vessels switch off; harbour gaps are noise).

Lifecycle (event time only):

- the track's first fix never alerts (nothing was known before it);
- ``open`` when the watermark passes last seen + threshold (through ``deadline``/``expire``),
  or when a reappearing fix shows the gap was that long (same revision either way):
  start = last seen, end = last seen + threshold;
- ``closed`` when the vessel reappears: end = first fix after the gap, with both positions,
  the distance between them and the speed that implies;
- a vessel that does not reappear within ``lost_after_s`` is closed then (end = last seen +
  lost_after_s, ``reappeared: false``) and forgotten. Keep it at or below ``[pipeline]
  track_ttl_s``: a track evicted earlier is closed at eviction with end = that watermark.

Geography is consulted once per silence longer than the smallest possible threshold, never
per fix. A gap is one alert however many UTC days it spans (no daily windows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from detectors.base import Environment, TrackContext
from detectors.cells import finite_or_none
from detectors.evidence import threshold_values, where, with_thresholds
from detectors.lifecycle import AlertDraft, emit, saturating
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash
from models.errors import ConfigError
from models.geo import haversine_m
from models.position import FLAG_IMPLAUSIBLE, Position
from models.units import KN_PER_MPS

ZONE_GAP_PROPERTY: Final = "ais_gap_min_gap_s"
# evidence["thresholds"]: these config values, then the silence this alert needed
# (``min_gap_s``: the threshold above) and the base it came from (``base_min_gap_s``)
THRESHOLDS: Final = (
    "offshore_distance_m", "interval_factor", "min_intervals", "min_shore_distance_m", "port_exclusion_m",
    "lost_after_s",
)  # fmt: skip
HIST_BINS: Final = 18  # log2 bins of report intervals: [1 s, 2 s) ... [2^17 s ≈ 36 h, ∞)
HIST_HALVE_AT: Final = 64

# Silence phases
_WATCHING: Final = 0  # silence not yet long enough to judge
_ARMED: Final = 1  # judged at sea: open when last seen + threshold passes
_IGNORED: Final = 2  # judged not at sea (port, shore, exclusion zone): this silence never alerts
_OPEN: Final = 3  # alert open, waiting for the vessel to reappear


@dataclass(frozen=True)
class AisGapConfig:
    enabled: bool = True
    min_gap_s: float = field(default=7200.0, metadata=bounds(60, 30 * 86400))
    offshore_min_gap_s: float = field(default=43200.0, metadata=bounds(60, 30 * 86400))
    offshore_distance_m: float = field(default=92600.0, metadata=bounds(0, 1_000_000))
    interval_factor: float = field(default=6.0, metadata=bounds(1, 1000))
    min_intervals: int = field(default=5, metadata=bounds(1, 1000))
    min_shore_distance_m: float = field(default=1852.0, metadata=bounds(0, 500_000))
    port_exclusion_m: float = field(default=3000.0, metadata=bounds(0, 100_000))
    lost_after_s: float = field(default=172800.0, metadata=bounds(3600, 30 * 86400))
    severity: str = field(default="medium", metadata=bounds(choices=("low", "medium", "high")))

    def __post_init__(self) -> None:
        if self.offshore_min_gap_s < self.min_gap_s:
            raise ValueError("offshore_min_gap_s must not be smaller than min_gap_s")
        if self.lost_after_s < self.offshore_min_gap_s:
            raise ValueError("lost_after_s must not be smaller than offshore_min_gap_s")


@dataclass(slots=True)
class AisGapState:
    entity_id: str = ""
    last_ts: float = 0.0  # last report of any kind (a jump is still a transmission)
    lat: float = 0.0  # last plausible position
    lon: float = 0.0
    speed_kn: float | None = None
    hist: list[int] = field(default_factory=lambda: [0] * HIST_BINS)
    intervals: int = 0  # sum(hist)
    phase: int = _WATCHING
    threshold_s: float = 0.0  # set when the silence is judged
    base: str = ""  # which base threshold applied: near_shore | offshore | zone
    shore_m: float | None = None
    port_m: float | None = None
    revision: int = 0


class AisGapDetector:
    name: ClassVar[str] = "ais_gap"
    version: ClassVar[str] = "1.0"
    entity_types: ClassVar[tuple[str, ...]] = ("vessel",)

    def __init__(self, cfg: AisGapConfig, env: Environment) -> None:
        self.cfg = cfg
        self.env = env
        self.info = DetectorInfo(self.name, self.version, config_hash(cfg))
        zone_gaps = [_zone_gap(z.name, z.properties) for z in env.zones.zones]
        self._zone_gaps = {z.name: g for z, g in zip(env.zones.zones, zone_gaps, strict=True) if g is not None}
        self._floor_s = min([cfg.min_gap_s, *self._zone_gaps.values()])
        self._thresholds = threshold_values(cfg, THRESHOLDS)

    # --- protocol -------------------------------------------------------------------
    def step(
        self, state: AisGapState | None, fix: Position, ctx: TrackContext
    ) -> tuple[AisGapState | None, list[Alert]]:
        if state is None:  # first appearance: nothing was expected before it
            state = AisGapState(entity_id=fix.entity_id, last_ts=fix.ts)
            self._moved(state, fix)
            return state, []
        gap = fix.ts - state.last_ts
        if gap <= 0:  # same-second report (burst): no interval, no silence
            self._moved(state, fix)
            return state, []
        alerts: list[Alert] = []
        if state.phase != _WATCHING or gap >= self._floor_s:  # a long silence ends (rare)
            if state.phase != _IGNORED and fix.ts >= self._due(state):
                alerts += self._advance(state, fix.ts)  # the very revision expire would have given
            if state.phase == _OPEN:
                lost_at = state.last_ts + self.cfg.lost_after_s
                if fix.ts >= lost_at:  # expire would have closed it as lost and forgotten the track
                    alerts.append(self._revision(state, "closed", None, lost_at))
                    return self.step(None, fix, ctx)[0], alerts
                alerts.append(self._revision(state, "closed", fix))
            state.phase = _WATCHING
            state.revision = 0
        hist = state.hist  # count the interval (inline: this runs for every fix)
        hist[min(max(int(gap), 1).bit_length() - 1, HIST_BINS - 1)] += 1
        state.intervals += 1
        if state.intervals >= HIST_HALVE_AT:
            _halve(state)
        state.last_ts = fix.ts
        if not fix.flags & FLAG_IMPLAUSIBLE:
            state.lat, state.lon, state.speed_kn = fix.lat, fix.lon, fix.speed_kn
        return state, alerts

    def expire(self, state: AisGapState, watermark: float) -> tuple[AisGapState | None, list[Alert]]:
        evicted = self._evicted(state, watermark)
        alerts: list[Alert] = []
        if state.phase in (_WATCHING, _ARMED) and watermark >= self._due(state):
            alerts += self._advance(state, watermark)
        if state.phase == _OPEN:
            lost_at = state.last_ts + self.cfg.lost_after_s
            if watermark >= lost_at or evicted:
                alerts.append(self._revision(state, "closed", None, min(lost_at, watermark)))
                return None, alerts
        return (None if evicted else state), alerts

    def deadline(self, state: AisGapState) -> float | None:
        phase = state.phase
        if phase == _WATCHING:
            return state.last_ts + self._floor_s
        if phase == _OPEN:
            return state.last_ts + self.cfg.lost_after_s
        if phase == _IGNORED:
            return None
        return state.last_ts + state.threshold_s

    # --- thresholds -----------------------------------------------------------------
    def _due(self, state: AisGapState) -> float:
        """When this silence must next be looked at: before it is judged, after the smallest
        base threshold (the vessel's habit and the place are looked at then, not per fix)."""
        if state.phase == _ARMED:
            return state.last_ts + state.threshold_s
        return state.last_ts + self._floor_s

    def _evicted(self, state: AisGapState, watermark: float) -> bool:
        """``expire`` called although this detector's own deadline has not come: TTL eviction.

        (The engine runs due deadlines first, so a call for a due deadline always sees one
        at or before the watermark; names are filled in by the engine from static data.)
        """
        due = self.deadline(state)
        return due is None or watermark < due

    def _habit_s(self, state: AisGapState) -> float:
        usual = usual_interval_s(state.hist, self.cfg.min_intervals)
        return 0.0 if usual is None else self.cfg.interval_factor * usual

    def _advance(self, state: AisGapState, now: float) -> list[Alert]:
        """Judge the silence (once), then open the alert if it has lasted the threshold."""
        if state.phase == _WATCHING:
            self._judge(state)
        if state.phase == _ARMED and now >= state.last_ts + state.threshold_s:
            state.phase = _OPEN
            return [self._revision(state, "open", None)]
        return []

    def _judge(self, state: AisGapState) -> None:
        cfg = self.cfg
        geo = self.env.geography
        lat, lon = state.lat, state.lon
        if self.env.zones.at(lat, lon, "exclusion"):
            state.phase = _IGNORED
            return
        # the port and shore test of cells.near_port_or_shore, keeping both distances (one look-up each)
        port = geo.distance_to_port_m(lat, lon)
        shore = geo.distance_to_shore_m(lat, lon)
        state.port_m = finite_or_none(port)
        state.shore_m = finite_or_none(shore)
        if (cfg.port_exclusion_m > 0 and port <= cfg.port_exclusion_m) or shore < cfg.min_shore_distance_m:
            state.phase = _IGNORED
            return
        base, state.base = self._base(lat, lon, shore)
        state.threshold_s = max(base, self._habit_s(state))
        state.phase = _ARMED

    def _base(self, lat: float, lon: float, shore_m: float) -> tuple[float, str]:
        """The base threshold for a silence that began here, and which one it is."""
        zone_gaps = [self._zone_gaps[z.name] for z in self.env.zones.at(lat, lon) if z.name in self._zone_gaps]
        if zone_gaps:
            return min(zone_gaps), "zone"
        if shore_m > self.cfg.offshore_distance_m:
            return self.cfg.offshore_min_gap_s, "offshore"
        return self.cfg.min_gap_s, "near_shore"

    # --- alerts ---------------------------------------------------------------------
    def _moved(self, state: AisGapState, fix: Position) -> None:
        if not fix.flags & FLAG_IMPLAUSIBLE:
            state.lat, state.lon, state.speed_kn = fix.lat, fix.lon, fix.speed_kn

    def _revision(
        self,
        state: AisGapState,
        status: AlertStatus,
        back: Position | None,
        lost_at: float | None = None,
    ) -> Alert:
        cfg = self.cfg
        state.revision += 1
        start = state.last_ts
        if back is not None:
            end = back.ts
        elif lost_at is not None:
            end = lost_at
        else:
            end = start + state.threshold_s
        usual = usual_interval_s(state.hist, cfg.min_intervals)
        evidence: dict[str, Any] = {
            "gap_s": round(end - start),
            "threshold_s": round(state.threshold_s),
            "threshold_base": state.base,
            "usual_interval_s": round(usual) if usual is not None else None,
            "last_position": where(start, state.lat, state.lon, state.speed_kn),
            "distance_to_shore_m": state.shore_m,
            "distance_to_port_m": state.port_m,
            "reappeared": back is not None,
        }
        if back is not None:
            dist = haversine_m(state.lat, state.lon, back.lat, back.lon)
            evidence["first_position_after"] = where(back.ts, back.lat, back.lon, back.speed_kn)
            evidence["distance_m"] = round(dist)
            evidence["implied_speed_kn"] = round(dist / max(end - start, 1.0) * KN_PER_MPS, 2)
        if state.base == "zone":
            base = self._base(state.lat, state.lon, math.inf)[0]
        else:
            base = cfg.offshore_min_gap_s if state.base == "offshore" else cfg.min_gap_s
        with_thresholds(evidence, self._thresholds, min_gap_s=round(state.threshold_s), base_min_gap_s=base)
        missed = (end - start) / max(usual or state.threshold_s, 1.0)
        known = state.intervals
        confidence = 0.5 + 0.3 * saturating(end - start - state.threshold_s, state.threshold_s)
        confidence += 0.2 * saturating(known, 20) * saturating(missed, 4 * cfg.interval_factor)
        severity: Severity = cfg.severity  # type: ignore[assignment]
        draft = AlertDraft(
            kind="ais_gap",
            entities=(EntityRef("vessel", state.entity_id),),
            start_ts=start,
            end_ts=end,
            lat=state.lat,
            lon=state.lon,
            severity=severity,
            confidence=confidence,
            evidence=evidence,
        )
        return emit(self.info, draft, state.revision, status)


# --- helpers ----------------------------------------------------------------------------
def _halve(state: AisGapState) -> None:
    """Halve the histogram: recent habits weigh more than old ones."""
    hist = state.hist
    for i, count in enumerate(hist):
        hist[i] = count // 2
    state.intervals = sum(hist)


def usual_interval_s(hist: list[int], min_intervals: int) -> float | None:
    """Median report interval from the log2 histogram (geometric middle of the median bin)."""
    total = sum(hist)
    if total < min_intervals:
        return None
    half = (total + 1) / 2
    acc = 0
    for b, count in enumerate(hist):
        acc += count
        if acc >= half:
            return float(2.0 ** (b + 0.5))
    return None


def _zone_gap(zone: str, props: dict[str, Any]) -> float | None:
    value = props.get(ZONE_GAP_PROPERTY)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 60 <= value <= 30 * 86400:
        key = f"zones: {zone}.properties.{ZONE_GAP_PROPERTY}"
        raise ConfigError(key, f"{value!r} is not a number of seconds in [60, 2592000]")
    return float(value)
