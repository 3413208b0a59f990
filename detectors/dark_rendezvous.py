"""Dark rendezvous: a vessel goes silent near another that loiters, or reappears where one did.

No public detector anchors this; it is the pattern smugglers use (one side switches its
AIS off for the meeting). Two forms, both for vessels at sea (away from ports and shore):

1. **went dark**: vessel D stops reporting at ``P1`` at ``T1`` and stays silent at least
   ``min_silence_s``, while a companion C is slow (under ``companion_max_speed_kn``) within
   ``max_distance_m`` of ``P1`` for at least ``min_companion_s``; C's slow presence counts
   from ``before_s`` before ``T1`` (it was waiting) and, once C is a candidate, for as long
   as D stays silent. C must still be there ``companion_after_s`` after ``T1``: when a
   receiver fails or a coverage edge is crossed, every vessel falls silent at once, and
   none of them is the loiterer the pattern needs. The alert opens when both hold, is updated as C stays, and closes
   when D reappears (evidence: the gap, where it reappeared) or after ``max_silence_s``.
   An update also follows when the companion leaves (no slow position nearby for two
   log steps), so the latest revision carries the end of its stay.
2. **reappeared**: D reports again at ``P2`` after a gap of ``min_silence_s`` to
   ``max_silence_s``, and a companion C was slow within ``max_distance_m`` of ``P2`` for at
   least ``min_companion_s`` during the gap. Detected after the fact, it is reported as one
   ``closed`` revision. A companion already reported in form 1 for the same silence is not
   reported twice: it is the same alert (same id: dark vessel, companion, ``T1``).

A silence counts only for a vessel seen at least ``min_fixes`` times, and only once it
lasts ``interval_factor`` times the vessel's usual reporting interval too (the median of its
last few intervals): a vessel seen by satellite every hour does not "go dark" every hour.
GFW's AIS-disabling events likewise require regular transmission before the gap.

Start is ``T1`` (D's last report before the gap). End is the companion's last slow
position near ``P1`` (form 1) or D's reappearance ``T2`` (form 2).

State lives in the cell engine's cells (:mod:`detectors.cell_engine`): each cell keeps a
log of slow positions at sea within ``max_distance_m`` of it (at most one per vessel per
``log_step_s``, for ``max(max_silence_s, min_silence_s + before_s)``), and a *marker*
for each vessel that went dark in it, which watches the log for its companions.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from detectors.base import Environment
from detectors.candidates import slow_vessel_at_sea
from detectors.cell_timing import DEFAULT_MAX_INTERP_GAP_S
from detectors.cells import Sample, Silence, finite_or_none, is_ship_station, near_port_or_shore, shared_sea_check
from detectors.evidence import histogram_median, threshold_values, with_thresholds
from detectors.lifecycle import AlertDraft, emit, saturating
from detectors.rendezvous import SERVICE_SHIP_TYPES
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity
from models.configuring import bounds, config_hash
from models.geo import haversine_m
from models.timeutil import to_iso
from models.units import M_PER_DEG_LAT

SPEED_BIN_KN: Final = 0.1
# evidence["thresholds"]: the config values a silence and its companion are judged against
# (a vessel's silence must also last interval_factor × its usual reporting interval)
THRESHOLDS: Final = (
    "max_distance_m", "min_silence_s", "max_silence_s", "interval_factor", "min_fixes", "max_dark_speed_kn",
    "before_s", "companion_max_speed_kn", "min_companion_s", "companion_after_s", "port_exclusion_m",
    "min_shore_distance_m",
)  # fmt: skip


@dataclass(frozen=True)
class DarkRendezvousConfig:
    enabled: bool = True
    max_distance_m: float = field(default=3000.0, metadata=bounds(100, 5000))
    min_silence_s: float = field(default=1800.0, metadata=bounds(300, 86400))
    max_silence_s: float = field(default=43200.0, metadata=bounds(600, 7 * 86400))
    before_s: float = field(default=1800.0, metadata=bounds(0, 86400))
    companion_max_speed_kn: float = field(default=2.0, metadata=bounds(0.1, 20))
    min_companion_s: float = field(default=900.0, metadata=bounds(0, 86400))
    companion_after_s: float = field(default=300.0, metadata=bounds(0, 86400))
    interval_factor: float = field(default=6.0, metadata=bounds(1, 100))
    min_fixes: int = field(default=5, metadata=bounds(1, 10000))
    max_dark_speed_kn: float = field(default=5.0, metadata=bounds(0.1, 100))
    log_step_s: float = field(default=300.0, metadata=bounds(10, 3600))
    port_exclusion_m: float = field(default=3000.0, metadata=bounds(0, 100000))
    min_shore_distance_m: float = field(default=1852.0, metadata=bounds(0, 500000))
    update_every_s: float = field(default=1800.0, metadata=bounds(60, 86400))
    ship_stations_only: bool = True
    exempt_ship_types: tuple[int, ...] = SERVICE_SHIP_TYPES
    severity: str = field(default="high", metadata=bounds(choices=("low", "medium", "high")))

    def __post_init__(self) -> None:
        if self.max_silence_s < self.min_silence_s:
            raise ValueError("max_silence_s must not be below min_silence_s")


# init=False: a written __init__ is compiled, a generated one runs interpreted (test_written_init.py)
@dataclass(slots=True, init=False)
class LogEntry:
    ts: float
    lat: float
    lon: float
    speed_kn: float

    def __init__(self, ts: float, lat: float, lon: float, speed_kn: float) -> None:
        self.ts = ts
        self.lat = lat
        self.lon = lon
        self.speed_kn = speed_kn


@dataclass(slots=True)
class EntityLog:
    eid: str
    name: str | None
    entries: list[LogEntry] = field(default_factory=list)


@dataclass(slots=True)
class Companion:
    eid: str
    name: str | None
    first_ts: float
    last_ts: float
    n: int = 0
    min_dist_m: float = math.inf
    speed_hist: list[int] = field(default_factory=list)
    revision: int = 0
    emitted_end: float = 0.0


@dataclass(slots=True)
class Marker:
    """A vessel that went dark in this cell, watching the log for companions."""

    key: str
    eid: str
    name: str | None
    t1: float
    lat: float
    lon: float
    speed_kn: float | None
    until: float
    companions: dict[str, Companion] = field(default_factory=dict)


@dataclass(slots=True)
class DarkCell:
    logs: dict[str, EntityLog] = field(default_factory=dict)
    markers: dict[str, Marker] = field(default_factory=dict)
    prune_at: float | None = None


class DarkRendezvousDetector:
    name: ClassVar[str] = "dark_rendezvous"
    version: ClassVar[str] = "1.0"
    entity_types: ClassVar[tuple[str, ...]] = ("vessel",)

    def __init__(self, cfg: DarkRendezvousConfig, env: Environment) -> None:
        self.cfg = cfg
        self.env = env
        self.info = DetectorInfo(self.name, self.version, config_hash(cfg))
        self.radius_m = cfg.max_distance_m
        self.log_step_s = cfg.log_step_s
        # companions are judged on positions interpolated across short silences only (the fix itself after longer ones)
        self.max_interp_gap_s = DEFAULT_MAX_INTERP_GAP_S
        self.silence_s = cfg.min_silence_s
        self.max_silence_s = cfg.max_silence_s
        self.speed_limit_kn = cfg.companion_max_speed_kn
        self.interval_factor = cfg.interval_factor
        self.retention_s = max(cfg.max_silence_s, cfg.min_silence_s + cfg.before_s)
        self._slack_s = self.retention_s / 4  # logs are pruned at most this often per cell or vessel
        self._exempt = frozenset(cfg.exempt_ship_types)
        self._sea = shared_sea_check(env, cfg.port_exclusion_m, cfg.min_shore_distance_m)
        self._bins = int(cfg.companion_max_speed_kn / SPEED_BIN_KN) + 1
        self._thresholds = threshold_values(cfg, THRESHOLDS)

    # --- protocol: the log ----------------------------------------------------------
    def new_cell(self) -> DarkCell:
        return DarkCell()

    def logs(self, s: Sample) -> bool:
        cfg = self.cfg
        return slow_vessel_at_sea(s, cfg.companion_max_speed_kn, cfg.ship_stations_only, self._exempt, self._sea)

    def on_log(self, cell: DarkCell, s: Sample) -> list[Alert]:
        assert s.speed_kn is not None
        log = cell.logs.get(s.key)
        if log is None:
            log = cell.logs[s.key] = EntityLog(s.eid, s.name)
        elif s.name:
            log.name = s.name
        entries = log.entries
        entries.append(LogEntry(s.ts, s.lat, s.lon, s.speed_kn))
        horizon = s.ts - self.retention_s
        if entries[0].ts < horizon - self._slack_s:  # pruned in batches; queries filter by time anyway
            log.entries = [e for e in entries if e.ts >= horizon]
        if cell.prune_at is None:
            cell.prune_at = s.ts + self.retention_s + self._slack_s
        alerts: list[Alert] = []
        for marker in cell.markers.values():
            comp = marker.companions.get(s.key)
            if comp is None:
                continue  # companions are found when the vessel goes dark, then only followed
            d = haversine_m(marker.lat, marker.lon, s.lat, s.lon)
            if d <= self.radius_m:
                self._add(comp, s.ts, d, s.speed_kn)
                if s.name:
                    comp.name = s.name
                alerts += self._maybe_emit(marker, comp, s.ts)
        return alerts

    # --- protocol: silences ---------------------------------------------------------
    def on_dark(self, cell: DarkCell, ev: Silence, now: float) -> list[Alert]:
        cfg = self.cfg
        if ev.fixes < cfg.min_fixes:
            return []  # barely tracked: no reporting habit to break
        if ev.speed1_kn is not None and ev.speed1_kn > cfg.max_dark_speed_kn:
            return []
        if cfg.ship_stations_only and not is_ship_station(ev.eid):
            return []
        if near_port_or_shore(self.env, ev.lat1, ev.lon1, cfg.port_exclusion_m, cfg.min_shore_distance_m):
            return []
        found = self._near(cell, ev.key, ev.lat1, ev.lon1, ev.t1 - cfg.before_s, now, frozenset())
        if not found:
            return []
        alerts: list[Alert] = []
        old = cell.markers.pop(ev.key, None)
        if old is not None:  # an earlier silence whose end was never seen: close it first
            alerts += self._close_all(old, None)
        marker = Marker(
            ev.key, ev.eid, ev.name, ev.t1, ev.lat1, ev.lon1, ev.speed1_kn, ev.t1 + cfg.max_silence_s, found
        )
        cell.markers[ev.key] = marker
        for comp in sorted(found.values(), key=lambda c: c.eid):
            alerts += self._maybe_emit(marker, comp, now)
        return alerts

    def close_marker(self, cell: DarkCell, ev: Silence) -> tuple[list[Alert], frozenset[str]]:
        marker = cell.markers.get(ev.key)
        if marker is None or marker.t1 != ev.t1:
            return [], frozenset()
        del cell.markers[ev.key]
        done = frozenset(k for k, c in marker.companions.items() if c.revision > 0)
        return self._close_all(marker, ev), done

    def on_reappear(self, cell: DarkCell, ev: Silence, done: frozenset[str]) -> list[Alert]:
        cfg = self.cfg
        assert ev.t2 is not None
        if ev.fixes < cfg.min_fixes or (cfg.ship_stations_only and not is_ship_station(ev.eid)):
            return []
        if near_port_or_shore(self.env, ev.lat2, ev.lon2, cfg.port_exclusion_m, cfg.min_shore_distance_m):
            return []
        found = self._near(cell, ev.key, ev.lat2, ev.lon2, ev.t1, ev.t2, done)
        alerts: list[Alert] = []
        for comp in sorted(found.values(), key=lambda c: c.eid):
            if comp.last_ts - comp.first_ts >= cfg.min_companion_s:
                marker = Marker(ev.key, ev.eid, ev.name, ev.t1, ev.lat1, ev.lon1, ev.speed1_kn, ev.t2)
                at = (ev.lat2, ev.lon2)
                alerts.append(self._revision(marker, comp, "closed", ev.t2, reappeared=ev, form="reappeared", at=at))
        return alerts

    def expire(self, cell: DarkCell, now: float) -> list[Alert]:
        alerts: list[Alert] = []
        for key in [k for k, m in cell.markers.items() if m.until <= now]:
            alerts += self._close_all(cell.markers.pop(key), None)
        for marker in cell.markers.values():
            for comp in sorted(marker.companions.values(), key=lambda c: c.eid):
                left = self._left_unreported(comp)
                if left is not None and left <= now:  # the companion left: report where its stay ended
                    alerts.append(self._revision(marker, comp, "update", now))
        if cell.prune_at is not None and cell.prune_at <= now:
            horizon = now - self.retention_s
            oldest = math.inf
            for key in list(cell.logs):
                log = cell.logs[key]
                log.entries = [e for e in log.entries if e.ts >= horizon]
                if not log.entries:
                    del cell.logs[key]
                else:
                    oldest = min(oldest, log.entries[0].ts)
            cell.prune_at = oldest + self.retention_s + self._slack_s if cell.logs else None
        return alerts

    def deadline(self, cell: DarkCell) -> float | None:
        due = min((m.until for m in cell.markers.values()), default=math.inf)
        for marker in cell.markers.values():
            for comp in marker.companions.values():
                left = self._left_unreported(comp)
                if left is not None and left < due:
                    due = left
        if cell.prune_at is not None:
            due = min(due, cell.prune_at)
        return due if due < math.inf else None

    def is_empty(self, cell: DarkCell) -> bool:
        return not cell.logs and not cell.markers

    # --- companions -----------------------------------------------------------------
    def _left_unreported(self, comp: Companion) -> float | None:
        """When a reported companion counts as gone (no slow position nearby for two log steps)."""
        if comp.revision > 0 and comp.emitted_end < comp.last_ts:
            return comp.last_ts + 2 * self.cfg.log_step_s
        return None

    def _near(
        self, cell: DarkCell, dark_key: str, lat: float, lon: float, t0: float, t1: float, skip: frozenset[str]
    ) -> dict[str, Companion]:
        """Vessels slow within the radius of (lat, lon) between t0 and t1, from this cell's log."""
        radius = self.radius_m
        dlat = radius / M_PER_DEG_LAT
        found: dict[str, Companion] = {}
        for key, log in cell.logs.items():
            if key == dark_key or key in skip:
                continue
            comp: Companion | None = None
            entries = log.entries
            for i in range(bisect_left(entries, t0, key=_entry_ts), len(entries)):
                e = entries[i]
                if e.ts > t1:
                    break
                if abs(e.lat - lat) > dlat:
                    continue
                d = haversine_m(lat, lon, e.lat, e.lon)
                if d > radius:
                    continue
                if comp is None:
                    comp = Companion(log.eid, log.name, e.ts, e.ts, speed_hist=[0] * self._bins)
                self._add(comp, e.ts, d, e.speed_kn)
            if comp is not None:
                found[key] = comp
        return found

    def _add(self, comp: Companion, ts: float, dist_m: float, speed_kn: float) -> None:
        comp.first_ts = min(comp.first_ts, ts)
        comp.last_ts = max(comp.last_ts, ts)
        comp.n += 1
        comp.min_dist_m = min(comp.min_dist_m, dist_m)
        comp.speed_hist[min(int(speed_kn / SPEED_BIN_KN), self._bins - 1)] += 1

    def _maybe_emit(self, marker: Marker, comp: Companion, now: float) -> list[Alert]:
        if comp.revision == 0:
            if comp.last_ts - comp.first_ts < self.cfg.min_companion_s:
                return []
            if comp.last_ts - marker.t1 < self.cfg.companion_after_s:
                return []  # not seen after the silence began: in a reception outage all fall silent
            return [self._revision(marker, comp, "open", now)]
        if comp.last_ts - comp.emitted_end >= self.cfg.update_every_s:
            return [self._revision(marker, comp, "update", now)]
        return []

    def _close_all(self, marker: Marker, ev: Silence | None) -> list[Alert]:
        out = []
        for comp in sorted(marker.companions.values(), key=lambda c: c.eid):
            if comp.revision > 0:
                now = ev.t2 if ev is not None and ev.t2 is not None else marker.until
                out.append(self._revision(marker, comp, "closed", now, reappeared=ev))
        return out

    def _revision(
        self,
        marker: Marker,
        comp: Companion,
        status: AlertStatus,
        now: float,
        *,
        reappeared: Silence | None = None,
        form: str = "went_dark",
        at: tuple[float, float] | None = None,
    ) -> Alert:
        """One revision for (dark vessel, companion); ``at``: where it happens when not at ``P1``."""
        cfg = self.cfg
        comp.revision += 1
        comp.emitted_end = comp.last_ts
        t2 = reappeared.t2 if reappeared is not None else None
        gap_s = (t2 if t2 is not None else now) - marker.t1
        end = t2 if form == "reappeared" and t2 is not None else comp.last_ts
        lat, lon = at if at is not None else (marker.lat, marker.lon)
        geo = self.env.geography
        companion_s = comp.last_ts - comp.first_ts
        evidence: dict[str, Any] = {
            "form": form,
            "dark_vessel": marker.eid,
            "companion": comp.eid,
            "last_seen": to_iso(marker.t1),
            "last_position": {"lat": round(marker.lat, 6), "lon": round(marker.lon, 6)},
            "dark_vessel_speed_kn": None if marker.speed_kn is None else round(marker.speed_kn, 2),
            "gap_s": round(gap_s),
            "still_dark": t2 is None,
            "distance_m": round(comp.min_dist_m),
            "companion_slow_s": round(companion_s),
            "companion_median_speed_kn": round(histogram_median(comp.speed_hist, SPEED_BIN_KN), 2),
            "companion_positions": comp.n,
            "max_distance_m": cfg.max_distance_m,
            "min_silence_s": cfg.min_silence_s,
            "min_companion_s": cfg.min_companion_s,
            "companion_max_speed_kn": cfg.companion_max_speed_kn,
            "distance_to_shore_m": finite_or_none(geo.distance_to_shore_m(lat, lon)),
            "distance_to_port_m": finite_or_none(geo.distance_to_port_m(lat, lon)),
        }
        with_thresholds(evidence, self._thresholds)
        if reappeared is not None and t2 is not None:
            evidence["reappeared"] = {
                "time": to_iso(t2),
                "lat": round(reappeared.lat2, 6),
                "lon": round(reappeared.lon2, 6),
                "distance_from_last_m": round(
                    haversine_m(reappeared.lat1, reappeared.lon1, reappeared.lat2, reappeared.lon2)
                ),
            }
        confidence = 0.5 + 0.2 * saturating(gap_s, 2 * cfg.min_silence_s)
        confidence += 0.2 * (1.0 - min(1.0, comp.min_dist_m / cfg.max_distance_m))
        confidence += 0.1 * saturating(companion_s, 2 * max(cfg.min_companion_s, cfg.log_step_s))
        severity: Severity = cfg.severity  # type: ignore[assignment]
        draft = AlertDraft(
            kind="dark_rendezvous",
            entities=(EntityRef("vessel", marker.eid, marker.name), EntityRef("vessel", comp.eid, comp.name)),
            start_ts=marker.t1,
            end_ts=max(marker.t1, end),
            lat=lat,
            lon=lon,
            severity=severity,
            confidence=confidence,
            evidence=evidence,
            discriminator=marker.eid,
        )
        return emit(self.info, draft, comp.revision, status)


def _entry_ts(e: LogEntry) -> float:
    return e.ts
