"""Aerial orbit: an aircraft or drone circling or holding over one area.

The anchor is the aerial orbit/loiter definition: a cumulative turn of 360° or more inside a
small radius. Per fix the detector only adds the heading change since the previous fix to a
running sum (signed: clockwise positive, and absolute); every ``sample_s`` it closes a
*sample* (time, position, cumulative signed and absolute turn). A *lap* closes at the newest
sample when, walking back over the samples of the last ``max_lap_s``, the signed turn reaches
360° before the samples stop fitting in a box of ``2 × radius_m`` (so the lap stays inside
the radius), the lap's net / total turning is at least ``min_net_ratio``, and the newest
sample was needed to complete it (a straight leg after circling closes no lap). The walk
only starts when some sample of the window is a full turn away from the newest (kept in
O(1) by monotonic queues): a straight flight never walks.

An *episode* is a run of laps in one direction over one area: it starts at the first lap's
first sample, grows while laps keep closing, and ends when no lap has closed for
``break_after_s``, when the track is silent for ``max_gap_s``, when the turn direction
reverses, or when a lap's centre lies farther than ``radius_m`` from the episode's centre
(orbits that drift with a moving event become a chain of episodes, one per area). It is
reported once its net turn reaches ``min_turns`` full turns over at least ``min_duration_s``.

Why net / total: a circling aircraft turns one way (net ≈ total over a lap; 0.5–0.7 over
whole real orbit flights, where transits and corrections dilute it), a lawnmower survey
alternates (≈ 0–0.25), a straight flight hardly turns. Surveys never close a lap inside the
radius, and the ratio gate stops heading noise (spikes that swing back) from making one.

Glider thermalling is circling, so it is reported, with ``low`` severity and
``profile = "thermalling"`` when the episode climbs at ``glider_min_climb_fpm`` or more at a
mean ground speed of ``glider_max_speed_kn`` or less (powered orbits hold their altitude).
A glider's cross-country flight is a chain of such climbs, so only a track's first
``glider_report_thermals`` thermalling episodes are reported: a track with more is a glider,
and its later circling at glider speed (thermals, and weak lift that gains little) is not
reported. A drone or helicopter climbing while it circles does so once or twice, and is
still reported. Every thermalling episode is counted (``thermalling_episodes`` in the
evidence), and the count outlives the track's silences.

Noise: fixes the cleaner marks implausible (teleports) are skipped; a new track segment
(re-anchored after a jump) restarts the samples; heading changes faster than
``max_turn_rate_dps`` or over more than ``max_heading_gap_s`` are not turns; below
``min_speed_kn`` a ground track is noise (hover, taxi) and counts nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Final

from detectors.base import Environment, TrackContext
from detectors.evidence import threshold_values, with_thresholds
from detectors.lifecycle import AlertDraft, due_status, emit, saturating
from models.airfields import AirfieldIndex, default_airfields
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash
from models.geo import bearing_deg, equirectangular_m, wrap_lon
from models.position import FLAG_DERIVED_KINEMATICS, FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, Position
from models.units import DEG_TO_RAD, M_PER_DEG_LAT

FULL_TURN_DEG: Final = 360.0
MIN_MOVE_M: Final = 20.0  # a heading from positions needs at least this displacement

# One sample: (ts, lat, lon, cumulative signed turn °, cumulative absolute turn °,
# altitude ft or NaN, ground speed kn or NaN, cumulative count of fixes)
Sample = tuple[float, float, float, float, float, float, float, int]
NAN: Final = float("nan")

# evidence["thresholds"]: the config values an orbit (and a glider's thermalling) is judged against
THRESHOLDS: Final = (
    "radius_m", "min_turns", "min_duration_s", "min_lap_s", "max_lap_s", "min_net_ratio", "min_speed_kn",
    "max_turn_rate_dps", "max_gap_s", "break_after_s", "airfield_exclusion_m", "airfield_below_ft",
    "glider_max_speed_kn", "glider_min_gain_ft", "glider_min_climb_fpm", "glider_report_thermals",
)  # fmt: skip


@dataclass(frozen=True)
class AirOrbitConfig:
    enabled: bool = True
    radius_m: float = field(default=5000.0, metadata=bounds(100, 50000))
    min_turns: float = field(default=1.5, metadata=bounds(0.5, 100))
    min_duration_s: float = field(default=300.0, metadata=bounds(0, 86400))
    min_lap_s: float = field(default=20.0, metadata=bounds(0, 3600))
    max_lap_s: float = field(default=900.0, metadata=bounds(60, 7200))
    min_net_ratio: float = field(default=0.6, metadata=bounds(0, 1))
    min_speed_kn: float = field(default=10.0, metadata=bounds(0, 200))
    max_turn_rate_dps: float = field(default=30.0, metadata=bounds(1, 360))
    max_heading_gap_s: float = field(default=60.0, metadata=bounds(1, 3600))
    sample_s: float = field(default=5.0, metadata=bounds(1, 120))
    max_gap_s: float = field(default=300.0, metadata=bounds(10, 86400))
    break_after_s: float = field(default=600.0, metadata=bounds(10, 86400))
    update_every_s: float = field(default=1800.0, metadata=bounds(60, 86400))
    airfield_exclusion_m: float = field(default=3000.0, metadata=bounds(0, 100000))
    airfield_below_ft: float = field(default=3000.0, metadata=bounds(0, 60000))
    glider_max_speed_kn: float = field(default=80.0, metadata=bounds(0, 300))
    glider_min_gain_ft: float = field(default=300.0, metadata=bounds(0, 20000))
    glider_min_climb_fpm: float = field(default=150.0, metadata=bounds(0, 10000))
    glider_report_thermals: int = field(default=2, metadata=bounds(0, 100000))
    severity: str = field(default="medium", metadata=bounds(choices=("low", "medium", "high")))


@dataclass(slots=True)
class AirOrbitState:
    entity_id: str = ""
    callsign: str | None = None
    last_ts: float = 0.0
    # heading and turn accumulation
    hdg: float | None = None
    hdg_ts: float = 0.0
    pos_lat: float = 0.0
    pos_lon: float = 0.0
    cum_net: float = 0.0
    cum_tot: float = 0.0
    nfix: int = 0
    samples: list[Sample] = field(default_factory=list)  # the last ``max_lap_s``, oldest first
    # the window's highest and lowest cumulative signed turn: (ts, turn), monotonic queues
    net_max: list[tuple[float, float]] = field(default_factory=list)
    net_min: list[tuple[float, float]] = field(default_factory=list)
    # episode
    since_ts: float | None = None  # first sample of the first lap
    lap_ts: float = 0.0  # newest sample that closed a lap
    start_net: float = 0.0
    start_tot: float = 0.0
    end_net: float = 0.0
    end_tot: float = 0.0
    direction: int = 0  # +1 clockwise (right), −1 anticlockwise (left)
    start_fix: int = 0
    end_fix: int = 0
    laps: int = 0  # samples that closed a lap
    sum_lat: float = 0.0
    sum_lon: float = 0.0
    sum_radius_m: float = 0.0
    max_extent_m: float = 0.0
    folded_ts: float = 0.0  # newest sample folded into the profile below
    sum_speed_kn: float = 0.0
    speeds: int = 0
    first_alt_ts: float | None = None
    low_alt_ts: float = 0.0  # lowest altitude so far, and when
    low_alt_ft: float = math.inf
    gain_ft: float = 0.0  # best climb: altitude gained since an earlier low point
    gain_s: float = 0.0
    min_alt_ft: float = math.inf
    max_alt_ft: float = -math.inf
    revision: int = 0
    emitted_end: float = 0.0
    thermal_counted: bool = False  # this episode was counted in ``thermals``
    thermals: int = 0  # episodes of this track judged thermalling once they qualified


class AirOrbitDetector:
    name: ClassVar[str] = "air_orbit"
    version: ClassVar[str] = "1.0"
    entity_types: ClassVar[tuple[str, ...]] = ("aircraft",)

    def __init__(self, cfg: AirOrbitConfig, env: Environment, airfields: AirfieldIndex | None = None) -> None:
        self.cfg = cfg
        self.env = env
        self.info = DetectorInfo(self.name, self.version, config_hash(cfg))
        # prepared once at start-up (airportsdata, ~0.3 s, shared by the process)
        self.airfields = airfields if airfields is not None else default_airfields()
        self._thresholds = threshold_values(cfg, THRESHOLDS)
        self._box_deg = 2.0 * cfg.radius_m / M_PER_DEG_LAT  # box side in degrees of latitude

    # --- protocol -------------------------------------------------------------------
    def step(
        self, state: AirOrbitState | None, fix: Position, ctx: TrackContext
    ) -> tuple[AirOrbitState | None, list[Alert]]:
        if fix.flags & FLAG_IMPLAUSIBLE:
            return state, []
        alerts: list[Alert] = []
        if state is None:
            state = AirOrbitState(entity_id=fix.entity_id)
            state.nfix = 1
            self._restart(state, fix)
        elif not state.samples or fix.ts - state.last_ts > self.cfg.max_gap_s or fix.flags & FLAG_NEW_SEGMENT:
            alerts += self._close(state)
            state.nfix += 1
            self._restart(state, fix)
        else:
            state.nfix += 1
            self._turn(state, fix)
        state.last_ts = fix.ts
        if fix.callsign:
            state.callsign = fix.callsign
        if fix.ts - state.samples[-1][0] >= self.cfg.sample_s:
            self._push(state, _sample(state, fix))
            alerts += self._on_sample(state, fix)
        return state, alerts

    def expire(self, state: AirOrbitState, watermark: float) -> tuple[AirOrbitState | None, list[Alert]]:
        if watermark - state.last_ts >= self.cfg.max_gap_s:
            alerts = self._close(state)
            if not state.thermals:
                return None, alerts
            # a glider out of coverage: only its count of climbs is kept, for when it is back
            state.samples, state.net_max, state.net_min = [], [], []
            return state, alerts
        if state.since_ts is not None and watermark - state.lap_ts >= self.cfg.break_after_s:
            return state, self._close(state)
        return state, []

    def deadline(self, state: AirOrbitState) -> float | None:
        if not state.samples:
            return None  # silent, remembered until the track is forgotten
        gap = state.last_ts + self.cfg.max_gap_s
        if state.since_ts is not None:
            return min(gap, state.lap_ts + self.cfg.break_after_s)
        return gap

    # --- turning --------------------------------------------------------------------
    def _restart(self, state: AirOrbitState, fix: Position) -> None:
        state.hdg = None
        state.pos_lat, state.pos_lon = fix.lat, fix.lon
        state.samples = []
        state.net_max = []
        state.net_min = []
        self._push(state, _sample(state, fix))
        state.hdg = self._heading(state, fix)
        state.hdg_ts = fix.ts

    def _push(self, state: AirOrbitState, sample: Sample) -> None:
        """Append a sample; drop those older than ``max_lap_s``; keep the window's turn extremes."""
        ts, net = sample[0], sample[3]
        samples, hi, lo = state.samples, state.net_max, state.net_min
        samples.append(sample)
        while hi and hi[-1][1] <= net:
            hi.pop()
        hi.append((ts, net))
        while lo and lo[-1][1] >= net:
            lo.pop()
        lo.append((ts, net))
        horizon = ts - self.cfg.max_lap_s
        while samples[0][0] < horizon:
            del samples[0]  # short lists (max_lap_s / sample_s); plain lists serialise as state
        while hi[0][0] < horizon:
            del hi[0]
        while lo[0][0] < horizon:
            del lo[0]

    def _heading(self, state: AirOrbitState, fix: Position) -> float | None:
        """Reported track when there is one; else the bearing from the previous fix."""
        if fix.speed_kn is not None and fix.speed_kn < self.cfg.min_speed_kn:
            return None
        if fix.course_deg is not None and not fix.flags & FLAG_DERIVED_KINEMATICS:
            return fix.course_deg
        dy = (fix.lat - state.pos_lat) * M_PER_DEG_LAT
        dx = wrap_lon(fix.lon - state.pos_lon) * M_PER_DEG_LAT * math.cos(fix.lat * DEG_TO_RAD)
        if dx * dx + dy * dy < MIN_MOVE_M * MIN_MOVE_M:
            return state.hdg if fix.ts - state.hdg_ts <= self.cfg.max_heading_gap_s else None
        return bearing_deg(state.pos_lat, state.pos_lon, fix.lat, fix.lon)

    def _turn(self, state: AirOrbitState, fix: Position) -> None:
        hdg = self._heading(state, fix)
        state.pos_lat, state.pos_lon = fix.lat, fix.lon
        if hdg is None:
            state.hdg = None
            return
        prev = state.hdg
        dt = fix.ts - state.hdg_ts
        if prev is not None and 0.0 < dt <= self.cfg.max_heading_gap_s:
            d = (hdg - prev) % 360.0
            if d > 180.0:
                d -= 360.0
            if abs(d) <= self.cfg.max_turn_rate_dps * dt:
                state.cum_net += d
                state.cum_tot += abs(d)
        state.hdg = hdg
        state.hdg_ts = fix.ts

    def _find_lap(self, state: AirOrbitState) -> tuple[int, float, float, float, float] | None:
        """The shortest recent lap ending at the newest sample: (first index, centre lat,
        centre lon, mean radius m, extent m), or None."""
        samples = state.samples
        ts_j, lat_j, lon_j, net_j, tot_j = samples[-1][:5]
        if state.net_max[0][1] - net_j < FULL_TURN_DEG and net_j - state.net_min[0][1] < FULL_TURN_DEG:
            return None  # no sample of the window is a full turn away: the usual case, O(1)
        box_lat = self._box_deg
        box_lon = box_lat / max(0.01, math.cos(lat_j * DEG_TO_RAD))
        lat_lo = lat_hi = lat_j
        lon_lo = lon_hi = lon_j
        for k in range(len(samples) - 2, -1, -1):
            ts, lat, lon, net, tot = samples[k][:5]
            if lon - lon_j > 180.0:  # across the antimeridian: on the newest sample's side
                lon -= 360.0
            elif lon - lon_j < -180.0:
                lon += 360.0
            if lat < lat_lo:
                lat_lo = lat
            elif lat > lat_hi:
                lat_hi = lat
            if lon < lon_lo:
                lon_lo = lon
            elif lon > lon_hi:
                lon_hi = lon
            if lat_hi - lat_lo > box_lat or lon_hi - lon_lo > box_lon:
                return None
            turned = net_j - net
            if turned >= FULL_TURN_DEG or turned <= -FULL_TURN_DEG:
                if ts_j - ts < self.cfg.min_lap_s or abs(turned) < self.cfg.min_net_ratio * (tot_j - tot):
                    return None
                if abs(samples[-2][3] - net) >= FULL_TURN_DEG:
                    return None  # the lap was complete before the newest sample: no turn closes here
                k_lat = M_PER_DEG_LAT
                k_lon = M_PER_DEG_LAT * math.cos(lat_j * DEG_TO_RAD)
                width = (lon_hi - lon_lo) * k_lon
                height = (lat_hi - lat_lo) * k_lat
                centre_lon = wrap_lon(0.5 * (lon_lo + lon_hi))
                return k, 0.5 * (lat_lo + lat_hi), centre_lon, 0.25 * (width + height), max(width, height)
        return None

    # --- episode --------------------------------------------------------------------
    def _on_sample(self, state: AirOrbitState, fix: Position) -> list[Alert]:
        cfg = self.cfg
        alerts: list[Alert] = []
        samples = state.samples
        if state.since_ts is not None and fix.ts - state.lap_ts >= cfg.break_after_s:
            alerts += self._close(state)
        lap = self._find_lap(state)
        if lap is None:
            return alerts
        k, c_lat, c_lon, radius, extent = lap
        if self._airfield_traffic(fix, c_lat, c_lon):
            return alerts
        first = samples[k]
        direction = 1 if samples[-1][3] > first[3] else -1
        if state.since_ts is not None:
            e_lat, e_lon = state.sum_lat / state.laps, wrap_lon(state.sum_lon / state.laps)
            far = equirectangular_m(e_lat, e_lon, c_lat, c_lon) > cfg.radius_m
            if far or direction != state.direction:
                alerts += self._close(state)
        if state.since_ts is None:
            self._begin(state, first, direction)
        for i in range(len(samples) - 1, -1, -1):
            if samples[i][0] <= state.folded_ts:
                break
        else:
            i = -1
        for j in range(i + 1, len(samples)):
            self._fold(state, samples[j])
        state.lap_ts = fix.ts
        state.end_net, state.end_tot = samples[-1][3], samples[-1][4]
        state.end_fix = samples[-1][7]
        state.laps += 1
        state.sum_lat += c_lat
        if state.laps > 1:  # lap centres summed on the first one's side of the antimeridian (mean wrapped on use)
            before = state.sum_lon / (state.laps - 1)
            c_lon = before + wrap_lon(c_lon - before)
        state.sum_lon += c_lon
        state.sum_radius_m += radius
        if extent > state.max_extent_m:
            state.max_extent_m = extent
        alerts += self._maybe_emit(state)
        return alerts

    def _airfield_traffic(self, fix: Position, lat: float, lon: float) -> bool:
        """A lap low over an airfield: circuits, taxiing, climb-out or approach turns."""
        cfg = self.cfg
        if cfg.airfield_exclusion_m <= 0:
            return False
        if fix.altitude_ft is not None and fix.altitude_ft > cfg.airfield_below_ft:
            return False
        return self.airfields.within(lat, lon, cfg.airfield_exclusion_m)

    def _begin(self, state: AirOrbitState, first: Sample, direction: int) -> None:
        state.since_ts = first[0]
        state.start_net, state.start_tot = first[3], first[4]
        state.start_fix = first[7]
        state.folded_ts = first[0] - 1.0
        state.direction = direction
        state.laps = 0
        state.sum_lat = state.sum_lon = state.sum_radius_m = state.max_extent_m = 0.0
        state.speeds = 0
        state.sum_speed_kn = 0.0
        state.first_alt_ts = None
        state.low_alt_ft = math.inf
        state.gain_ft = state.gain_s = 0.0
        state.min_alt_ft, state.max_alt_ft = math.inf, -math.inf
        state.revision = 0
        state.emitted_end = 0.0
        state.thermal_counted = False

    @staticmethod
    def _fold(state: AirOrbitState, sample: Sample) -> None:
        """Add one sample of the episode to its speed and altitude profile."""
        ts, alt, speed = sample[0], sample[5], sample[6]
        state.folded_ts = ts
        if speed == speed:  # not NaN
            state.sum_speed_kn += speed
            state.speeds += 1
        if alt == alt:
            if state.first_alt_ts is None:
                state.first_alt_ts = ts
            if alt < state.low_alt_ft:
                state.low_alt_ft, state.low_alt_ts = alt, ts
            elif alt - state.low_alt_ft > state.gain_ft:
                state.gain_ft, state.gain_s = alt - state.low_alt_ft, ts - state.low_alt_ts
            if alt < state.min_alt_ft:
                state.min_alt_ft = alt
            if alt > state.max_alt_ft:
                state.max_alt_ft = alt

    def _turns(self, state: AirOrbitState) -> float:
        return abs(state.end_net - state.start_net) / FULL_TURN_DEG

    def _maybe_emit(self, state: AirOrbitState) -> list[Alert]:
        assert state.since_ts is not None
        cfg = self.cfg
        ready = self._turns(state) >= cfg.min_turns and state.lap_ts - state.since_ts >= cfg.min_duration_s
        if ready:  # an episode is counted the first time its profile is thermalling
            speed, _, thermalling = self._profile(state)
            if thermalling and not state.thermal_counted:
                state.thermal_counted = True
                state.thermals += 1
            glider = state.thermals > cfg.glider_report_thermals
            if not state.revision and glider and speed is not None and speed <= cfg.glider_max_speed_kn:
                return []  # a glider (by its climbs so far) circling at glider speed
        status = due_status(state.revision, ready, state.lap_ts, state.emitted_end, cfg.update_every_s)
        return [] if status is None else [self._revision(state, status)]

    def _profile(self, state: AirOrbitState) -> tuple[float | None, float, bool]:
        """The episode's mean ground speed (kn), best climb rate (ft/min), and whether that is thermalling."""
        cfg = self.cfg
        speed = state.sum_speed_kn / state.speeds if state.speeds else None
        climb = state.gain_ft / state.gain_s * 60.0 if state.gain_s > 0 else 0.0
        thermalling = (
            state.gain_ft >= cfg.glider_min_gain_ft
            and climb >= cfg.glider_min_climb_fpm
            and speed is not None
            and speed <= cfg.glider_max_speed_kn
        )
        return speed, climb, thermalling

    def _close(self, state: AirOrbitState) -> list[Alert]:
        out = []
        if state.revision > 0 and state.since_ts is not None:
            out.append(self._revision(state, "closed"))
        state.since_ts = None
        state.revision = 0
        return out

    def _revision(self, state: AirOrbitState, status: AlertStatus) -> Alert:
        assert state.since_ts is not None
        cfg = self.cfg
        state.revision += 1
        state.emitted_end = state.lap_ts
        duration = state.lap_ts - state.since_ts
        turns = self._turns(state)
        total = state.end_tot - state.start_tot
        ratio = abs(state.end_net - state.start_net) / total if total > 0 else 0.0
        lat, lon = state.sum_lat / state.laps, wrap_lon(state.sum_lon / state.laps)
        speed, climb, thermalling = self._profile(state)
        near = self.airfields.nearest(lat, lon)
        evidence = {
            "duration_s": round(duration),
            "turns": round(turns, 2),
            "direction": "right" if state.direction > 0 else "left",
            "net_total_turn_ratio": round(ratio, 3),
            "radius_m": round(state.sum_radius_m / state.laps),
            "extent_m": round(state.max_extent_m),
            "positions": state.end_fix - state.start_fix + 1,
            "mean_speed_kn": round(speed, 1) if speed is not None else None,
            "min_altitude_ft": round(state.min_alt_ft) if state.first_alt_ts is not None else None,
            "max_altitude_ft": round(state.max_alt_ft) if state.first_alt_ts is not None else None,
            "best_climb_ft": round(state.gain_ft),
            "best_climb_rate_fpm": round(climb),
            "profile": "thermalling" if thermalling else "powered",
            "thermalling_episodes": state.thermals,
            "callsign": state.callsign,
            "nearest_airfield": near[0].icao if near else None,
            "distance_to_airfield_m": round(near[1]) if near else None,
        }
        with_thresholds(evidence, self._thresholds)
        confidence = 0.4 + 0.3 * saturating(turns, 3.0) + 0.3 * saturating(ratio, 0.9)
        severity: Severity = "low" if thermalling else cfg.severity  # type: ignore[assignment]
        draft = AlertDraft(
            kind="air_orbit",
            entities=(EntityRef("aircraft", state.entity_id, None),),
            start_ts=state.since_ts,
            end_ts=state.lap_ts,
            lat=lat,
            lon=lon,
            severity=severity,
            confidence=confidence,
            evidence=evidence,
        )
        return emit(self.info, draft, state.revision, status)


def _sample(state: AirOrbitState, fix: Position) -> Sample:
    alt = fix.altitude_ft if fix.altitude_ft is not None else NAN
    speed = fix.speed_kn if fix.speed_kn is not None else NAN
    return (fix.ts, fix.lat, fix.lon, state.cum_net, state.cum_tot, alt, speed, state.nfix)
