"""Aerial area loitering: an aircraft or drone that keeps flying but stays over one area.

Orbits (:mod:`detectors.air_orbit`) are one way to stay over a spot; search patterns,
patrol legs, racetracks and survey lines ("lawnmower") are others, and they never close a
circle. What they share is that the distance flown is many times the size of the area
flown over. Every ``sample_s`` the detector takes the aircraft's last ``window_s`` of
flight and compares its path length with the *radius* of that stretch (the largest distance
of its samples from their centroid):

- a flight going somewhere covers ≈ 2 radii (a straight line is 2 exactly; a climb-out with
  a turn, an approach, a glider's cross-country flight 2–4.5 on the shared files);
- loitering covers ``min_path_ratio`` (5) radii or more: on the shared files a patrol drone
  6.0, survey flights 6.1 and 9.1, TV-relay orbits 36–70, over 45 minutes.

The window qualifies when the path is at least ``min_path_m`` (slower than that is hovering
or parked: ``air_low_slow`` territory) and the radius at most ``max_radius_m``; a window low
(below ``airfield_below_ft`` throughout) over an airfield (centroid within
``airfield_exclusion_m``) is circuit training or approach work, and does not. An *episode*
starts at the first qualifying window's first sample, grows while windows keep qualifying,
and ends when none has for ``break_after_s`` or when the track is silent for ``max_gap_s``
(a silence also restarts the window: a loiter is never stitched across a gap). While an
episode runs, a window keeps it going at ``keep_path_ratio`` (3.5) already, so an area left
and entered again, or a transit leg inside a long survey, does not split it; the next
episode of a track starts after the last one ended, never overlapping it.

Noise: fixes the cleaner marks implausible are skipped; a new track segment restarts the
window. Distances are local (:func:`models.geo.equirectangular_m`): exact to well under 1 %
over the ``max_radius_m`` of an area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Final

from detectors.base import Environment, NoGeography, TrackContext
from detectors.evidence import threshold_values, with_thresholds
from detectors.lifecycle import AlertDraft, due_status, emit, saturating
from models.airfields import AirfieldIndex, default_airfields
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash
from models.geo import equirectangular_m, wrap_lon
from models.position import FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, Position
from models.units import DEG_TO_RAD, M_PER_DEG_LAT

# evidence["thresholds"]: the config values an episode is judged against
THRESHOLDS: Final = (
    "window_s", "min_path_ratio", "keep_path_ratio", "min_path_m", "max_radius_m", "max_gap_s", "break_after_s",
    "airfield_exclusion_m", "airfield_below_ft",
)  # fmt: skip

# One sample: (ts, lat, lon, altitude ft or NaN, path flown since the window restarted, m)
Sample = tuple[float, float, float, float, float]
NAN: Final = float("nan")


@dataclass(frozen=True)
class AirLoiterConfig:
    enabled: bool = True
    window_s: float = field(default=2700.0, metadata=bounds(300, 86400))
    min_path_ratio: float = field(default=5.0, metadata=bounds(2.5, 1000))
    keep_path_ratio: float = field(default=3.5, metadata=bounds(2.0, 1000))
    min_path_m: float = field(default=20_000.0, metadata=bounds(0, 10_000_000))
    max_radius_m: float = field(default=100_000.0, metadata=bounds(100, 1_000_000))
    sample_s: float = field(default=30.0, metadata=bounds(1, 600))
    max_gap_s: float = field(default=300.0, metadata=bounds(10, 86400))
    break_after_s: float = field(default=600.0, metadata=bounds(0, 86400))
    update_every_s: float = field(default=1800.0, metadata=bounds(60, 86400))
    airfield_exclusion_m: float = field(default=5000.0, metadata=bounds(0, 100000))
    airfield_below_ft: float = field(default=3000.0, metadata=bounds(0, 60000))
    severity: str = field(default="medium", metadata=bounds(choices=("low", "medium", "high")))


@dataclass(slots=True)
class AirLoiterState:
    entity_id: str = ""
    callsign: str | None = None
    last_ts: float = 0.0
    path_m: float = 0.0  # flown since the window restarted
    samples: list[Sample] = field(default_factory=list)  # the last ``window_s``, oldest first
    # episode
    since_ts: float | None = None  # first sample of the first qualifying window
    end_ts: float = 0.0  # newest sample of the last qualifying window
    start_path_m: float = 0.0  # path_m at since_ts
    end_path_m: float = 0.0
    best_ratio: float = 0.0
    radius_m: float = 0.0  # of the window with the best ratio
    south: float = 0.0  # the episode's bounding box
    north: float = 0.0
    west: float = 0.0  # longitudes unwrapped about the episode's first (an area across 180°)
    east: float = 0.0
    min_alt_ft: float = math.inf
    max_alt_ft: float = -math.inf
    revision: int = 0
    emitted_end: float = 0.0
    last_end: float = -math.inf  # end of the track's previous episode: the next starts after it


class AirLoiterDetector:
    name: ClassVar[str] = "air_loiter"
    version: ClassVar[str] = "1.0"
    entity_types: ClassVar[tuple[str, ...]] = ("aircraft",)

    def __init__(self, cfg: AirLoiterConfig, env: Environment, airfields: AirfieldIndex | None = None) -> None:
        self.cfg = cfg
        self.env = env
        self.info = DetectorInfo(self.name, self.version, config_hash(cfg))
        self.airfields = airfields if airfields is not None else default_airfields()
        self._thresholds = threshold_values(cfg, THRESHOLDS)

    # --- protocol -------------------------------------------------------------------
    def step(
        self, state: AirLoiterState | None, fix: Position, ctx: TrackContext
    ) -> tuple[AirLoiterState | None, list[Alert]]:
        if fix.flags & FLAG_IMPLAUSIBLE:
            return state, []
        cfg = self.cfg
        alerts: list[Alert] = []
        if state is None:
            state = AirLoiterState(entity_id=fix.entity_id)
        elif fix.ts - state.last_ts > cfg.max_gap_s or fix.flags & FLAG_NEW_SEGMENT:
            alerts += self._close(state)
            state.samples = []
        state.last_ts = fix.ts
        if fix.callsign:
            state.callsign = fix.callsign
        samples = state.samples
        if samples and fix.ts - samples[-1][0] < cfg.sample_s:
            return state, alerts
        if not samples:
            state.path_m = 0.0
        else:
            state.path_m += equirectangular_m(samples[-1][1], samples[-1][2], fix.lat, fix.lon)
        alt = fix.altitude_ft if fix.altitude_ft is not None else NAN
        samples.append((fix.ts, fix.lat, fix.lon, alt, state.path_m))
        while len(samples) > 2 and samples[1][0] <= fix.ts - cfg.window_s:
            del samples[0]
        alerts += self._on_sample(state)
        return state, alerts

    def expire(self, state: AirLoiterState, watermark: float) -> tuple[AirLoiterState | None, list[Alert]]:
        if watermark - state.last_ts >= self.cfg.max_gap_s:
            return None, self._close(state)
        if state.since_ts is not None and watermark - state.end_ts >= self.cfg.break_after_s:
            return state, self._close(state)
        return state, []

    def deadline(self, state: AirLoiterState) -> float | None:
        gap = state.last_ts + self.cfg.max_gap_s
        if state.since_ts is not None:
            return min(gap, state.end_ts + self.cfg.break_after_s)
        return gap

    # --- the window -----------------------------------------------------------------
    def _on_sample(self, state: AirLoiterState) -> list[Alert]:
        cfg = self.cfg
        alerts: list[Alert] = []
        samples = state.samples
        newest = samples[-1]
        if state.since_ts is not None and newest[0] - state.end_ts >= cfg.break_after_s:
            alerts += self._close(state)
        first = samples[0]
        if newest[0] - first[0] < cfg.window_s:
            return alerts  # not a whole window yet
        path = newest[4] - first[4]
        if path < cfg.min_path_m:
            return alerts
        n = len(samples)
        c_lat = sum(s[1] for s in samples) / n
        lon0 = first[2]  # longitudes relative to the first sample's: an area across 180° has one centre
        c_lon = wrap_lon(lon0 + sum(wrap_lon(s[2] - lon0) for s in samples) / n)
        radius = max(equirectangular_m(c_lat, c_lon, s[1], s[2]) for s in samples)
        needed = cfg.min_path_ratio if state.since_ts is None else cfg.keep_path_ratio
        if radius > cfg.max_radius_m or path < needed * radius:
            return alerts
        if self._airfield_work(samples, c_lat, c_lon):
            return alerts
        if state.since_ts is None:
            self._begin(state, _after(samples, state.last_end))
        ratio = path / radius if radius > 0 else math.inf
        if ratio > state.best_ratio:
            state.best_ratio, state.radius_m = ratio, radius
        for s in samples:
            if s[0] > state.end_ts:
                self._extend(state, s)
        state.end_ts = newest[0]
        state.end_path_m = newest[4]
        alerts += self._maybe_emit(state)
        return alerts

    def _airfield_work(self, samples: list[Sample], lat: float, lon: float) -> bool:
        """Low over an airfield the whole window: circuits, approaches, training."""
        cfg = self.cfg
        if cfg.airfield_exclusion_m <= 0 or any(not s[3] <= cfg.airfield_below_ft for s in samples):
            return False  # NaN (no altitude) counts as not low
        return self.airfields.within(lat, lon, cfg.airfield_exclusion_m)

    # --- episode --------------------------------------------------------------------
    @staticmethod
    def _begin(state: AirLoiterState, first: Sample) -> None:
        state.since_ts = first[0]
        state.end_ts = first[0] - 1.0
        state.start_path_m = first[4]
        state.best_ratio = state.radius_m = 0.0
        state.south = state.north = first[1]
        state.west = state.east = first[2]
        state.min_alt_ft, state.max_alt_ft = math.inf, -math.inf
        state.revision = 0
        state.emitted_end = 0.0

    @staticmethod
    def _extend(state: AirLoiterState, s: Sample) -> None:
        state.south, state.north = min(state.south, s[1]), max(state.north, s[1])
        ref = (state.west + state.east) * 0.5
        lon = ref + wrap_lon(s[2] - ref)
        state.west, state.east = min(state.west, lon), max(state.east, lon)
        alt = s[3]
        if alt == alt:  # not NaN
            state.min_alt_ft = min(state.min_alt_ft, alt)
            state.max_alt_ft = max(state.max_alt_ft, alt)

    def _maybe_emit(self, state: AirLoiterState) -> list[Alert]:
        status = due_status(state.revision, True, state.end_ts, state.emitted_end, self.cfg.update_every_s)
        return [] if status is None else [self._revision(state, status)]

    def _close(self, state: AirLoiterState) -> list[Alert]:
        out = []
        if state.revision > 0 and state.since_ts is not None:
            out.append(self._revision(state, "closed"))
            state.last_end = state.end_ts
        state.since_ts = None
        state.revision = 0
        return out

    def _revision(self, state: AirLoiterState, status: AlertStatus) -> Alert:
        assert state.since_ts is not None
        cfg = self.cfg
        state.revision += 1
        state.emitted_end = state.end_ts
        duration = state.end_ts - state.since_ts
        path = state.end_path_m - state.start_path_m
        lat, lon = (state.south + state.north) / 2, wrap_lon((state.west + state.east) / 2)
        near = self.airfields.nearest(lat, lon)
        geo = self.env.geography
        known_alt = state.min_alt_ft <= state.max_alt_ft
        evidence = {
            "duration_s": round(duration),
            "path_m": round(path),
            "path_ratio": round(state.best_ratio, 1),
            "radius_m": round(state.radius_m),
            "area_m": [
                round((state.north - state.south) * M_PER_DEG_LAT),
                round((state.east - state.west) * M_PER_DEG_LAT * math.cos(lat * DEG_TO_RAD)),
            ],
            "mean_speed_kn": round(path / duration * 1.943844, 1) if duration > 0 else None,
            "min_altitude_ft": round(state.min_alt_ft) if known_alt else None,
            "max_altitude_ft": round(state.max_alt_ft) if known_alt else None,
            "over_water": None if isinstance(geo, NoGeography) else not geo.on_land(lat, lon),
            "callsign": state.callsign,
            "nearest_airfield": near[0].icao if near else None,
            "distance_to_airfield_m": round(near[1]) if near else None,
        }
        with_thresholds(evidence, self._thresholds)
        confidence = 0.5 + 0.3 * saturating(state.best_ratio - cfg.min_path_ratio, 2 * cfg.min_path_ratio)
        confidence += 0.2 * saturating(duration, 2 * cfg.window_s)
        severity: Severity = cfg.severity  # type: ignore[assignment]
        draft = AlertDraft(
            kind="air_loiter",
            entities=(EntityRef("aircraft", state.entity_id, None),),
            start_ts=state.since_ts,
            end_ts=state.end_ts,
            lat=lat,
            lon=lon,
            severity=severity,
            confidence=confidence,
            evidence=evidence,
        )
        return emit(self.info, draft, state.revision, status)


def _after(samples: list[Sample], ts: float) -> Sample:
    """The first sample after ``ts`` (the newest when none is)."""
    return next((s for s in samples if s[0] > ts), samples[-1])
