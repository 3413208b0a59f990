"""Low and slow: an aircraft or drone below ``max_altitude_ft`` and ``max_speed_kn`` for at
least ``min_duration_s``, away from airfields.

Typical of drops at sea, of drones and of surveillance of a spot: anchored on the aerial
"low-and-slow flight" pattern. Airliners are neither; light aircraft are both only around
airfields (circuits, approaches, taxiing), which is why a fix within ``airfield_exclusion_m``
of a known airfield (``airportsdata``, see :mod:`models.airfields`) does not qualify.

Altitudes are as the source gives them (ADS-B barometric, Remote ID / MAVLink above mean sea
level): ``max_altitude_ft`` leaves a margin for the pressure setting and low terrain. A fix
without altitude neither extends nor breaks an episode (OpenSky surface reports carry none).
A run of non-qualifying fixes shorter than ``break_after_s`` does not end an episode, so one
altitude or speed spike (GTEKV has both) does not split it; a silence longer than
``max_gap_s`` does: silence is not low flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Final

from detectors.base import Environment, NoGeography, TrackContext
from detectors.evidence import threshold_values, with_thresholds
from detectors.lifecycle import AlertDraft, due_status, emit, saturating
from models.airfields import AirfieldIndex, default_airfields
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash
from models.geo import haversine_m
from models.position import FLAG_IMPLAUSIBLE, Position

# evidence["thresholds"]: the config values an episode is judged against
THRESHOLDS: Final = (
    "max_altitude_ft",
    "max_speed_kn",
    "min_duration_s",
    "max_gap_s",
    "break_after_s",
    "airfield_exclusion_m",
)


@dataclass(frozen=True)
class AirLowSlowConfig:
    enabled: bool = True
    max_altitude_ft: float = field(default=1500.0, metadata=bounds(0, 20000))
    max_speed_kn: float = field(default=90.0, metadata=bounds(1, 300))
    min_duration_s: float = field(default=300.0, metadata=bounds(0, 86400))
    max_gap_s: float = field(default=300.0, metadata=bounds(10, 86400))
    break_after_s: float = field(default=120.0, metadata=bounds(0, 86400))
    update_every_s: float = field(default=1800.0, metadata=bounds(60, 86400))
    airfield_exclusion_m: float = field(default=5000.0, metadata=bounds(0, 100000))
    severity: str = field(default="medium", metadata=bounds(choices=("low", "medium", "high")))


@dataclass(slots=True)
class AirLowSlowState:
    entity_id: str = ""
    callsign: str | None = None
    last_ts: float = 0.0  # last fix of any kind
    since_ts: float | None = None  # first qualifying fix of the episode
    low_ts: float = 0.0  # last qualifying fix
    other_since: float | None = None  # first of the current run of non-qualifying fixes
    n: int = 0
    sum_lat: float = 0.0
    sum_lon: float = 0.0
    first_lat: float = 0.0
    first_lon: float = 0.0
    extent_m: float = 0.0
    min_alt_ft: float = 0.0
    max_alt_ft: float = 0.0
    sum_alt_ft: float = 0.0
    sum_speed_kn: float = 0.0
    revision: int = 0
    emitted_end: float = 0.0


class AirLowSlowDetector:
    name: ClassVar[str] = "air_low_slow"
    version: ClassVar[str] = "1.0"
    entity_types: ClassVar[tuple[str, ...]] = ("aircraft",)

    def __init__(self, cfg: AirLowSlowConfig, env: Environment, airfields: AirfieldIndex | None = None) -> None:
        self.cfg = cfg
        self.env = env
        self.info = DetectorInfo(self.name, self.version, config_hash(cfg))
        # prepared once at start-up (airportsdata, ~0.3 s, shared by the process)
        self.airfields = airfields if airfields is not None else default_airfields()
        self._thresholds = threshold_values(cfg, THRESHOLDS)

    # --- protocol -------------------------------------------------------------------
    def step(
        self, state: AirLowSlowState | None, fix: Position, ctx: TrackContext
    ) -> tuple[AirLowSlowState | None, list[Alert]]:
        if fix.flags & FLAG_IMPLAUSIBLE or fix.altitude_ft is None or fix.speed_kn is None:
            return state, []
        cfg = self.cfg
        if state is None and (fix.altitude_ft > cfg.max_altitude_ft or fix.speed_kn > cfg.max_speed_kn):
            return None, []  # the common case (airliners): no state at all
        alerts: list[Alert] = []
        if state is None:
            state = AirLowSlowState(entity_id=fix.entity_id)
        elif state.since_ts is not None and fix.ts - state.last_ts > cfg.max_gap_s:
            alerts += self._close(state)
        state.last_ts = fix.ts
        if fix.callsign:
            state.callsign = fix.callsign
        qualifies = fix.altitude_ft <= cfg.max_altitude_ft and fix.speed_kn <= cfg.max_speed_kn
        if qualifies and self.airfields.within(fix.lat, fix.lon, cfg.airfield_exclusion_m):
            qualifies = False
        if not qualifies:
            if state.since_ts is not None:
                if state.other_since is None:
                    state.other_since = fix.ts
                if fix.ts - state.other_since >= cfg.break_after_s:
                    alerts += self._close(state)
            return self._idle(state), alerts
        if state.other_since is not None and fix.ts - state.other_since >= cfg.break_after_s:
            alerts += self._close(state)
        state.other_since = None
        if state.since_ts is None:
            self._begin(state, fix)
        self._extend(state, fix)
        alerts += self._maybe_emit(state)
        return state, alerts

    def expire(self, state: AirLowSlowState, watermark: float) -> tuple[AirLowSlowState | None, list[Alert]]:
        if state.since_ts is not None and watermark - state.last_ts >= self.cfg.max_gap_s:
            return None, self._close(state)
        return self._idle(state), []

    def deadline(self, state: AirLowSlowState) -> float | None:
        return state.last_ts + self.cfg.max_gap_s if state.since_ts is not None else None

    # --- episode --------------------------------------------------------------------
    @staticmethod
    def _idle(state: AirLowSlowState) -> AirLowSlowState | None:
        return state if state.since_ts is not None else None

    @staticmethod
    def _begin(state: AirLowSlowState, fix: Position) -> None:
        assert fix.altitude_ft is not None
        state.since_ts = fix.ts
        state.n = 0
        state.sum_lat = state.sum_lon = state.sum_alt_ft = state.sum_speed_kn = 0.0
        state.first_lat, state.first_lon = fix.lat, fix.lon
        state.extent_m = 0.0
        state.min_alt_ft = state.max_alt_ft = fix.altitude_ft
        state.revision = 0
        state.emitted_end = 0.0

    @staticmethod
    def _extend(state: AirLowSlowState, fix: Position) -> None:
        alt, speed = fix.altitude_ft, fix.speed_kn
        assert alt is not None and speed is not None
        state.low_ts = fix.ts
        state.n += 1
        state.sum_lat += fix.lat
        state.sum_lon += fix.lon
        state.sum_alt_ft += alt
        state.sum_speed_kn += speed
        if alt < state.min_alt_ft:
            state.min_alt_ft = alt
        elif alt > state.max_alt_ft:
            state.max_alt_ft = alt
        d = haversine_m(state.first_lat, state.first_lon, fix.lat, fix.lon)
        if d > state.extent_m:
            state.extent_m = d

    def _maybe_emit(self, state: AirLowSlowState) -> list[Alert]:
        assert state.since_ts is not None
        cfg = self.cfg
        ready = state.low_ts - state.since_ts >= cfg.min_duration_s
        status = due_status(state.revision, ready, state.low_ts, state.emitted_end, cfg.update_every_s)
        return [] if status is None else [self._revision(state, status)]

    def _close(self, state: AirLowSlowState) -> list[Alert]:
        out = []
        if state.revision > 0 and state.since_ts is not None:
            out.append(self._revision(state, "closed"))
        state.since_ts = None
        state.other_since = None
        state.revision = 0
        return out

    def _revision(self, state: AirLowSlowState, status: AlertStatus) -> Alert:
        assert state.since_ts is not None
        cfg = self.cfg
        state.revision += 1
        state.emitted_end = state.low_ts
        duration = state.low_ts - state.since_ts
        lat, lon = state.sum_lat / state.n, state.sum_lon / state.n
        near = self.airfields.nearest(lat, lon)
        geo = self.env.geography
        evidence = {
            "duration_s": round(duration),
            "min_duration_s": cfg.min_duration_s,
            "positions": state.n,
            "mean_altitude_ft": round(state.sum_alt_ft / state.n),
            "min_altitude_ft": round(state.min_alt_ft),
            "max_altitude_ft": round(state.max_alt_ft),
            "max_altitude_limit_ft": cfg.max_altitude_ft,
            "mean_speed_kn": round(state.sum_speed_kn / state.n, 1),
            "max_speed_limit_kn": cfg.max_speed_kn,
            "extent_m": round(state.extent_m),
            "over_water": None if isinstance(geo, NoGeography) else not geo.on_land(lat, lon),
            "callsign": state.callsign,
            "nearest_airfield": near[0].icao if near else None,
            "distance_to_airfield_m": round(near[1]) if near else None,
        }
        with_thresholds(evidence, self._thresholds)
        confidence = 0.5 + 0.3 * saturating(duration, 3 * cfg.min_duration_s) + 0.2 * saturating(state.n, 30)
        severity: Severity = cfg.severity  # type: ignore[assignment]
        draft = AlertDraft(
            kind="air_low_slow",
            entities=(EntityRef("aircraft", state.entity_id, None),),
            start_ts=state.since_ts,
            end_ts=state.low_ts,
            lat=lat,
            lon=lon,
            severity=severity,
            confidence=confidence,
            evidence=evidence,
        )
        return emit(self.info, draft, state.revision, status)
