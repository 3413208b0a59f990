"""Air–sea rendezvous: an aircraft or drone low over a vessel, or circling a spot at sea where
no vessel reports (a dark target).

Drops to boats, pick-ups at sea, and the surveillance scenario of a patrol drone that finds
a boat with its AIS off. No public detector anchors the numbers: ``max_altitude_ft`` is the
low-flight limit of ``air_low_slow`` (1,000 ft above the sea plus the barometric margin),
``max_distance_m`` a tight orbit's radius, ``min_duration_s`` the orbit detector's 5 min.

Run by :mod:`detectors.cell_engine` on time-slotted samples (an aircraft and a vessel are
compared at the same instants whatever their reporting rates). Aircraft samples count when
they are low (``altitude_ft`` of the source, ADS-B barometric or drone telemetry), slower
than ``max_aircraft_speed_kn``, not interpolated across more than ``max_gap_s`` and farther
than ``airfield_exclusion_m`` from every airfield (``airportsdata``, :mod:`models.airfields`):
circuits, approaches and aircraft on the ground never count. Vessel samples count when the
vessel is at most ``max_vessel_speed_kn`` (5 kn: stopped, drifting, fishing, waiting: the
target of a drop or a pick-up) and at sea (``port_exclusion_m``, ``min_shore_distance_m``);
they are interpolated across silences up to ``max_interp_gap_s`` (1 h), so a vessel heard
only by satellite every 10–60 min is still there between its reports, as a partner and as
the reason a spot is not dark.
A ship passing at speed is neither the target nor a reason to call a spot "not dark" (in a
shipping lane one always passes), and offering every vessel's every slot to the cells would
cost a vessel replay 40 % of its throughput.

Two forms, one kind (``air_sea_rendezvous``), told apart by ``evidence.target``:

- **vessel** (a pair, aircraft first): the aircraft is within ``max_distance_m`` of a vessel
  at sea (``port_exclusion_m``, ``min_shore_distance_m``: harbour helicopters over moored
  ships are not meetings), a ship station and not a military, search-and-rescue or
  law-enforcement ship (``exempt_ship_types``). Close slots
  less than ``max_gap_s`` apart are one episode, so an orbit wider than the distance, whose
  far side leaves it for part of each lap, stays one episode. It opens once it spans
  ``min_duration_s``, is updated at most every ``update_every_s``, and closes ``max_gap_s``
  after the last close slot. Severity rises one step when the vessel's median speed is at
  most ``slow_vessel_kn`` (stopped under a low aircraft: a drop, a transfer, a hover).
- **dark** (the aircraft alone, :class:`~detectors.cells.SoloPairDetector`): for the last
  ``min_duration_s`` the aircraft stayed low within ``dark_radius_m`` of the centre of its
  positions, at least ``dark_min_shore_distance_m`` from shore and away from ports, and no
  vessel sample (any slow vessel reporting AIS at sea, exempt types included) came within
  ``max_distance_m`` of it (``dark_min_shore_distance_m`` ≥ ``min_shore_distance_m`` +
  ``max_distance_m``, so no vessel left out for being near the shore could have been). It
  opens at once (start: the first position of that span), lasts while the condition holds,
  and closes when the aircraft leaves the spot, climbs or falls silent for ``max_gap_s``, or
  when a vessel reporting AIS comes within ``max_distance_m`` (the target was not dark after
  all; the vessel form takes over if it lasts). Entities: the aircraft only. It needs the
  reference coastline: with no geography configured (everywhere "sea") it is off.

Ids: kind, sorted entity ids and the first slot (plus ``dark`` for the second form): the
same whichever cell held the aircraft.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from detectors.base import Environment, NoGeography
from detectors.cells import Sample, finite_or_none, is_ship_station, shared_sea_check
from detectors.evidence import threshold_values, with_thresholds
from detectors.lifecycle import AlertDraft, emit, saturating
from models.airfields import AirfieldIndex, default_airfields
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash
from models.geo import haversine_m

SPEED_BIN_KN: Final = 0.25
_LEVELS: Final[tuple[Severity, ...]] = ("low", "medium", "high")

# AIS ship types whose work is to be met by aircraft: military operations (35), search and
# rescue (51), law enforcement (55). A patrol drone over its own ship is not a rendezvous.
OWN_SIDE_SHIP_TYPES: Final = (35, 51, 55)


@dataclass(frozen=True)
class AirSeaRendezvousConfig:
    enabled: bool = True
    max_altitude_ft: float = field(default=1500.0, metadata=bounds(100, 20000))
    max_distance_m: float = field(default=2000.0, metadata=bounds(100, 5000))
    min_duration_s: float = field(default=300.0, metadata=bounds(60, 86400))
    max_gap_s: float = field(default=300.0, metadata=bounds(60, 3600))
    max_aircraft_speed_kn: float = field(default=250.0, metadata=bounds(60, 700))
    max_vessel_speed_kn: float = field(default=5.0, metadata=bounds(0.1, 60))
    slow_vessel_kn: float = field(default=2.0, metadata=bounds(0, 60))
    airfield_exclusion_m: float = field(default=5000.0, metadata=bounds(0, 100000))
    port_exclusion_m: float = field(default=3000.0, metadata=bounds(0, 100000))
    min_shore_distance_m: float = field(default=1852.0, metadata=bounds(0, 500000))
    slot_s: float = field(default=60.0, metadata=bounds(10, 900))
    max_interp_gap_s: float = field(default=3600.0, metadata=bounds(0, 7200))
    update_every_s: float = field(default=1800.0, metadata=bounds(60, 86400))
    ship_stations_only: bool = True
    exempt_ship_types: tuple[int, ...] = OWN_SIDE_SHIP_TYPES
    severity: str = field(default="medium", metadata=bounds(choices=_LEVELS))
    dark_target: bool = True
    dark_radius_m: float = field(default=1000.0, metadata=bounds(100, 5000))
    dark_min_shore_distance_m: float = field(default=5556.0, metadata=bounds(0, 500000))
    dark_severity: str = field(default="high", metadata=bounds(choices=_LEVELS))

    def __post_init__(self) -> None:
        if self.dark_target and self.dark_min_shore_distance_m < self.min_shore_distance_m + self.max_distance_m:
            # vessels nearer the shore are never offered: none of them may be within reach of a hold
            raise ValueError("dark_min_shore_distance_m must be at least min_shore_distance_m + max_distance_m")


@dataclass(slots=True)
class AirSeaState:
    """One episode of an aircraft with one vessel, kept in the cell that owns the aircraft."""

    aircraft: str
    vessel: str
    vessel_name: str | None
    start_ts: float
    last_ts: float
    n: int = 0
    sum_lat: float = 0.0  # vessel positions
    sum_lon: float = 0.0
    min_dist_m: float = math.inf
    min_alt_ft: float = math.inf
    max_alt_ft: float = -math.inf
    speed_hist: list[int] = field(default_factory=list)  # vessel speed, SPEED_BIN_KN bins
    revision: int = 0
    emitted_end: float = 0.0


@dataclass(slots=True)
class HoldState:
    """An aircraft low at sea with no vessel near: its recent positions and the open episode."""

    aircraft: str
    last_ts: float
    window: list[list[float]] = field(default_factory=list)  # [ts, lat, lon, altitude_ft], last min_duration_s
    start_ts: float | None = None
    end_ts: float = 0.0
    n: int = 0
    sum_lat: float = 0.0
    sum_lon: float = 0.0
    spread_m: float = 0.0  # largest distance of a window position from its window's centre
    min_alt_ft: float = math.inf
    revision: int = 0
    emitted_end: float = 0.0


class AirSeaRendezvousDetector:
    name: ClassVar[str] = "air_sea_rendezvous"
    version: ClassVar[str] = "1.0"
    entity_pairs: ClassVar[frozenset[tuple[str, str]]] = frozenset({("aircraft", "vessel")})
    solo_types: ClassVar[frozenset[str]] = frozenset({"aircraft"})

    def __init__(self, cfg: AirSeaRendezvousConfig, env: Environment, airfields: AirfieldIndex | None = None) -> None:
        self.cfg = cfg
        self.env = env
        self.info = DetectorInfo(self.name, self.version, config_hash(cfg))
        self.radius_m = cfg.max_distance_m
        self.slot_s = cfg.slot_s
        self.max_interp_gap_s = cfg.max_interp_gap_s
        self.memory_s = cfg.max_gap_s
        self.speed_limit_kn = cfg.max_aircraft_speed_kn
        self.speed_limits_kn = {"vessel": cfg.max_vessel_speed_kn}  # faster vessel samples are not even built
        self.airfields = airfields if airfields is not None else default_airfields()
        self._exempt = frozenset(cfg.exempt_ship_types)
        self._sea = shared_sea_check(env, cfg.port_exclusion_m, cfg.min_shore_distance_m)
        self._dark_sea = shared_sea_check(env, cfg.port_exclusion_m, cfg.dark_min_shore_distance_m)
        # without reference geography a hold over land looks like one over the sea: no dark form
        self._dark = cfg.dark_target and not isinstance(env.geography, NoGeography)
        self._bins = int(cfg.max_vessel_speed_kn / SPEED_BIN_KN) + 1
        common = ("max_altitude_ft", "max_distance_m", "min_duration_s", "max_gap_s", "airfield_exclusion_m")
        vessel = ("max_vessel_speed_kn", "slow_vessel_kn", "port_exclusion_m", "min_shore_distance_m")
        dark = ("dark_radius_m", "dark_min_shore_distance_m", "port_exclusion_m")
        self._thresholds = threshold_values(cfg, common + vessel)
        self._dark_thresholds = threshold_values(cfg, common + dark)

    # --- protocol -------------------------------------------------------------------
    def accepts(self, s: Sample) -> bool:
        cfg = self.cfg
        if s.etype == "vessel":  # slow and at sea; the rest of a pair's eligibility is checked in observe
            if s.speed_kn is not None and s.speed_kn > cfg.max_vessel_speed_kn:
                return False
            return not self._sea.excluded(s.key, s.lat, s.lon)
        alt = s.altitude_ft
        if alt is None or alt > cfg.max_altitude_ft or s.gap_s > cfg.max_gap_s:
            return False
        if s.speed_kn is not None and s.speed_kn > cfg.max_aircraft_speed_kn:
            return False
        return not self.airfields.within(s.lat, s.lon, cfg.airfield_exclusion_m)

    def observe(
        self, state: AirSeaState | None, a: Sample, b: Sample, distance_m: float
    ) -> tuple[AirSeaState | None, list[Alert]]:
        if not self._eligible_vessel(b):
            return state, []
        alerts: list[Alert] = []
        if state is not None and a.ts - state.last_ts > self.cfg.max_gap_s:
            alerts += self._close(state)
            state = None
        if state is None:
            state = AirSeaState(a.eid, b.eid, b.name, a.ts, a.ts, speed_hist=[0] * self._bins)
        self._extend(state, a, b, distance_m)
        alerts += self._maybe_emit(state)
        return state, alerts

    def observe_solo(self, state: HoldState | None, s: Sample, partners: int) -> tuple[HoldState | None, list[Alert]]:
        cfg = self.cfg
        qualifies = self._dark and partners == 0 and not self._dark_sea.excluded(s.key, s.lat, s.lon)
        if state is None:
            if not qualifies:
                return None, []  # the common case: no state at all
            state = HoldState(s.eid, s.ts)
        alerts: list[Alert] = []
        if s.ts - state.last_ts > cfg.max_gap_s:  # silent or high meanwhile: start over
            alerts += self._end_hold(state)
            state.window = []
        state.last_ts = s.ts
        if not qualifies:  # a vessel reports near it, or it left the open sea
            return None, alerts + self._end_hold(state)
        assert s.altitude_ft is not None
        horizon = s.ts - cfg.min_duration_s
        window = [w for w in state.window if w[0] >= horizon]
        if (not window or window[0][0] > horizon) and len(window) < len(state.window):
            # no sample right at the horizon (a missing slot, or a slot that does not divide
            # min_duration_s): keep the last one before it, so the window still spans it
            window.insert(0, state.window[len(state.window) - len(window) - 1])
        window.append([s.ts, s.lat, s.lon, s.altitude_ft])
        state.window = window
        spread = _spread_m(window) if window[-1][0] - window[0][0] >= cfg.min_duration_s else math.inf
        if spread > cfg.dark_radius_m:
            return state, alerts + self._end_hold(state)  # not (or no longer) holding over one spot
        if state.start_ts is None:
            state.start_ts = window[0][0]
            for w in window:
                self._hold_add(state, w)
        else:
            self._hold_add(state, window[-1])
        state.end_ts = s.ts
        state.spread_m = max(state.spread_m, spread)
        alerts += self._maybe_emit_hold(state)
        return state, alerts

    def expire(self, state: AirSeaState | HoldState, now: float) -> tuple[AirSeaState | HoldState | None, list[Alert]]:
        if now - state.last_ts < self.cfg.max_gap_s:
            return state, []
        if isinstance(state, HoldState):
            return None, self._end_hold(state)
        return None, self._close(state)

    def deadline(self, state: AirSeaState | HoldState) -> float | None:
        return state.last_ts + self.cfg.max_gap_s

    # --- the vessel form ------------------------------------------------------------
    def _eligible_vessel(self, v: Sample) -> bool:
        cfg = self.cfg
        if cfg.ship_stations_only and not is_ship_station(v.eid):
            return False
        return v.ship_type is None or v.ship_type not in self._exempt

    def _extend(self, state: AirSeaState, a: Sample, b: Sample, distance_m: float) -> None:
        assert a.altitude_ft is not None
        state.last_ts = a.ts
        state.n += 1
        state.sum_lat += b.lat
        state.sum_lon += b.lon
        state.min_dist_m = min(state.min_dist_m, distance_m)
        state.min_alt_ft = min(state.min_alt_ft, a.altitude_ft)
        state.max_alt_ft = max(state.max_alt_ft, a.altitude_ft)
        if b.speed_kn is not None:
            state.speed_hist[min(int(b.speed_kn / SPEED_BIN_KN), self._bins - 1)] += 1
        if b.name:
            state.vessel_name = b.name

    def _maybe_emit(self, state: AirSeaState) -> list[Alert]:
        if state.revision == 0:
            if state.last_ts - state.start_ts < self.cfg.min_duration_s:
                return []
            return [self._revision(state, "open")]
        if state.last_ts - state.emitted_end >= self.cfg.update_every_s:
            return [self._revision(state, "update")]
        return []

    def _close(self, state: AirSeaState) -> list[Alert]:
        return [self._revision(state, "closed")] if state.revision > 0 else []

    def _revision(self, state: AirSeaState, status: AlertStatus) -> Alert:
        cfg = self.cfg
        state.revision += 1
        state.emitted_end = state.last_ts
        lat, lon = state.sum_lat / state.n, state.sum_lon / state.n
        duration = state.last_ts - state.start_ts
        speed = _median(state.speed_hist)
        slow = speed is not None and speed <= cfg.slow_vessel_kn
        geo = self.env.geography
        evidence: dict[str, Any] = {
            "target": "vessel",
            "aircraft": state.aircraft,
            "vessel": state.vessel,
            "closest_approach_m": round(state.min_dist_m),
            "min_altitude_ft": round(state.min_alt_ft),
            "max_altitude_ft": round(state.max_alt_ft),
            "duration_s": round(duration),
            "samples": state.n,
            "slot_s": cfg.slot_s,
            "vessel_median_speed_kn": None if speed is None else round(speed, 2),
            "distance_to_shore_m": finite_or_none(geo.distance_to_shore_m(lat, lon)),
            "distance_to_port_m": finite_or_none(geo.distance_to_port_m(lat, lon)),
        }
        with_thresholds(evidence, self._thresholds)
        confidence = 0.4 + 0.2 * saturating(duration, 3 * cfg.min_duration_s)
        confidence += 0.15 * (1.0 - min(1.0, state.min_dist_m / cfg.max_distance_m))
        confidence += 0.15 * (1.0 - min(1.0, max(0.0, state.min_alt_ft) / cfg.max_altitude_ft))
        confidence += 0.1 if slow else 0.0
        entities = (EntityRef("aircraft", state.aircraft, None), EntityRef("vessel", state.vessel, state.vessel_name))
        draft = AlertDraft(
            kind="air_sea_rendezvous",
            entities=entities,
            start_ts=state.start_ts,
            end_ts=state.last_ts,
            lat=lat,
            lon=lon,
            severity=_raised(cfg.severity) if slow else _level(cfg.severity),
            confidence=confidence,
            evidence=evidence,
        )
        return emit(self.info, draft, state.revision, status)

    # --- the dark form --------------------------------------------------------------
    @staticmethod
    def _hold_add(state: HoldState, w: list[float]) -> None:
        state.n += 1
        state.sum_lat += w[1]
        state.sum_lon += w[2]
        state.min_alt_ft = min(state.min_alt_ft, w[3])

    def _maybe_emit_hold(self, state: HoldState) -> list[Alert]:
        if state.revision == 0:
            return [self._hold_revision(state, "open")]  # the window already spans min_duration_s
        if state.end_ts - state.emitted_end >= self.cfg.update_every_s:
            return [self._hold_revision(state, "update")]
        return []

    def _end_hold(self, state: HoldState) -> list[Alert]:
        out = [self._hold_revision(state, "closed")] if state.revision > 0 else []
        state.start_ts = None
        state.n = state.revision = 0
        state.sum_lat = state.sum_lon = state.spread_m = 0.0
        state.min_alt_ft = math.inf
        return out

    def _hold_revision(self, state: HoldState, status: AlertStatus) -> Alert:
        assert state.start_ts is not None
        cfg = self.cfg
        state.revision += 1
        state.emitted_end = state.end_ts
        lat, lon = state.sum_lat / state.n, state.sum_lon / state.n
        duration = state.end_ts - state.start_ts
        geo = self.env.geography
        evidence: dict[str, Any] = {
            "target": "dark",
            "aircraft": state.aircraft,
            "vessel": None,
            "closest_approach_m": None,  # no vessel reported within max_distance_m
            "radius_m": round(state.spread_m),
            "min_altitude_ft": round(state.min_alt_ft),
            "duration_s": round(duration),
            "samples": state.n,
            "slot_s": cfg.slot_s,
            "distance_to_shore_m": finite_or_none(geo.distance_to_shore_m(lat, lon)),
            "distance_to_port_m": finite_or_none(geo.distance_to_port_m(lat, lon)),
        }
        with_thresholds(evidence, self._dark_thresholds)
        confidence = 0.4 + 0.3 * saturating(duration, 3 * cfg.min_duration_s)
        confidence += 0.15 * (1.0 - min(1.0, max(0.0, state.min_alt_ft) / cfg.max_altitude_ft))
        confidence += 0.15 * (1.0 - min(1.0, state.spread_m / cfg.dark_radius_m))
        draft = AlertDraft(
            kind="air_sea_rendezvous",
            entities=(EntityRef("aircraft", state.aircraft, None),),
            start_ts=state.start_ts,
            end_ts=state.end_ts,
            lat=lat,
            lon=lon,
            severity=_level(cfg.dark_severity),
            confidence=confidence,
            evidence=evidence,
            discriminator="dark",
        )
        return emit(self.info, draft, state.revision, status)


def _spread_m(window: list[list[float]]) -> float:
    """Largest distance of a position from the centre (mean) of the window."""
    n = len(window)
    clat = sum(w[1] for w in window) / n
    clon = sum(w[2] for w in window) / n  # a few km at most: no antimeridian wrap issue
    return max(haversine_m(clat, clon, w[1], w[2]) for w in window)


def _median(hist: list[int]) -> float | None:
    total = sum(hist)
    if total == 0:
        return None
    half = (total + 1) / 2
    acc = 0
    for i, count in enumerate(hist):
        acc += count
        if acc >= half:
            return (i + 0.5) * SPEED_BIN_KN
    return None


def _level(name: str) -> Severity:
    return _LEVELS[_LEVELS.index(name)] if name in _LEVELS else "medium"


def _raised(name: str) -> Severity:
    return _LEVELS[min(_LEVELS.index(_level(name)) + 1, len(_LEVELS) - 1)]
