"""Zone entry: a vessel enters (and later leaves) a configured watch zone.

Watch zones are the ``role: watch`` polygons of ``config/zones/*.geojson``, answered by
:class:`models.zones.ZoneIndex` (prepared geometries in an STRtree behind an exact per-cell
cache: one dictionary lookup per fix in the common case). Each zone may filter what it
reports with GeoJSON properties, validated at start-up:

- ``ship_types``: AIS type codes or ranges, e.g. ``[30, "70-79", 80]``. A vessel whose type
  is unknown (no static report yet, or a positions-only feed) passes: dark and
  non-cooperative vessels are exactly the ones that send no type;
- ``min_speed_kn`` / ``max_speed_kn``: the speed of a fix inside the zone (reported, or
  derived by the cleaner); the first fix of the visit that matches opens the alert, fixes
  with no speed yet wait;
- ``dark_entry_min_gap_s``: report only a vessel that *appears* inside after at least this
  long without any report (judged at the first fix inside; a track's very first fix is a
  silence of unknown length and does not count);
- ``severity``: ``low`` | ``medium`` | ``high`` for this zone's alerts.

Entry is the first plausible fix inside after one outside. The first fix of a *track* found
already inside counts as an entry (``entry: first_seen``) when ``first_fix_is_entry``: in a
live stream a track is new only after ``[pipeline] track_ttl_s`` of silence (or never seen),
so a vessel appearing inside a zone is what a watch zone is for. (When replaying a file,
vessels already inside at the start of the file are reported for the same reason; set it
false to avoid that.) Zones that ask for dark entries never report a first fix.

One alert per visit and zone (discriminator: the zone name, so two zones give two ids):
``open`` when the filters first hold, ``update`` at most every ``update_every_s`` while
inside, ``closed`` once the vessel has been outside for ``leave_after_s`` (``exit: left``;
coming back sooner continues the visit, so a vessel running along the boundary is one
visit, not dozens) or after ``visit_timeout_s`` without any report (``exit: silent``; a
vessel reappearing inside afterwards is a new, possibly dark, entry). End = the last fix
inside. Implausible fixes (cleaner-flagged jumps) never enter or leave a zone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final

from detectors.base import Environment, TrackContext
from detectors.evidence import threshold_values, where, with_thresholds
from detectors.lifecycle import AlertDraft, emit
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash
from models.errors import ConfigError
from models.position import FLAG_IMPLAUSIBLE, Position
from models.timeutil import to_iso

SEVERITIES: Final = ("low", "medium", "high")
# evidence["thresholds"]: these config values, then the zone's own filter values
THRESHOLDS: Final = ("leave_after_s", "visit_timeout_s")
ZONE_THRESHOLDS: Final = ("dark_entry_min_gap_s", "min_speed_kn", "max_speed_kn")


@dataclass(frozen=True)
class ZoneEntryConfig:
    enabled: bool = True
    first_fix_is_entry: bool = True
    visit_timeout_s: float = field(default=21600.0, metadata=bounds(60, 30 * 86400))
    leave_after_s: float = field(default=600.0, metadata=bounds(0, 86400))
    update_every_s: float = field(default=3600.0, metadata=bounds(60, 86400))
    severity: str = field(default="medium", metadata=bounds(choices=SEVERITIES))


@dataclass(frozen=True)
class ZoneFilter:
    """A watch zone's filters, read once from its GeoJSON properties."""

    zone: str
    ship_types: tuple[tuple[int, int], ...] | None = None
    min_speed_kn: float | None = None
    max_speed_kn: float | None = None
    dark_entry_min_gap_s: float | None = None
    severity: str | None = None

    def type_ok(self, ship_type: int | None) -> bool:
        if self.ship_types is None or ship_type is None:
            return True
        return any(lo <= ship_type <= hi for lo, hi in self.ship_types)

    def speed_ok(self, speed_kn: float | None) -> bool | None:
        """True/False, or None while the speed is unknown and a speed filter is set."""
        if self.min_speed_kn is None and self.max_speed_kn is None:
            return True
        if speed_kn is None:
            return None
        if self.min_speed_kn is not None and speed_kn < self.min_speed_kn:
            return False
        return self.max_speed_kn is None or speed_kn <= self.max_speed_kn

    def dark_ok(self, entry_gap_s: float | None) -> bool:
        """``entry_gap_s`` None: the track's first fix, a silence of unknown length, which
        proves nothing (a vessel switching on in port looks the same): not a dark entry."""
        if self.dark_entry_min_gap_s is None:
            return True
        return entry_gap_s is not None and entry_gap_s >= self.dark_entry_min_gap_s

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.ship_types is not None:
            out["ship_types"] = [f"{lo}-{hi}" if lo != hi else lo for lo, hi in self.ship_types]
        for key in ("min_speed_kn", "max_speed_kn", "dark_entry_min_gap_s"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(slots=True)
class Visit:
    zone: str
    entry_ts: float
    entry_lat: float
    entry_lon: float
    entry_speed_kn: float | None
    entry_gap_s: float | None  # silence before the entry; None = first fix of the track
    entry: str  # crossed | first_seen | after_gap
    eligible: bool = True  # False: dark-entry filter failed, or first fix not counted
    last_ts: float = 0.0
    last_lat: float = 0.0
    last_lon: float = 0.0
    positions: int = 0
    matched_ts: float | None = None
    matched_speed_kn: float | None = None
    ship_type: int | None = None
    outside_since: float | None = None  # first fix outside, while the exit is not yet confirmed
    exit: dict[str, Any] | None = None  # that fix (time, lat, lon, speed)
    revision: int = 0
    emitted_end: float = 0.0


@dataclass(slots=True)
class ZoneEntryState:
    entity_id: str = ""
    last_ts: float | None = None  # last report of any kind (dark entry judges the silence)
    visits: list[Visit] = field(default_factory=list)


class ZoneEntryDetector:
    name: ClassVar[str] = "zone_entry"
    version: ClassVar[str] = "1.0"
    entity_types: ClassVar[tuple[str, ...]] = ("vessel",)

    def __init__(self, cfg: ZoneEntryConfig, env: Environment) -> None:
        self.cfg = cfg
        self.env = env
        self.filters = {z.name: zone_filter(z.name, z.properties) for z in env.zones.by_role("watch")}
        # The zones' filters shape the alerts as much as the thresholds do: both go in the hash.
        basis = {"cfg": config_hash(cfg), "zones": {k: v.describe() for k, v in sorted(self.filters.items())}}
        digest = hashlib.blake2b(json.dumps(basis, sort_keys=True).encode(), digest_size=6).hexdigest()
        self.info = DetectorInfo(self.name, self.version, digest)
        self._thresholds = threshold_values(cfg, THRESHOLDS)

    # --- protocol -------------------------------------------------------------------
    def step(
        self, state: ZoneEntryState | None, fix: Position, ctx: TrackContext
    ) -> tuple[ZoneEntryState | None, list[Alert]]:
        if state is None:
            state = ZoneEntryState(entity_id=fix.entity_id)
        # Whatever expiry would have closed before this fix is closed first, so the alerts do
        # not depend on when the watermark happened to pass.
        alerts = self._due(state, fix.ts) if state.visits else []
        gap = None if state.last_ts is None else fix.ts - state.last_ts
        if gap is None or gap > 0:
            state.last_ts = fix.ts
        if fix.flags & FLAG_IMPLAUSIBLE or not self.filters:
            return state, alerts
        found = self.env.zones.at(fix.lat, fix.lon, "watch")
        if not found and not state.visits:
            return state, alerts  # the common case: nowhere near a watch zone
        names = [z.name for z in found]
        known = set()
        for visit in state.visits:
            known.add(visit.zone)
            if visit.zone in names:
                visit.outside_since = None  # back inside before the exit was confirmed
            elif visit.outside_since is None:
                visit.outside_since = fix.ts
                visit.exit = where(fix.ts, fix.lat, fix.lon, fix.speed_kn)
        alerts += self._close(state, lambda v: v.outside_since is not None and fix.ts >= self._exit_due(v), "left")
        for zone in names:
            if zone not in known:
                state.visits.append(self._enter(zone, fix, gap))
        for visit in state.visits:
            if visit.outside_since is None:
                alerts += self._inside(state.entity_id, visit, fix, ctx)
        return state, alerts

    def expire(self, state: ZoneEntryState, watermark: float) -> tuple[ZoneEntryState | None, list[Alert]]:
        due = self.deadline(state)
        evicted = due is None or watermark < due
        alerts = self._due(state, watermark)
        if evicted:
            alerts += self._close(state, lambda v: True, "track_expired")
            return None, alerts
        return state, alerts

    def deadline(self, state: ZoneEntryState) -> float | None:
        if not state.visits or state.last_ts is None:
            return None
        due = state.last_ts + self.cfg.visit_timeout_s
        for visit in state.visits:
            if visit.outside_since is not None:
                due = min(due, self._exit_due(visit))
        return due

    def _exit_due(self, visit: Visit) -> float:
        assert visit.outside_since is not None
        return visit.outside_since + self.cfg.leave_after_s

    def _due(self, state: ZoneEntryState, now: float) -> list[Alert]:
        """Close the visits whose exit is confirmed by ``now``, then all of them after a long silence."""
        alerts = self._close(state, lambda v: v.outside_since is not None and now >= self._exit_due(v), "left")
        if state.last_ts is not None and now >= state.last_ts + self.cfg.visit_timeout_s:
            alerts += self._close(state, lambda v: True, "silent")
        return alerts

    def _close(self, state: ZoneEntryState, which: Callable[[Visit], bool], exit_kind: str) -> list[Alert]:
        out: list[Alert] = []
        kept: list[Visit] = []
        for visit in state.visits:
            if not which(visit):
                kept.append(visit)
            elif visit.revision:
                out.append(self._revision(state.entity_id, visit, "closed", exit_kind=exit_kind))
        state.visits = kept
        return out

    # --- visits ---------------------------------------------------------------------
    def _enter(self, zone: str, fix: Position, gap: float | None) -> Visit:
        flt = self.filters[zone]
        dark_limit = flt.dark_entry_min_gap_s if flt.dark_entry_min_gap_s is not None else self.cfg.visit_timeout_s
        if gap is None:
            entry = "first_seen"
        elif gap >= dark_limit:
            entry = "after_gap"
        else:
            entry = "crossed"
        eligible = flt.dark_ok(gap) and (gap is not None or self.cfg.first_fix_is_entry)
        return Visit(
            zone=zone,
            entry_ts=fix.ts,
            entry_lat=fix.lat,
            entry_lon=fix.lon,
            entry_speed_kn=fix.speed_kn,
            entry_gap_s=gap,
            entry=entry,
            eligible=eligible,
        )

    def _inside(self, entity_id: str, visit: Visit, fix: Position, ctx: TrackContext) -> list[Alert]:
        visit.last_ts, visit.last_lat, visit.last_lon = fix.ts, fix.lat, fix.lon
        visit.positions += 1
        if not visit.eligible:
            return []
        if visit.revision:
            if fix.ts - visit.emitted_end >= self.cfg.update_every_s:
                return [self._revision(entity_id, visit, "update")]
            return []
        flt = self.filters[visit.zone]
        if not flt.type_ok(ctx.ship_type) or flt.speed_ok(fix.speed_kn) is not True:
            return []
        visit.matched_ts, visit.matched_speed_kn, visit.ship_type = fix.ts, fix.speed_kn, ctx.ship_type
        return [self._revision(entity_id, visit, "open")]

    # --- alerts ---------------------------------------------------------------------
    def _revision(
        self,
        entity_id: str,
        visit: Visit,
        status: AlertStatus,
        *,
        exit_kind: str | None = None,
    ) -> Alert:
        visit.revision += 1
        visit.emitted_end = visit.last_ts
        flt = self.filters[visit.zone]
        evidence: dict[str, Any] = {
            "zone": visit.zone,
            "entry": visit.entry,
            "entry_gap_s": round(visit.entry_gap_s) if visit.entry_gap_s is not None else None,
            "entry_position": where(visit.entry_ts, visit.entry_lat, visit.entry_lon, visit.entry_speed_kn),
            "matched_at": to_iso(visit.matched_ts) if visit.matched_ts is not None else None,
            "speed_kn": visit.matched_speed_kn,
            "ship_type": visit.ship_type,
            "filters": flt.describe(),
            "duration_s": round(visit.last_ts - visit.entry_ts),
            "positions": visit.positions,
            "exit": exit_kind,
        }
        if exit_kind == "left":
            evidence["exit_position"] = visit.exit
        zone_values = {k: getattr(flt, k) for k in ZONE_THRESHOLDS if getattr(flt, k) is not None}
        with_thresholds(evidence, self._thresholds, **zone_values)
        severity: Severity = flt.severity or self.cfg.severity  # type: ignore[assignment]
        confidence = 0.9 if visit.entry == "crossed" else 0.75
        draft = AlertDraft(
            kind="zone_entry",
            entities=(EntityRef("vessel", entity_id),),
            start_ts=visit.entry_ts,
            end_ts=visit.last_ts,
            lat=visit.last_lat,
            lon=visit.last_lon,
            severity=severity,
            confidence=confidence,
            evidence=evidence,
            discriminator=visit.zone,
        )
        return replace(emit(self.info, draft, visit.revision, status), zones=(visit.zone,))


# --- zone properties ------------------------------------------------------------------
def zone_filter(zone: str, props: dict[str, Any]) -> ZoneFilter:
    """Validate a watch zone's filter properties; a bad value raises :class:`ConfigError`."""
    key = f"zones: {zone}.properties"
    types = props.get("ship_types")
    return ZoneFilter(
        zone=zone,
        ship_types=None if types is None else _type_ranges(types, f"{key}.ship_types"),
        min_speed_kn=_number(props.get("min_speed_kn"), f"{key}.min_speed_kn", 0, 100),
        max_speed_kn=_number(props.get("max_speed_kn"), f"{key}.max_speed_kn", 0, 100),
        dark_entry_min_gap_s=_number(props.get("dark_entry_min_gap_s"), f"{key}.dark_entry_min_gap_s", 0, 30 * 86400),
        severity=_severity(props.get("severity"), f"{key}.severity"),
    )


def _number(value: Any, key: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(key, f"{value!r} is not a number in [{low}, {high}]")
    return float(value)


def _severity(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if value not in SEVERITIES:
        raise ConfigError(key, f"{value!r} is not one of {', '.join(SEVERITIES)}")
    return str(value)


def _type_ranges(value: Any, key: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(key, 'expected a non-empty list of AIS type codes or ranges like "70-79"')
    out: list[tuple[int, int]] = []
    for item in value:
        lo_hi: tuple[int, int] | None = None
        if isinstance(item, int) and not isinstance(item, bool):
            lo_hi = (item, item)
        elif isinstance(item, str):
            parts = item.split("-")
            if len(parts) in (1, 2) and all(p.strip().isdigit() for p in parts):
                lo_hi = (int(parts[0]), int(parts[-1]))
        if lo_hi is None or not 0 <= lo_hi[0] <= lo_hi[1] <= 255:
            raise ConfigError(key, f'{item!r} is not an AIS type code (0-255) or a range like "70-79"')
        out.append(lo_hi)
    return tuple(out)
