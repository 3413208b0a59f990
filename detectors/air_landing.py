"""Landing away from airfields: a descent to ground level farther than ``airfield_exclusion_m``
from every known airfield (``airportsdata``, see :mod:`models.airfields`).

The sources carry no terrain model and (in the position record) no on-ground flag, so ground
level is judged from the track itself:

* a fix is *at ground level* when its ground speed is at most ``max_ground_speed_kn`` (rolled
  out, taxiing, hovering or stopped), its vertical rate (reported, else from the previous
  altitude) at most ``max_ground_vrate_fpm`` either way, and its altitude within ``ground_margin_ft`` of the
  reference elevation: the elevation of the nearest airfield within ``terrain_ref_m`` (a proxy
  for the local terrain), else sea level. The margin absorbs the barometric setting of ADS-B
  altitudes (±30 hPa ≈ ±800 ft at the extremes; 500 ft covers the usual range);
* a *touchdown* is the first ground-level fix after the track was at least ``min_descent_ft``
  higher within the last ``descent_lookback_s`` (a track that starts on the ground, a take-off,
  is no landing);
* the landing is *confirmed* when the track stays at ground level for ``min_ground_s``, or
  goes silent for ``lost_after_s`` while at ground level (receivers lose aircraft on the
  ground). Leaving ground level for ``break_after_s`` before that cancels it (touch-and-go,
  low pass).

A confirmed landing away from airfields opens an alert; it closes when the aircraft is
airborne again (off ground level for ``break_after_s``) or the track goes silent.

A landing within ``home_radius_m`` of where the track took off (its first fix was at ground
level there) or of where it last landed and took off again is a *return to its own base*: a
strip, gliding site, farm field or drone operator missing from the airfield list. It is
reported at ``home_severity`` (low), with ``returned_to_departure`` in the evidence, not
dropped: a clandestine strip is a base too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Final

from detectors.base import Environment, NoGeography, TrackContext
from detectors.evidence import threshold_values, with_thresholds
from detectors.lifecycle import AlertDraft, emit
from models.airfields import AirfieldIndex, default_airfields
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash
from models.geo import haversine_m
from models.position import FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, Position

AIRBORNE: Final = 0
TOUCHDOWN: Final = 1
LANDED: Final = 2

# evidence["thresholds"]: the config values a touchdown and the stay on the ground are judged against
THRESHOLDS: Final = (
    "max_ground_speed_kn", "max_ground_vrate_fpm", "ground_margin_ft", "terrain_ref_m", "min_descent_ft",
    "descent_lookback_s", "min_ground_s", "lost_after_s", "break_after_s", "max_gap_s", "airfield_exclusion_m",
    "home_radius_m",
)  # fmt: skip


@dataclass(frozen=True)
class AirLandingConfig:
    enabled: bool = True
    max_ground_speed_kn: float = field(default=40.0, metadata=bounds(0, 200))
    max_ground_vrate_fpm: float = field(default=300.0, metadata=bounds(0, 10000))
    ground_margin_ft: float = field(default=500.0, metadata=bounds(0, 5000))
    terrain_ref_m: float = field(default=50000.0, metadata=bounds(0, 100000))
    min_descent_ft: float = field(default=500.0, metadata=bounds(0, 50000))
    descent_lookback_s: float = field(default=900.0, metadata=bounds(10, 86400))
    min_ground_s: float = field(default=30.0, metadata=bounds(0, 3600))
    lost_after_s: float = field(default=120.0, metadata=bounds(1, 86400))
    break_after_s: float = field(default=30.0, metadata=bounds(0, 3600))
    max_gap_s: float = field(default=1800.0, metadata=bounds(10, 86400))
    airfield_exclusion_m: float = field(default=5000.0, metadata=bounds(0, 100000))
    home_radius_m: float = field(default=3000.0, metadata=bounds(0, 100000))  # 0: never a return
    home_severity: str = field(default="low", metadata=bounds(choices=("low", "medium", "high")))
    severity: str = field(default="high", metadata=bounds(choices=("low", "medium", "high")))


@dataclass(slots=True)
class AirLandingState:
    entity_id: str = ""
    callsign: str | None = None
    last_ts: float = 0.0
    phase: int = AIRBORNE
    highs: list[tuple[float, float]] = field(default_factory=list)  # (ts, altitude ft), decreasing
    td_ts: float = 0.0
    td_lat: float = 0.0
    td_lon: float = 0.0
    td_alt_ft: float = 0.0
    from_alt_ft: float = 0.0
    ref_elev_ft: float = 0.0
    prev_alt_ts: float | None = None  # to estimate the vertical rate where none is reported
    prev_alt_ft: float = 0.0
    ground_ts: float = 0.0  # last fix at ground level
    off_since: float | None = None  # first of the current run of fixes off ground level
    lost: bool = False
    revision: int = 0
    seen: bool = False  # a fix with altitude and speed was seen (since the last silence)
    dormant: bool = False  # silent: kept only for its origin, with no deadline, until the track is forgotten
    origin_lat: float | None = None  # where the track took off (first fix at ground level) or last landed
    origin_lon: float = 0.0


class AirLandingDetector:
    name: ClassVar[str] = "air_landing"
    version: ClassVar[str] = "1.0"
    entity_types: ClassVar[tuple[str, ...]] = ("aircraft",)

    def __init__(self, cfg: AirLandingConfig, env: Environment, airfields: AirfieldIndex | None = None) -> None:
        self.cfg = cfg
        self.env = env
        self.info = DetectorInfo(self.name, self.version, config_hash(cfg))
        # prepared once at start-up (airportsdata, ~0.3 s, shared by the process)
        self.airfields = airfields if airfields is not None else default_airfields()
        self._thresholds = threshold_values(cfg, THRESHOLDS)

    # --- protocol -------------------------------------------------------------------
    def step(
        self, state: AirLandingState | None, fix: Position, ctx: TrackContext
    ) -> tuple[AirLandingState | None, list[Alert]]:
        if fix.flags & FLAG_IMPLAUSIBLE:
            return state, []
        alerts: list[Alert] = []
        if state is None:
            state = AirLandingState(entity_id=fix.entity_id)
        else:
            due = self.deadline(state)
            if (due is not None and fix.ts >= due) or fix.flags & FLAG_NEW_SEGMENT:
                alerts += self._silence(state)
                state = _after_silence(state)
            state.dormant = False
        state.last_ts = fix.ts
        if fix.callsign:
            state.callsign = fix.callsign
        alt, speed = fix.altitude_ft, fix.speed_kn
        if alt is None or speed is None:
            return state, alerts
        vrate = fix.vertical_rate_fpm
        if vrate is None and state.prev_alt_ts is not None and fix.ts > state.prev_alt_ts:
            vrate = (alt - state.prev_alt_ft) / (fix.ts - state.prev_alt_ts) * 60.0
        state.prev_alt_ts, state.prev_alt_ft = fix.ts, alt
        cfg = self.cfg
        level = vrate is None or abs(vrate) <= cfg.max_ground_vrate_fpm
        ref = self._ground_ref(fix) if speed <= cfg.max_ground_speed_kn and level else None
        ground = ref is not None and alt - ref <= cfg.ground_margin_ft
        if not state.seen:
            state.seen = True
            if ground:  # the track starts on the ground: its departure point
                state.origin_lat, state.origin_lon = fix.lat, fix.lon
        if state.phase == AIRBORNE:
            self._airborne(state, fix, alt, ref if ground else None)
        elif state.phase == TOUCHDOWN:
            alerts += self._touchdown(state, fix, ground)
        else:
            alerts += self._landed(state, fix, ground)
        _push_high(state.highs, fix.ts, alt, fix.ts - cfg.descent_lookback_s)
        return state, alerts

    def expire(self, state: AirLandingState, watermark: float) -> tuple[AirLandingState | None, list[Alert]]:
        due = self.deadline(state)
        if due is not None and watermark >= due:
            alerts = self._silence(state)
            if state.origin_lat is None:
                return None, alerts
            dormant = _after_silence(state)
            dormant.dormant = True
            return dormant, alerts
        return state, []

    def deadline(self, state: AirLandingState) -> float | None:
        if state.dormant:
            return None
        if state.phase == TOUCHDOWN:
            return state.last_ts + self.cfg.lost_after_s
        if state.phase == LANDED:
            return state.last_ts + self.cfg.max_gap_s
        return state.last_ts + self.cfg.descent_lookback_s

    # --- phases ---------------------------------------------------------------------
    def _ground_ref(self, fix: Position) -> float:
        """Reference ground elevation (ft): the nearest airfield's within ``terrain_ref_m``, else 0."""
        near = self.airfields.nearest(fix.lat, fix.lon)
        if near is None or near[1] > self.cfg.terrain_ref_m:
            return 0.0
        return near[0].elevation_ft

    def _airborne(self, state: AirLandingState, fix: Position, alt: float, ground_ref: float | None) -> None:
        """A ground-level fix well below the highest altitude of the lookback is a touchdown."""
        highs = state.highs
        horizon = fix.ts - self.cfg.descent_lookback_s
        while highs and highs[0][0] < horizon:
            del highs[0]
        if ground_ref is not None and highs and highs[0][1] - alt >= self.cfg.min_descent_ft:
            state.phase = TOUCHDOWN
            state.td_ts, state.td_lat, state.td_lon, state.td_alt_ft = fix.ts, fix.lat, fix.lon, alt
            state.from_alt_ft = highs[0][1]
            state.ref_elev_ft = ground_ref
            state.ground_ts = fix.ts
            state.off_since = None

    def _touchdown(self, state: AirLandingState, fix: Position, ground: bool) -> list[Alert]:
        if not ground:
            if state.off_since is None:
                state.off_since = fix.ts
            if fix.ts - state.off_since >= self.cfg.break_after_s:
                state.phase = AIRBORNE  # touch-and-go or low pass: still the same flight
                state.off_since = None
            return []
        state.off_since = None
        state.ground_ts = fix.ts
        if fix.ts - state.td_ts >= self.cfg.min_ground_s:
            return self._confirm(state)
        return []

    def _landed(self, state: AirLandingState, fix: Position, ground: bool) -> list[Alert]:
        if ground:
            state.off_since = None
            state.ground_ts = fix.ts
            return []
        if state.off_since is None:
            state.off_since = fix.ts
        if fix.ts - state.off_since >= self.cfg.break_after_s:
            alerts = [self._revision(state, "closed")] if state.revision else []
            state.origin_lat, state.origin_lon = state.td_lat, state.td_lon  # took off again from there
            self._reset(state)
            return alerts
        return []

    def _confirm(self, state: AirLandingState) -> list[Alert]:
        if self.airfields.within(state.td_lat, state.td_lon, self.cfg.airfield_exclusion_m):
            self._reset(state)  # an airfield landing: the normal case
            return []
        state.phase = LANDED
        return [self._revision(state, "open")]

    def _silence(self, state: AirLandingState) -> list[Alert]:
        """The track went quiet: a pending touchdown is a landing (signal lost on the ground)."""
        alerts: list[Alert] = []
        if state.phase == TOUCHDOWN:
            state.lost = True
            alerts += self._confirm(state)
        if state.phase == LANDED and state.revision:
            alerts.append(self._revision(state, "closed"))
        self._reset(state)
        return alerts

    @staticmethod
    def _reset(state: AirLandingState) -> None:
        state.phase = AIRBORNE
        state.highs = []
        state.off_since = None
        state.lost = False
        state.revision = 0

    def _revision(self, state: AirLandingState, status: AlertStatus) -> Alert:
        state.revision += 1
        near = self.airfields.nearest(state.td_lat, state.td_lon)
        geo = self.env.geography
        departure_m = (
            None
            if state.origin_lat is None
            else haversine_m(state.origin_lat, state.origin_lon, state.td_lat, state.td_lon)
        )
        home = departure_m is not None and departure_m <= self.cfg.home_radius_m
        evidence = {
            "touchdown_altitude_ft": round(state.td_alt_ft),
            "from_altitude_ft": round(state.from_alt_ft),
            "descent_ft": round(state.from_alt_ft - state.td_alt_ft),
            "reference_elevation_ft": round(state.ref_elev_ft),
            "ground_s": round(state.ground_ts - state.td_ts),
            "signal_lost_on_ground": state.lost,
            "over_water": None if isinstance(geo, NoGeography) else not geo.on_land(state.td_lat, state.td_lon),
            "callsign": state.callsign,
            "nearest_airfield": near[0].icao if near else None,
            "distance_to_airfield_m": round(near[1]) if near else None,
            "airfield_exclusion_m": self.cfg.airfield_exclusion_m,
            "departure_distance_m": None if departure_m is None else round(departure_m),
            "returned_to_departure": home,
        }
        with_thresholds(evidence, self._thresholds)
        confidence = 0.6 if state.lost else 0.8
        severity: Severity = self.cfg.home_severity if home else self.cfg.severity  # type: ignore[assignment]
        draft = AlertDraft(
            kind="air_landing",
            entities=(EntityRef("aircraft", state.entity_id, None),),
            start_ts=state.td_ts,
            end_ts=state.ground_ts,
            lat=state.td_lat,
            lon=state.td_lon,
            severity=severity,
            confidence=confidence,
            evidence=evidence,
        )
        return emit(self.info, draft, state.revision, status)


def _after_silence(state: AirLandingState) -> AirLandingState:
    """A new flight's state after a silence: only where the aircraft was based carries over."""
    return AirLandingState(
        entity_id=state.entity_id, callsign=state.callsign, origin_lat=state.origin_lat, origin_lon=state.origin_lon
    )


def _push_high(highs: list[tuple[float, float]], ts: float, alt: float, horizon: float) -> None:
    """Keep the highest altitudes of the lookback window: a monotonic queue, O(1) amortised."""
    while highs and highs[-1][1] <= alt:
        highs.pop()
    highs.append((ts, alt))
    while highs[0][0] < horizon:
        del highs[0]
