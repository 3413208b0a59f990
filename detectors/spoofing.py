"""Spoofing: identities and positions no single honest transmitter would produce.

Evidence, per vessel (MMSI), from the fixes the cleaner passes on (it *marks* impossible
jumps, ``FLAG_IMPLAUSIBLE`` with ``implied_speed_kn``, and re-anchors the track after a
few mutually consistent ones; see :mod:`detectors.cleaning`):

- **alternation** (shared MMSI, a "ghost" transmitter): an implausible fix that lands back
  on the *other* position seen before, after the track went back to its own. Judged
  scale-free: the fix is closer to the previous implausible fix than ``alternation_ratio``
  × its distance to the track. Two transmitters alternating in one MMSI do this; GPS noise
  and timestamp jitter of a fast boat (implausible fixes strung along the real path) do not.
  Satellite-rate reports of two transmitters a few km apart are minutes apart, and their
  implied speed stays under the cleaner's limit. A vessel's own reports say how fast it
  goes, though: a leg of at least ``mismatch_min_jump_m`` whose implied speed exceeds the
  faster of the speeds reported at its two ends by ``sog_mismatch_kn`` is judged like an
  implausible fix here (it can be one end of an alternation; never a teleport). A vessel
  at 3 kn does not cover 20 km in a quarter of an hour, twice, back and forth.
- **teleport**: an implausible fix implying at least ``strong_jump_speed_kn`` (a weaker
  excess over the cleaner's limit is timestamp jitter, not evidence).
- **on land**: after a jump onto land from the water, ``land_min_fixes`` fixes spanning at
  least ``burst_s``, each at least ``land_margin_m`` inland (the coastline is ~1 km
  resolution, so the fix and eight points around it at that distance must all be land).
  A track already on land (rivers and canals are land to a coastline mask) is never
  evidence by itself; only the jump from water onto land starts it.
- **invalid MMSI**: a configured default (0, 1193046, 123456789, …), a country code followed
  by zeros (``416000000``), one repeated digit, or outside the ship-station range
  200000000–799999999 unless it has a known non-ship prefix (98 craft of a parent ship,
  99 aids to navigation, 970/972/974 SART/MOB/EPIRB, 111 SAR aircraft). Reported once per
  track (low severity) unless other evidence joins it.

Aircraft (``aircraft = true``, by ICAO address) are judged on track jumps only: a teleport or an
alternation counts when the fix lies at least ``aircraft_min_jump_m`` from the track and, for a
teleport, implies at least ``aircraft_strong_jump_speed_kn``. ADS-B feeds resampled to one row
a second repeat a stale position until the next position message and then catch up in one
step: a few km at airliner speed, which the cleaner marks implausible but which is no
evidence. GNSS spoofing or jamming moves the reported position by tens to hundreds of km.
Being over land, and the address itself, are no evidence for aircraft.

Alternations and teleports are counted as *events*; events closer than ``burst_s`` to the
last counted one count once (a same-second burst or one glitch is one event), and an
episode opens when ``min_events`` counted events fall within ``window_s``: single glitches
never alert. Land evidence and an invalid MMSI open an episode on their own.

One alert per episode and MMSI: ``open`` on the first strong evidence (start = first
event of the qualifying set), ``update`` when a new kind of evidence joins or at most every
``update_every_s`` while evidence accumulates, ``closed`` once ``quiet_s`` passes without
new evidence (end = last evidence). Severity: low for an invalid MMSI alone, ``severity``
for one line of evidence, high for two or more independent ones (identity, track jumps
and alternations, land).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from detectors.base import Environment, TrackContext
from detectors.evidence import threshold_values, with_thresholds
from detectors.lifecycle import AlertDraft, emit, saturating
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash
from models.geo import haversine_m, wrap_lon
from models.position import FLAG_DERIVED_KINEMATICS, FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, Position
from models.timeutil import to_iso
from models.units import DEG_TO_RAD, KN_PER_MPS, M_PER_DEG_LAT

# evidence["thresholds"]: the config values the evidence is judged against
THRESHOLDS: Final = (
    "strong_jump_speed_kn", "alternation_ratio", "min_events", "window_s", "burst_s", "quiet_s", "land_margin_m",
    "land_min_fixes", "sog_mismatch_kn", "mismatch_min_jump_m",
)  # fmt: skip
AIRCRAFT_THRESHOLDS: Final = (
    "aircraft_strong_jump_speed_kn", "aircraft_min_jump_m", "alternation_ratio", "min_events", "window_s", "burst_s",
    "quiet_s",
)  # fmt: skip

SHIP_MMSI_MIN: Final = 200_000_000
SHIP_MMSI_MAX: Final = 799_999_999

ALTERNATION: Final = "shared_mmsi"
TELEPORT: Final = "teleport"
ON_LAND: Final = "on_land"
INVALID_MMSI: Final = "invalid_mmsi"
# Independent lines of evidence: two of them make an alert high severity.
_FAMILY = {ALTERNATION: "track", TELEPORT: "track", ON_LAND: "land", INVALID_MMSI: "identity"}


@dataclass(frozen=True)
class SpoofingConfig:
    enabled: bool = True
    strong_jump_speed_kn: float = field(default=100.0, metadata=bounds(10, 100_000))
    alternation_ratio: float = field(default=0.25, metadata=bounds(0.01, 1.0))
    min_events: int = field(default=3, metadata=bounds(1, 1000))
    window_s: float = field(default=3600.0, metadata=bounds(60, 7 * 86400))
    burst_s: float = field(default=300.0, metadata=bounds(0, 86400))
    quiet_s: float = field(default=3600.0, metadata=bounds(60, 7 * 86400))
    update_every_s: float = field(default=1800.0, metadata=bounds(60, 86400))
    check_land: bool = True
    land_margin_m: float = field(default=2000.0, metadata=bounds(0, 100_000))
    land_min_fixes: int = field(default=3, metadata=bounds(1, 1000))
    report_invalid_mmsi: bool = True
    invalid_mmsis: tuple[str, ...] = ("0", "1193046", "123456789", "987654321", "416000000")
    non_ship_prefixes: tuple[str, ...] = ("98", "99", "970", "972", "974", "111")
    max_examples: int = field(default=6, metadata=bounds(1, 100))
    sog_mismatch_kn: float = field(default=25.0, metadata=bounds(0, 1000))  # 0: reported speeds not used
    mismatch_min_jump_m: float = field(default=2000.0, metadata=bounds(0, 1_000_000))
    aircraft: bool = True
    aircraft_strong_jump_speed_kn: float = field(default=1400.0, metadata=bounds(100, 1_000_000))
    aircraft_min_jump_m: float = field(default=10_000.0, metadata=bounds(0, 10_000_000))
    severity: str = field(default="medium", metadata=bounds(choices=("low", "medium", "high")))


@dataclass(slots=True)
class SpoofingState:
    entity_id: str = ""
    aircraft: bool = False
    mmsi_problem: str | None = None
    # the track: last plausible fix
    anchor_ts: float = 0.0
    anchor_lat: float = 0.0
    anchor_lon: float = 0.0
    anchor_sog: float | None = None  # speed it reported there (None: not reported, or derived)
    # the other cluster: last implausible fix, and whether the track went back since
    other_ts: float | None = None
    other_lat: float = 0.0
    other_lon: float = 0.0
    back_since_other: bool = False
    # candidate evidence (before an episode opens): counted event times and examples
    recent: list[float] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    last_counted: float | None = None
    # a run of fixes deep inland that began with a jump from the water
    land_run: int = 0
    land_since: float = 0.0
    # the episode
    revision: int = 0
    start_ts: float = 0.0
    end_ts: float = 0.0  # last evidence
    emitted_end: float = 0.0
    kinds: list[str] = field(default_factory=list)
    emitted_kinds: int = 0
    events: int = 0
    implausible: int = 0
    alternations: int = 0
    jumps: int = 0
    land_fixes: int = 0
    max_implied_kn: float = 0.0
    max_jump_m: float = 0.0
    examples: list[dict[str, Any]] = field(default_factory=list)
    lat: float = 0.0
    lon: float = 0.0


class SpoofingDetector:
    name: ClassVar[str] = "spoofing"
    version: ClassVar[str] = "1.0"
    entity_types: ClassVar[tuple[str, ...]] = ("vessel", "aircraft")

    def __init__(self, cfg: SpoofingConfig, env: Environment) -> None:
        self.cfg = cfg
        self.env = env
        self.info = DetectorInfo(self.name, self.version, config_hash(cfg))
        self._invalid = frozenset(cfg.invalid_mmsis)
        self._thresholds = threshold_values(cfg, THRESHOLDS)
        self._aircraft_thresholds = threshold_values(cfg, AIRCRAFT_THRESHOLDS)

    # --- protocol -------------------------------------------------------------------
    def step(
        self, state: SpoofingState | None, fix: Position, ctx: TrackContext
    ) -> tuple[SpoofingState | None, list[Alert]]:
        alerts: list[Alert] = []
        if state is None:
            aircraft = fix.entity_type == "aircraft"
            if aircraft and not self.cfg.aircraft:
                return None, []
            state = SpoofingState(entity_id=fix.entity_id, aircraft=aircraft)
            if self.cfg.report_invalid_mmsi and not aircraft:
                state.mmsi_problem = mmsi_problem(fix.entity_id, self._invalid, self.cfg.non_ship_prefixes)
            self._anchor(state, fix)
            if state.mmsi_problem is not None:
                example = _example(fix, INVALID_MMSI)
                alerts += self._evidence(state, fix.ts, INVALID_MMSI, [example], state.anchor_lat, state.anchor_lon)
            return state, alerts
        if state.revision and fix.ts >= state.end_ts + self.cfg.quiet_s:
            alerts += self._close(state)
        implausible = bool(fix.flags & FLAG_IMPLAUSIBLE)
        reanchor = bool(fix.flags & FLAG_NEW_SEGMENT) and fix.implied_speed_kn is not None
        if (implausible or reanchor or state.land_run) and not state.aircraft:
            alerts += self._land(state, fix, jump=implausible or reanchor)
        if implausible or (not state.aircraft and self._outruns_reports(state, fix)):
            alerts += self._jump(state, fix)
        else:
            self._anchor(state, fix)
        return state, alerts

    def expire(self, state: SpoofingState, watermark: float) -> tuple[SpoofingState | None, list[Alert]]:
        due = self.deadline(state)
        evicted = due is None or watermark < due
        quiet = due is not None and watermark >= due
        alerts = self._close(state) if state.revision and (evicted or quiet) else []
        return (None if evicted else state), alerts

    def deadline(self, state: SpoofingState) -> float | None:
        return state.end_ts + self.cfg.quiet_s if state.revision else None

    # --- evidence -------------------------------------------------------------------
    def _anchor(self, state: SpoofingState, fix: Position) -> None:
        state.anchor_ts, state.anchor_lat, state.anchor_lon = fix.ts, fix.lat, fix.lon
        state.anchor_sog = None if fix.flags & FLAG_DERIVED_KINEMATICS else fix.speed_kn
        state.back_since_other = True

    def _outruns_reports(self, state: SpoofingState, fix: Position) -> bool:
        """The leg from the track's last position is much faster than the vessel said at both ends."""
        cfg = self.cfg
        sog0, sog1 = state.anchor_sog, fix.speed_kn
        if cfg.sog_mismatch_kn <= 0 or sog0 is None or sog1 is None or fix.flags & FLAG_DERIVED_KINEMATICS:
            return False
        dt = fix.ts - state.anchor_ts
        if dt <= 0:
            return False
        d = haversine_m(state.anchor_lat, state.anchor_lon, fix.lat, fix.lon)
        return d >= cfg.mismatch_min_jump_m and d / dt * KN_PER_MPS >= max(sog0, sog1) + cfg.sog_mismatch_kn

    def _jump(self, state: SpoofingState, fix: Position) -> list[Alert]:
        cfg = self.cfg
        implied = fix.implied_speed_kn or 0.0
        to_track = haversine_m(state.anchor_lat, state.anchor_lon, fix.lat, fix.lon)
        kind: str | None = None
        if state.aircraft:
            strong_kn, far_enough = cfg.aircraft_strong_jump_speed_kn, to_track >= cfg.aircraft_min_jump_m
        else:
            strong_kn, far_enough = cfg.strong_jump_speed_kn, True
        recent_other = state.other_ts is not None and fix.ts - state.other_ts <= cfg.window_s
        if far_enough and recent_other and state.back_since_other:
            to_other = haversine_m(state.other_lat, state.other_lon, fix.lat, fix.lon)
            if to_other <= cfg.alternation_ratio * to_track:
                kind = ALTERNATION
        if kind is None and far_enough and implied >= strong_kn:
            kind = TELEPORT
        state.other_ts, state.other_lat, state.other_lon = fix.ts, fix.lat, fix.lon
        state.back_since_other = False
        if state.revision:
            state.implausible += 1
        if kind is None:
            return []
        example = _example(fix, kind)
        # the position it conflicts with: the track's own, last plausible one
        example["track_lat"], example["track_lon"] = round(state.anchor_lat, 6), round(state.anchor_lon, 6)
        example["jump_m"] = round(to_track)
        return self._evidence(state, fix.ts, kind, [example], state.anchor_lat, state.anchor_lon)

    def _land(self, state: SpoofingState, fix: Position, *, jump: bool) -> list[Alert]:
        cfg = self.cfg
        if not cfg.check_land:
            return []
        deep = self._deep_inland(fix.lat, fix.lon)
        if not deep:
            state.land_run = 0
            return []
        if state.land_run == 0:
            if not jump or self.env.geography.on_land(state.anchor_lat, state.anchor_lon):
                return []  # already on land (a river, a canal): not evidence by itself
            state.land_since = fix.ts
        state.land_run += 1
        if state.land_run < cfg.land_min_fixes or fix.ts - state.land_since < cfg.burst_s:
            return []
        example = _example(fix, ON_LAND)
        return self._evidence(state, fix.ts, ON_LAND, [example], fix.lat, fix.lon, start=state.land_since)

    def _deep_inland(self, lat: float, lon: float) -> bool:
        """On land, and so are eight points ``land_margin_m`` around it."""
        geo = self.env.geography
        if not geo.on_land(lat, lon):
            return False
        margin = self.cfg.land_margin_m
        if margin <= 0:
            return True
        dlat = margin / M_PER_DEG_LAT
        dlon = dlat / max(math.cos(lat * DEG_TO_RAD), 0.01)
        for i in range(8):
            a = i * math.pi / 4
            plat = max(-90.0, min(90.0, lat + dlat * math.sin(a)))
            plon = wrap_lon(lon + dlon * math.cos(a))
            if not geo.on_land(plat, plon):
                return False
        return True

    def _evidence(
        self,
        state: SpoofingState,
        ts: float,
        kind: str,
        examples: list[dict[str, Any]],
        lat: float,
        lon: float,
        start: float | None = None,
    ) -> list[Alert]:
        """One piece of evidence: count it toward opening, or add it to the open episode."""
        cfg = self.cfg
        strong = kind in (ON_LAND, INVALID_MMSI)
        counted = strong or state.last_counted is None or ts - state.last_counted >= cfg.burst_s
        if counted and not strong:
            state.last_counted = ts
        if state.revision:
            self._add(state, ts, kind, examples, lat, lon, counted)
            if len(state.kinds) > state.emitted_kinds or ts - state.emitted_end >= cfg.update_every_s:
                return [self._revision(state, "update")]
            return []
        if counted and not strong:
            state.recent.append(ts)
            state.pending.extend(examples)
        state.recent = [r for r in state.recent if ts - r <= cfg.window_s]
        state.pending = [e for e in state.pending if ts - e["ts"] <= cfg.window_s][-cfg.max_examples :]
        if not strong and len(state.recent) < cfg.min_events:
            return []
        # The episode starts at its first evidence: the qualifying events, or what led to
        # strong evidence (the jump onto land), and the jumps seen just before it.
        self._begin(state, min([ts if start is None else start, *(e["ts"] for e in state.pending)]))
        for example in state.pending:
            self._add(state, example["ts"], example["kind"], [example], lat, lon, True)
        if strong:
            self._add(state, ts, kind, examples, lat, lon, True)
        state.recent, state.pending = [], []
        return [self._revision(state, "open")]

    def _begin(self, state: SpoofingState, start: float) -> None:
        state.start_ts = start
        state.kinds = [INVALID_MMSI] if state.mmsi_problem is not None else []
        state.emitted_kinds = 0
        state.events = state.implausible = state.alternations = state.jumps = state.land_fixes = 0
        state.max_implied_kn = state.max_jump_m = 0.0
        state.examples = []

    def _add(
        self,
        state: SpoofingState,
        ts: float,
        kind: str,
        examples: list[dict[str, Any]],
        lat: float,
        lon: float,
        counted: bool,
    ) -> None:
        state.end_ts = max(state.end_ts, ts) if state.revision else ts
        state.lat, state.lon = lat, lon
        if kind not in state.kinds:
            state.kinds.append(kind)
        if counted:
            state.events += 1
        if kind == ALTERNATION:
            state.alternations += 1
        elif kind == TELEPORT:
            state.jumps += 1
        elif kind == ON_LAND:
            state.land_fixes += 1
        for example in examples:
            if kind in (ALTERNATION, TELEPORT):
                if not state.revision:  # opening: pending jumps (open episodes count in _jump)
                    state.implausible += 1
                state.max_implied_kn = max(state.max_implied_kn, example.get("implied_speed_kn") or 0.0)
                state.max_jump_m = max(state.max_jump_m, example.get("jump_m") or 0.0)
            # a few examples, and of every kind: no kind takes more than half of them
            same = sum(1 for e in state.examples if e["kind"] == kind)
            if len(state.examples) < self.cfg.max_examples and same < max(1, self.cfg.max_examples // 2):
                state.examples.append(example)

    def _close(self, state: SpoofingState) -> list[Alert]:
        out = [self._revision(state, "closed")]
        state.revision = 0
        state.recent, state.pending = [], []
        return out

    # --- alerts ---------------------------------------------------------------------
    def _revision(self, state: SpoofingState, status: AlertStatus) -> Alert:
        cfg = self.cfg
        state.revision += 1
        state.emitted_end = state.end_ts
        state.emitted_kinds = len(state.kinds)
        kinds = sorted(state.kinds)
        families = len({_FAMILY[k] for k in kinds})
        if kinds == [INVALID_MMSI]:
            severity: Severity = "low"
            confidence = 0.6
        else:
            severity = "high" if families >= 2 else cfg.severity  # type: ignore[assignment]
            confidence = 0.5 + 0.3 * saturating(state.events, 4 * cfg.min_events) + 0.2 * saturating(families - 1, 1)
        evidence: dict[str, Any] = {
            "reasons": kinds,
            "mmsi_problem": state.mmsi_problem,
            "evidence_events": state.events,
            "implausible_fixes": state.implausible,
            "alternations": state.alternations,
            "teleports": state.jumps,
            "land_fixes": state.land_fixes,
            "max_implied_speed_kn": round(state.max_implied_kn, 1),
            "max_jump_m": round(state.max_jump_m),
            "duration_s": round(state.end_ts - state.start_ts),
            "positions": [_public(e) for e in state.examples],
        }
        with_thresholds(evidence, self._aircraft_thresholds if state.aircraft else self._thresholds)
        draft = AlertDraft(
            kind="spoofing",
            entities=(EntityRef("aircraft" if state.aircraft else "vessel", state.entity_id),),
            start_ts=state.start_ts,
            end_ts=state.end_ts,
            lat=state.lat,
            lon=state.lon,
            severity=severity,
            confidence=confidence,
            evidence=evidence,
        )
        return emit(self.info, draft, state.revision, status)


# --- helpers ----------------------------------------------------------------------------
def mmsi_problem(mmsi: str, invalid: frozenset[str] | set[str], non_ship_prefixes: tuple[str, ...]) -> str | None:
    """Why an MMSI cannot be an honest ship station's identity, or ``None``."""
    if not mmsi.isdigit() or len(mmsi) > 9:
        return "not_an_mmsi"
    number = int(mmsi)
    if mmsi in invalid or str(number) in invalid:
        return "known_default"
    digits = str(number).zfill(9)
    if SHIP_MMSI_MIN <= number <= SHIP_MMSI_MAX:
        if number % 1_000_000 == 0:
            return "country_code_only"
        if len(set(digits)) == 1:
            return "repeated_digit"
        return None
    if any(digits.startswith(p) for p in non_ship_prefixes):
        return None
    return "not_a_ship_station"


def _example(fix: Position, kind: str) -> dict[str, Any]:
    return {
        "ts": fix.ts,
        "kind": kind,
        "lat": round(fix.lat, 6),
        "lon": round(fix.lon, 6),
        "implied_speed_kn": fix.implied_speed_kn,
    }


def _public(example: dict[str, Any]) -> dict[str, Any]:
    """An evidence position as published: the time as ISO 8601, not epoch seconds."""
    out = {"time": to_iso(example["ts"])}
    out.update((k, v) for k, v in example.items() if k != "ts")
    return out
