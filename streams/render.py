"""Human-readable views: the alert table and the run summary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO

from detectors.pipeline import Pipeline
from models.alert import Alert
from models.timeutil import to_iso
from streams.embedded import RunReport

# Evidence shown in the table's last column, per kind (the JSON record has all of it).
_EVIDENCE_KEYS = (
    "duration_s",
    "median_speed_kn",
    "min_distance_m",
    "gap_s",
    "max_implied_speed_kn",
    "distance_to_shore_m",
)


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _entities(alert: Alert) -> str:
    parts = []
    for e in alert.entities:
        parts.append(f"{e.id} {e.name}" if e.name else e.id)
    return ", ".join(parts)


def _evidence(ev: dict[str, Any]) -> str:
    items = []
    for key in _EVIDENCE_KEYS:
        value = ev.get(key)
        if value is not None and key != "duration_s":
            items.append(f"{key}={value}")
    return " ".join(items)


def alert_table(alerts: Iterable[Alert]) -> list[str]:
    rows = sorted(alerts, key=lambda a: (a.start_ts, a.kind, a.id))
    header = ("start (UTC)", "duration", "kind", "status", "entities", "lat", "lon", "sev", "conf", "evidence")
    body = [
        (
            to_iso(a.start_ts),
            _duration(a.duration_s),
            a.kind,
            a.status,
            _entities(a)[:40],
            f"{a.lat:.4f}",
            f"{a.lon:.4f}",
            a.severity,
            f"{a.confidence:.2f}",
            _evidence(a.evidence),
        )
        for a in rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return lines


def summary(report: RunReport, pipeline: Pipeline) -> list[str]:
    src = report.sources
    stats = pipeline.stats
    rate = stats.positions_in / report.seconds if report.seconds > 0 else 0.0
    rejected = sum(src.rejects.values())
    lines = [
        "inputs: " + ", ".join(f"{p} ({f})" for p, f in report.inputs),
        f"lines read: {src.lines:,}  positions: {src.positions:,}  static reports: {src.statics:,}"
        f"  ignored lines: {src.ignored_lines:,}",
        f"rejected: {rejected:,}" + _by_reason(src.rejects),
        f"dropped in cleaning: {sum(stats.dropped.values()):,}" + _by_reason(stats.dropped)
        + f"  implausible (marked): {stats.implausible:,}",
        f"tracks: {len(pipeline.engine):,} active, {pipeline.engine.counts['tracks_expired']:,} expired",
    ]
    if src.notes:
        lines.append("notes:" + _by_reason(src.notes))
    kinds: dict[str, int] = {}
    open_now = 0
    for alert in report.alerts_final.values():
        kinds[alert.kind] = kinds.get(alert.kind, 0) + 1
        open_now += alert.status != "closed"
    by_kind = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "none"
    lines.append(
        f"alerts: {len(report.alerts_final):,} ({by_kind}); {sum(stats.alerts.values()):,} revisions;"
        f" {open_now} still open at end of input"
    )
    lines.append(f"time: {report.seconds:.2f} s  ({rate:,.0f} positions/s)")
    return lines


def _by_reason(counter: dict[str, int]) -> str:
    if not counter:
        return ""
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    return " (" + ", ".join(f"{k} {v:,}" for k, v in items) + ")"


def write_lines(out: TextIO, lines: Iterable[str]) -> None:
    for line in lines:
        out.write(line + "\n")
