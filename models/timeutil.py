"""Event time helpers: event times are float seconds since the Unix epoch, UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def to_datetime(ts: float) -> datetime:
    """Aware UTC datetime for an epoch-seconds event time."""
    return datetime.fromtimestamp(ts, tz=UTC)


def to_iso(ts: float) -> str:
    """ISO 8601 UTC with a ``Z`` suffix, whole seconds unless the time has a fraction."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    """Parse ISO 8601; a time without a zone is taken as UTC (as MarineCadastre writes it)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
