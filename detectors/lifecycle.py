"""Alert lifecycle: one open → update … → closed sequence per episode, with stable ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, Severity, alert_id


@dataclass(slots=True)
class AlertDraft:
    """What a detector knows about an episode when it emits a revision."""

    kind: str
    entities: tuple[EntityRef, ...]
    start_ts: float
    end_ts: float
    lat: float
    lon: float
    severity: Severity
    confidence: float
    evidence: dict[str, Any]
    discriminator: str = ""


def emit(info: DetectorInfo, draft: AlertDraft, revision: int, status: AlertStatus) -> Alert:
    """The alert record for one revision of an episode. Ids depend on the episode, not the revision."""
    ids = [e.id for e in draft.entities]
    return Alert(
        id=alert_id(draft.kind, ids, draft.start_ts, draft.discriminator),
        revision=revision,
        kind=draft.kind,
        status=status,
        start_ts=draft.start_ts,
        end_ts=draft.end_ts,
        lat=draft.lat,
        lon=draft.lon,
        entities=tuple(sorted(draft.entities, key=lambda e: (e.type, e.id))),
        severity=draft.severity,
        confidence=max(0.0, min(1.0, draft.confidence)),
        detector=info,
        evidence=draft.evidence,
    )


def due_status(
    revision: int, ready: bool, end_ts: float, emitted_end: float, update_every_s: float
) -> AlertStatus | None:
    """The revision an episode owes after it grew: ``open`` once it is ``ready`` (its thresholds
    are met), then ``update`` whenever its end has moved ``update_every_s`` past the end the
    last revision reported; None while neither."""
    if revision == 0:
        return "open" if ready else None
    return "update" if end_ts - emitted_end >= update_every_s else None


def saturating(value: float, full: float) -> float:
    """0 at 0, 1 at ``full`` and beyond: a simple confidence ramp."""
    if full <= 0:
        return 1.0
    return max(0.0, min(1.0, value / full))
