"""Why an alert fired: its figures against the thresholds, and the track behind it.

``vigiamar explain ALERT_ID --input FILE...`` replays the input, finds the alert (an id or a
unique prefix of one), then prints

* the threshold checks: each evidence figure beside the threshold it was compared with
  (``threshold_checks``; the same rows appear in the map popups);
* the track segments of every entity of the alert around its span, as the detectors saw
  them (cleaned: derived speed marked ``*``, implausible jumps flagged), with the distance
  to the other entities for pairwise alerts.

Pairing figures with thresholds follows the naming convention of the evidence (units in
names): a threshold ``min_X`` / ``max_X`` of the detector's config is compared with every
figure named ``X`` or ``..._X`` (``min_duration_s`` ↔ ``duration_s``, ``max_speed_kn`` ↔
``median_speed_kn``, ``max_distance_m`` ↔ ``min_distance_m``); :data:`ALIASES` covers names
that do not follow it (``distance_to_shore_m`` ↔ ``min_shore_distance_m``).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from detectors.base import Environment, TrackContext
from models.alert import Alert, DetectorInfo
from models.configuring import config_hash
from models.errors import InputError
from models.geo import haversine_m
from models.position import FLAG_DERIVED_KINEMATICS, FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, Position
from models.settings import Settings
from models.timeutil import to_iso

# figure -> (threshold key, comparison that must hold for the alert to fire)
ALIASES: dict[str, tuple[str, str]] = {
    "distance_to_shore_m": ("min_shore_distance_m", ">="),
    "distance_to_port_m": ("port_exclusion_m", ">"),
}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
SEGMENT_GAP_S = 1800.0  # a silence longer than this starts a new printed segment


@dataclass(frozen=True)
class Check:
    figure: str
    value: Any
    op: str
    threshold_key: str
    threshold: Any
    source: str  # "evidence" (the value the detector recorded) or "config" (current settings)

    @property
    def holds(self) -> bool | None:
        """Whether the figure passes the threshold (every value, for per-entity figures)."""
        values = list(self.value.values()) if isinstance(self.value, dict) else [self.value]
        if not values or not all(_is_number(v) for v in values) or not _is_number(self.threshold):
            return None
        return all(_OPS[self.op](float(v), float(self.threshold)) for v in values)

    def text(self) -> str:
        mark = {True: "yes", False: "not met", None: "n/a"}[self.holds]
        return f"{self.figure} = {_num(self.value)} {self.op} {self.threshold_key} = {_num(self.threshold)}: {mark}"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}" if abs(v) < 1e6 else f"{v:.0f}"
    return "n/a" if v is None else str(v)


def config_values(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type) else {}


def threshold_checks(alert: Alert, cfg: Any = None) -> list[Check]:
    """Each evidence figure with the threshold it was compared with, in evidence order.

    Thresholds come from the evidence when the detector recorded them there (the values that
    produced the alert: ``evidence["thresholds"]``, or beside the figures in older alerts), else
    from ``cfg`` (the detector's config object, current settings).
    """
    ev, recorded = _figures_and_thresholds(alert)
    conf = config_values(cfg)
    names = set(conf) if conf else {k for k in ev if k.startswith(("min_", "max_")) and _pairs(k, ev)}
    names |= {k for k in recorded if k.startswith(("min_", "max_")) and _pairs(k, ev)}
    thresholds = sorted(k for k in names if k.startswith(("min_", "max_")))
    checks: list[Check] = []
    for fig, value in ev.items():
        if fig in names:
            continue  # a threshold recorded in the evidence, not a figure
        pairs: list[tuple[int, str, str]] = []  # (specificity, threshold key, comparison)
        if fig in ALIASES and ALIASES[fig][0] in (names | set(ev) | set(recorded)):
            pairs.append((1000, *ALIASES[fig]))
        for t in thresholds:
            suffix = t[4:]
            if fig == suffix or fig.endswith("_" + suffix):
                pairs.append((len(suffix), t, ">=" if t.startswith("min_") else "<="))
        best = max((n for n, _, _ in pairs), default=0)
        pairs = [p for p in pairs if p[0] == best]  # the most specific name wins (median_speed_kn)
        for _, key, op in pairs:
            from_ev = key in recorded or key in ev
            threshold = recorded.get(key, ev.get(key)) if from_ev else conf.get(key)
            checks.append(Check(fig, value, op, key, threshold, "evidence" if from_ev else "config"))
    return checks


def _figures_and_thresholds(alert: Alert) -> tuple[dict[str, Any], dict[str, Any]]:
    """The evidence without its ``thresholds`` entry, and that entry (empty when absent)."""
    recorded = alert.evidence.get("thresholds")
    if not isinstance(recorded, dict):
        return alert.evidence, {}
    return {k: v for k, v in alert.evidence.items() if k != "thresholds"}, recorded


def _pairs(threshold: str, ev: Mapping[str, Any]) -> bool:
    suffix = threshold[4:]
    return any(k != threshold and (k == suffix or k.endswith("_" + suffix)) for k in ev)


def unchecked_evidence(alert: Alert, checks: Sequence[Check]) -> dict[str, Any]:
    used = {c.figure for c in checks} | {c.threshold_key for c in checks}
    return {k: v for k, v in _figures_and_thresholds(alert)[0].items() if k not in used}


# --- finding the alert and its track ---------------------------------------------------------------
def find_alert(alerts: Mapping[str, Alert], wanted: str) -> Alert:
    """The alert with this id, or the only one whose id starts with it."""
    if wanted in alerts:
        return alerts[wanted]
    hits = sorted(k for k in alerts if k.startswith(wanted))
    if len(hits) == 1:
        return alerts[hits[0]]
    if hits:
        raise InputError(
            wanted, f"ambiguous alert id prefix: {len(hits)} alerts start with it ({', '.join(hits[:5])} …)"
        )
    kinds = sorted({a.kind for a in alerts.values()})
    raise InputError(wanted, f"no such alert in this input ({len(alerts)} alerts; kinds: {', '.join(kinds) or 'none'})")


class FixRecorder:
    """A no-op track detector that keeps the cleaned fixes of some entities inside time windows."""

    name: ClassVar[str] = "explain-recorder"
    version: ClassVar[str] = "1"
    entity_types: ClassVar[tuple[str, ...]] = ("vessel", "aircraft")

    def __init__(self, windows: Mapping[str, Sequence[tuple[float, float]]]) -> None:
        self.info = DetectorInfo(self.name, self.version, "-")
        self.windows = windows
        self.fixes: dict[str, list[Position]] = {k: [] for k in windows}

    def step(self, state: Any, fix: Position, ctx: TrackContext) -> tuple[Any, list[Alert]]:
        spans = self.windows.get(fix.entity_id)
        if spans and any(t0 <= fix.ts <= t1 for t0, t1 in spans):
            self.fixes[fix.entity_id].append(fix)
        return None, []

    def expire(self, state: Any, watermark: float) -> tuple[Any, list[Alert]]:
        return None, []

    def deadline(self, state: Any) -> float | None:
        return None


def cleaned_fixes(
    paths: Sequence[Path],
    settings: Settings,
    windows: Mapping[str, Sequence[tuple[float, float]]],
    env: Environment | None = None,
    input_format: str | None = None,
) -> dict[str, list[Position]]:
    """The fixes of ``windows``' entities as the detectors see them (after cleaning)."""
    from contextlib import ExitStack

    from detectors.pipeline import NoCells, Pipeline
    from models.position import Reject
    from streams.embedded import RunReport, merged_items

    recorder = FixRecorder(windows)
    pipeline = Pipeline(settings, env, detectors=[recorder], cells=NoCells())
    with ExitStack() as stack:
        for item in merged_items(list(paths), input_format, stack, RunReport()):
            if not isinstance(item, Reject):
                pipeline.push(item)
        pipeline.finish()
    return recorder.fixes


# --- the printed explanation --------------------------------------------------------------------
def explain_lines(
    alert: Alert,
    fixes: Mapping[str, Sequence[Position]],
    cfg: Any = None,
    context_s: float = 1800.0,
) -> list[str]:
    ev_checks = threshold_checks(alert, cfg)
    ents = ", ".join(f"{e.type} {e.id}" + (f" ({e.name})" if e.name else "") for e in alert.entities)
    lines = [
        f"alert {alert.id}  revision {alert.revision}  {alert.status}",
        f"kind {alert.kind}  severity {alert.severity}  confidence {alert.confidence:.2f}",
        f"span {to_iso(alert.start_ts)} → {to_iso(alert.end_ts)} ({_hm(alert.duration_s)})"
        f"  at {alert.lat:.5f}, {alert.lon:.5f}",
        f"entities {ents}",
        f"zones {', '.join(alert.zones) or '-'}  agencies {', '.join(alert.agencies) or '-'}",
        f"detector {alert.detector.name} {alert.detector.version} config {alert.detector.config_hash}"
        + _config_note(alert, cfg),
        "",
        "why it fired (figure  test  threshold):",
    ]
    if ev_checks:
        lines += [
            f"  {c.text()}" + ("  [threshold from current config]" if c.source == "config" else "") for c in ev_checks
        ]
    else:
        lines.append("  (no figure of the evidence names a threshold)")
    rest = unchecked_evidence(alert, ev_checks)
    if rest:
        lines.append("other evidence: " + "  ".join(f"{k}={_num(v)}" for k, v in rest.items()))
    conf = config_values(cfg)
    if conf:
        lines.append("detector settings: " + "  ".join(f"{k}={_num(v)}" for k, v in conf.items()))
    ids = [e.id for e in alert.entities]
    for eid in ids:
        others = {o: fixes.get(o, []) for o in ids if o != eid}
        lines += ["", *track_lines(eid, fixes.get(eid, []), alert, others, context_s)]
    return lines


def _config_note(alert: Alert, cfg: Any) -> str:
    if cfg is None:
        return " (detector not in this build's registry)"
    if config_hash(cfg) == alert.detector.config_hash:
        return " (= the config given)"
    return f" (the config given hashes to {config_hash(cfg)}: thresholds differ from those that made the alert)"


def _hm(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def segments(fixes: Sequence[Position], gap_s: float = SEGMENT_GAP_S) -> list[list[Position]]:
    """Split at a new track segment (cleaning re-anchored) or a silence over ``gap_s``."""
    out: list[list[Position]] = []
    for fix in fixes:
        if not out or fix.flags & FLAG_NEW_SEGMENT or fix.ts - out[-1][-1].ts > gap_s:
            out.append([])
        out[-1].append(fix)
    return out


def track_lines(
    entity_id: str,
    fixes: Sequence[Position],
    alert: Alert,
    others: Mapping[str, Sequence[Position]],
    context_s: float,
) -> list[str]:
    head = (
        f"track {entity_id}: {len(fixes)} fixes from {context_s / 60:.0f} min before to"
        f" {context_s / 60:.0f} min after the alert span"
    )
    if not fixes:
        return [head, "  (no fixes: the input has none for this entity in that window)"]
    cols = ["", "time (UTC)", "lat", "lon", "speed_kn", "course", "step_m", "flags"]
    cols += [f"to {o} m" for o in others]
    lines = [head, "  * derived speed/course (computed from positions); > inside the alert span", ""]
    rows: list[list[str]] = []
    for n, seg in enumerate(segments(fixes), start=1):
        rows.append([f"segment {n}: {to_iso(seg[0].ts)} → {to_iso(seg[-1].ts)}, {len(seg)} fixes"])
        prev: Position | None = None
        for fix in seg:
            inside = alert.start_ts <= fix.ts <= alert.end_ts
            derived = "*" if fix.flags & FLAG_DERIVED_KINEMATICS else ""
            flags = ",".join(
                name
                for bit, name in ((FLAG_IMPLAUSIBLE, "implausible"), (FLAG_NEW_SEGMENT, "new-segment"))
                if fix.flags & bit
            )
            row = [
                ">" if inside else "",
                to_iso(fix.ts),
                f"{fix.lat:.5f}",
                f"{fix.lon:.5f}",
                "" if fix.speed_kn is None else f"{fix.speed_kn:.2f}{derived}",
                "" if fix.course_deg is None else f"{fix.course_deg:.0f}",
                "" if prev is None else f"{haversine_m(prev.lat, prev.lon, fix.lat, fix.lon):.0f}",
                flags,
            ]
            for other in others.values():
                d = distance_at(other, fix)
                row.append("" if d is None else f"{d:.0f}")
            rows.append(row)
            prev = fix
    widths = [max([len(c)] + [len(r[i]) for r in rows if len(r) == len(cols)]) for i, c in enumerate(cols)]
    lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for r in rows:
        if len(r) == 1:
            lines.append(f"  {r[0]}")
        else:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return lines


def distance_at(track: Sequence[Position], fix: Position, max_dt_s: float = 600.0) -> float | None:
    """Distance from ``fix`` to ``track`` interpolated at the fix's time (None when too far in time)."""
    if not track:
        return None
    import bisect

    times = [p.ts for p in track]
    i = bisect.bisect_left(times, fix.ts)
    if i < len(track) and times[i] == fix.ts:
        return haversine_m(track[i].lat, track[i].lon, fix.lat, fix.lon)
    if 0 < i < len(track):
        a, b = track[i - 1], track[i]
        if b.ts - a.ts <= 2 * max_dt_s:
            w = (fix.ts - a.ts) / (b.ts - a.ts)
            return haversine_m(a.lat + w * (b.lat - a.lat), a.lon + w * (b.lon - a.lon), fix.lat, fix.lon)
    near = min(
        (p for p in (track[i - 1] if i > 0 else None, track[i] if i < len(track) else None) if p),
        key=lambda p: abs(p.ts - fix.ts),
    )
    if abs(near.ts - fix.ts) > max_dt_s:
        return None
    return haversine_m(near.lat, near.lon, fix.lat, fix.lon)


def alert_windows(alerts: Iterable[Alert], context_s: float) -> dict[str, list[tuple[float, float]]]:
    windows: dict[str, list[tuple[float, float]]] = {}
    for a in alerts:
        for e in a.entities:
            windows.setdefault(e.id, []).append((a.start_ts - context_s, a.end_ts + context_s))
    return windows



def explain_command(args: Any) -> int:
    """``vigiamar explain ALERT_ID --input F...``: replay, find the alert, print why and the track."""
    import sys

    from detectors.registry import detector_configs
    from models.settings import load_settings
    from streams.embedded import replay
    from streams.sweep import environment, existing_paths

    settings = load_settings(args.config)
    configs = detector_configs(settings.detectors, str(settings.path))
    env = environment(settings)
    paths = existing_paths(args.input)
    report, _ = replay(
        paths, settings, on_alert=lambda _a: None, on_reject=lambda _r: None, input_format=args.input_format, env=env
    )
    alert = find_alert(report.alerts_final, args.alert_id)
    context_s = args.context_min * 60.0
    fixes = cleaned_fixes(paths, settings, alert_windows([alert], context_s), env, args.input_format)
    for line in explain_lines(alert, fixes, configs.get(alert.detector.name), context_s):
        sys.stdout.write(line + "\n")
    return 0
