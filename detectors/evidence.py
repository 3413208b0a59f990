"""Pieces of alert evidence that several detectors write the same way.

``evidence["thresholds"]`` (issue 8: an analyst sees why an alert fired) holds the
thresholds the alert was judged against, named as in ``config/vigiamar.toml`` (units in the
names): the figures elsewhere in the evidence are compared with these values.
:func:`threshold_values` builds it once per detector from its config; a detector adds the
values it decides per alert (a watch zone's own, one scaled to a vessel's habit).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from models.timeutil import to_iso


def threshold_values(cfg: object, names: Iterable[str]) -> dict[str, Any]:
    """``{name: value}`` of the config fields ``names``; an unknown name is an error at start-up."""
    return {name: getattr(cfg, name) for name in names}


def with_thresholds(evidence: dict[str, Any], thresholds: dict[str, Any], **per_alert: Any) -> dict[str, Any]:
    """``evidence`` with a copy of ``thresholds`` (and the ``per_alert`` values) under ``"thresholds"``."""
    applied = dict(thresholds)
    applied.update(per_alert)
    evidence["thresholds"] = applied
    return evidence


def histogram_median(hist: list[int], width: float) -> float:
    """Median of a histogram of bins ``width`` wide (bin centre); 0 for an empty one."""
    half = (sum(hist) + 1) / 2
    acc = 0
    for i, count in enumerate(hist):
        acc += count
        if acc >= half:
            return (i + 0.5) * width
    return 0.0


def where(ts: float, lat: float, lon: float, speed_kn: float | None) -> dict[str, Any]:
    """A position as evidence: ISO 8601 time, coordinates to 6 decimals (0.1 m), speed."""
    return {"time": to_iso(ts), "lat": round(lat, 6), "lon": round(lon, 6), "speed_kn": speed_kn}
