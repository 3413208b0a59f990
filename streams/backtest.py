"""Score alerts against labelled events: matching and metrics, pure functions (no I/O).

An alert and a label **match** when they have the same kind, the same set of entity ids and
overlapping time spans. An alert that overlaps no label of its kind and entities matches the
nearest one whose span, widened by ``tolerance_s`` on both sides, it overlaps (so an alert
that starts a little after the labelled event ended still counts, but an alert that truly
overlaps one event is never also credited to its neighbour). The relation is many-to-many:

* a label is **detected** when at least one alert matches it (recall = detected / labels);
* an alert is **correct** when it matches at least one label (precision = correct / alerts);
  every other alert of a covered kind is a **false alarm**; a label nothing matched is a **miss**;
* a label matched by several alerts is **fragmented** (one event reported as pieces); an alert
  matching several labels **merged** them;
* the timing error of a detected label compares its span with the span of its alerts
  together (earliest start, latest end): positive = the alerts start/end later than the label.

Only kinds the label set covers are scored (``LabelSet.kinds``, or ``kinds=`` here); alerts of
other kinds are counted as ``unscored``, never as false alarms.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.alert import Alert
from models.timeutil import to_iso
from streams.labels import Label, LabelSet

DEFAULT_TOLERANCE_S = 1800.0


@dataclass(frozen=True)
class Detection:
    """One detected label and the alerts that matched it."""

    label: Label
    alerts: tuple[Alert, ...]

    @property
    def start_error_s(self) -> float:
        return min(a.start_ts for a in self.alerts) - self.label.start_ts

    @property
    def end_error_s(self) -> float:
        return max(a.end_ts for a in self.alerts) - self.label.end_ts

    @property
    def fragmented(self) -> bool:
        return len(self.alerts) > 1


@dataclass(frozen=True)
class KindScore:
    kind: str
    labels: int
    alerts: int
    detected: int  # labels matched by at least one alert
    correct: int  # alerts matching at least one label
    fragmented: int  # labels matched by more than one alert
    merged: int  # alerts matching more than one label
    start_errors_s: tuple[float, ...] = ()
    end_errors_s: tuple[float, ...] = ()

    @property
    def precision(self) -> float | None:
        return self.correct / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.labels if self.labels else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return 0.0 if p == 0.0 or r == 0.0 else None
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    @property
    def misses(self) -> int:
        return self.labels - self.detected

    @property
    def false_alarms(self) -> int:
        return self.alerts - self.correct


@dataclass(frozen=True)
class BacktestResult:
    tolerance_s: float
    kinds: tuple[str, ...]
    scores: tuple[KindScore, ...]
    total: KindScore
    detections: tuple[Detection, ...]
    misses: tuple[Label, ...]
    false_alarms: tuple[Alert, ...]
    merged: tuple[tuple[Alert, tuple[Label, ...]], ...]
    unscored: dict[str, int] = field(default_factory=dict)

    def score(self, kind: str) -> KindScore | None:
        return next((s for s in self.scores if s.kind == kind), None)

    def outcome_of_alert(self) -> dict[str, str]:
        """alert id -> "match" | "false_alarm" (scored kinds only)."""
        out = {a.id: "false_alarm" for a in self.false_alarms}
        for det in self.detections:
            for a in det.alerts:
                out[a.id] = "match"
        return out


def matches(label: Label, alert: Alert, tolerance_s: float) -> bool:
    """Same kind, same entities, spans overlapping within the tolerance."""
    if alert.kind != label.kind:
        return False
    if tuple(sorted(e.id for e in alert.entities)) != label.entities:
        return False
    return time_gap_s(label, alert) <= tolerance_s


def time_gap_s(label: Label, alert: Alert) -> float:
    """Seconds between the two spans; 0 when they overlap (or touch)."""
    return max(0.0, alert.start_ts - label.end_ts, label.start_ts - alert.end_ts)


def matched_labels(alert: Alert, candidates: Sequence[Label], tolerance_s: float) -> list[Label]:
    """The labels ``alert`` matches among ``candidates`` (same kind and entities already)."""
    gaps = [(time_gap_s(lab, alert), lab) for lab in candidates]
    direct = [lab for gap, lab in gaps if gap == 0.0]
    if direct:
        return direct
    near = [(gap, lab.start_ts, lab.id, lab) for gap, lab in gaps if gap <= tolerance_s]
    return [min(near)[3]] if near else []


def backtest(
    labels: LabelSet,
    alerts: Iterable[Alert],
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    kinds: Sequence[str] | None = None,
) -> BacktestResult:
    """Match final alert revisions to labels and score every covered kind."""
    if tolerance_s < 0:
        raise ValueError("tolerance_s must be >= 0")
    scored = tuple(kinds) if kinds is not None else labels.kinds
    all_alerts = sorted(alerts, key=lambda a: (a.start_ts, a.kind, a.id))
    mine = [a for a in all_alerts if a.kind in scored]
    unscored: dict[str, int] = {}
    for a in all_alerts:
        if a.kind not in scored:
            unscored[a.kind] = unscored.get(a.kind, 0) + 1
    labs = [lab for lab in labels.labels if lab.kind in scored]

    # index labels by (kind, entities): the expensive comparison is only the time overlap
    by_key: dict[tuple[str, tuple[str, ...]], list[Label]] = {}
    for lab in labs:
        by_key.setdefault((lab.kind, lab.entities), []).append(lab)
    of_label: dict[str, list[Alert]] = {lab.id: [] for lab in labs}
    of_alert: dict[str, list[Label]] = {}
    for a in mine:
        key = (a.kind, tuple(sorted(e.id for e in a.entities)))
        hits = matched_labels(a, by_key.get(key, []), tolerance_s)
        of_alert[a.id] = hits
        for lab in hits:
            of_label[lab.id].append(a)

    detections = tuple(Detection(lab, tuple(of_label[lab.id])) for lab in labs if of_label[lab.id])
    misses = tuple(lab for lab in labs if not of_label[lab.id])
    false_alarms = tuple(a for a in mine if not of_alert[a.id])
    merged = tuple((a, tuple(of_alert[a.id])) for a in mine if len(of_alert[a.id]) > 1)
    scores = tuple(_score(kind, labs, mine, detections, of_alert) for kind in scored)
    total = _score("all", labs, mine, detections, of_alert, every_kind=True)
    return BacktestResult(tolerance_s, scored, scores, total, detections, misses, false_alarms, merged, unscored)


def _score(
    kind: str,
    labs: list[Label],
    alerts: list[Alert],
    detections: tuple[Detection, ...],
    of_alert: dict[str, list[Label]],
    every_kind: bool = False,
) -> KindScore:
    def mine(k: str) -> bool:
        return every_kind or k == kind

    dets = [d for d in detections if mine(d.label.kind)]
    kind_alerts = [a for a in alerts if mine(a.kind)]
    return KindScore(
        kind=kind,
        labels=sum(1 for lab in labs if mine(lab.kind)),
        alerts=len(kind_alerts),
        detected=len(dets),
        correct=sum(1 for a in kind_alerts if of_alert[a.id]),
        fragmented=sum(1 for d in dets if d.fragmented),
        merged=sum(1 for a in kind_alerts if len(of_alert[a.id]) > 1),
        start_errors_s=tuple(d.start_error_s for d in dets),
        end_errors_s=tuple(d.end_error_s for d in dets),
    )


# --- views ----------------------------------------------------------------------------------------
def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _minutes(values: Sequence[float], how: str) -> float | None:
    if not values:
        return None
    mins = [v / 60.0 for v in values]
    if how == "median":
        return round(statistics.median(mins), 1)
    return round(statistics.fmean(abs(m) for m in mins), 1)


def _fmt_min(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}" if value else "0.0"


def score_table(result: BacktestResult) -> list[str]:
    """Per-kind metrics as an aligned text table (one row per kind, then all kinds)."""
    header = (
        "kind",
        "labels",
        "alerts",
        "detected",
        "correct",
        "precision",
        "recall",
        "F1",
        "fragmented",
        "merged",
        "start err min (median, mean|.|)",
        "end err min (median, mean|.|)",
    )
    rows = []
    for s in (*result.scores, result.total):
        rows.append(
            (
                s.kind,
                str(s.labels),
                str(s.alerts),
                str(s.detected),
                str(s.correct),
                _ratio(s.precision),
                _ratio(s.recall),
                _ratio(s.f1),
                str(s.fragmented),
                str(s.merged),
                _err_cell(s.start_errors_s),
                _err_cell(s.end_errors_s),
            )
        )
    return _table(header, rows)


def _err_cell(errors: Sequence[float]) -> str:
    if not errors:
        return "-"
    med, mae = _minutes(errors, "median"), _minutes(errors, "mae")
    return f"{_fmt_min(med)}, {mae:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def _entities(ids: Iterable[str]) -> str:
    return ";".join(ids)


def _span(start: float, end: float) -> str:
    return f"{to_iso(start)} → {to_iso(end)}"


def report_lines(result: BacktestResult) -> list[str]:
    """The full human report: metrics, then fragmented events, misses and false alarms."""
    lines = [f"tolerance: {result.tolerance_s / 60:.0f} min; scored kinds: {', '.join(result.kinds) or 'none'}"]
    if result.unscored:
        lines.append(
            "not scored (no labels cover these kinds): "
            + ", ".join(f"{k} {n}" for k, n in sorted(result.unscored.items()))
        )
    lines.append("")
    lines += score_table(result)
    frag = [d for d in result.detections if d.fragmented]
    lines += ["", f"fragmented events ({len(frag)}): one label, several alerts"]
    for d in frag:
        lines.append(
            f"  {d.label.id} {d.label.kind} {_entities(d.label.entities)} {_span(d.label.start_ts, d.label.end_ts)}"
        )
        for a in d.alerts:
            lines.append(f"      {a.id} {_span(a.start_ts, a.end_ts)}")
    if result.merged:
        lines += ["", f"merged events ({len(result.merged)}): one alert, several labels"]
        for a, labs in result.merged:
            lines.append(f"  {a.id} {_span(a.start_ts, a.end_ts)}: {', '.join(lab.id for lab in labs)}")
    lines += ["", f"misses ({len(result.misses)}): labels no alert matched"]
    for lab in result.misses:
        note = f"  ({lab.note})" if lab.note else ""
        lines.append(f"  {lab.id} {lab.kind} {_entities(lab.entities)} {_span(lab.start_ts, lab.end_ts)}{note}")
    lines += ["", f"false alarms ({len(result.false_alarms)}): alerts no label matched"]
    for a in result.false_alarms:
        lines.append(
            f"  {a.id} {a.kind} {_entities(sorted(e.id for e in a.entities))} {_span(a.start_ts, a.end_ts)}"
            f" at {a.lat:.4f},{a.lon:.4f}"
        )
    return lines


def _score_wire(s: KindScore) -> dict[str, Any]:
    return {
        "kind": s.kind,
        "labels": s.labels,
        "alerts": s.alerts,
        "detected": s.detected,
        "correct": s.correct,
        "misses": s.misses,
        "false_alarms": s.false_alarms,
        "precision": None if s.precision is None else round(s.precision, 4),
        "recall": None if s.recall is None else round(s.recall, 4),
        "f1": None if s.f1 is None else round(s.f1, 4),
        "fragmented": s.fragmented,
        "merged": s.merged,
        "start_error_min": {
            "median": _minutes(s.start_errors_s, "median"),
            "mean_abs": _minutes(s.start_errors_s, "mae"),
        },
        "end_error_min": {"median": _minutes(s.end_errors_s, "median"), "mean_abs": _minutes(s.end_errors_s, "mae")},
    }


def _alert_brief(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "entities": sorted(e.id for e in a.entities),
        "start": to_iso(a.start_ts),
        "end": to_iso(a.end_ts),
        "status": a.status,
        "lat": round(a.lat, 6),
        "lon": round(a.lon, 6),
    }


def result_wire(result: BacktestResult) -> dict[str, Any]:
    """The JSON form of a backtest (``vigiamar backtest --format json``)."""
    return {
        "tolerance_min": result.tolerance_s / 60.0,
        "kinds": list(result.kinds),
        "scores": [_score_wire(s) for s in result.scores],
        "total": _score_wire(result.total),
        "unscored": dict(sorted(result.unscored.items())),
        "detections": [
            {
                "label": d.label.to_wire(),
                "alerts": [_alert_brief(a) for a in d.alerts],
                "start_error_min": round(d.start_error_s / 60.0, 1),
                "end_error_min": round(d.end_error_s / 60.0, 1),
                "fragmented": d.fragmented,
            }
            for d in result.detections
        ],
        "misses": [lab.to_wire() for lab in result.misses],
        "false_alarms": [_alert_brief(a) for a in result.false_alarms],
        "merged": [{"alert": a.id, "labels": [lab.id for lab in labs]} for a, labs in result.merged],
    }
