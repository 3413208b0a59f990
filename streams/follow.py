"""``vigiamar alerts``: follow the per-agency alert topics and print each new revision.

Delivery is at least once, so a revision can arrive twice (after a worker restart). The
follower keeps the highest revision per alert id and prints a revision only when it is
higher: duplicates never reach the output. Formats: ``jsonl`` (the alert record, one per
line), ``table`` (one line per revision), ``cap`` (one CAP 1.2 document per revision).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

from models.alert import Alert
from models.errors import DecodeError
from models.timeutil import to_iso
from streams.cap import identifier, to_cap
from streams.security import client_kwargs
from streams.topics import StreamSettings
from streams.wire import decode_alert

FORMATS = ("jsonl", "table", "cap")


@dataclass
class Follower:
    """Highest revision per id; renders the revisions that are new."""

    fmt: str = "jsonl"
    best: dict[str, Alert] = field(default_factory=dict)
    seen_revisions: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    duplicates: int = 0
    undecodable: int = 0

    def offer(self, raw: bytes | None) -> str | None:
        """The text to print for one message value, or None (duplicate, older or unreadable)."""
        try:
            alert = decode_alert(raw)
        except DecodeError:
            self.undecodable += 1
            return None
        prev = self.best.get(alert.id)
        if prev is not None and alert.revision <= prev.revision:
            self.duplicates += 1
            return None
        self.best[alert.id] = alert
        earlier = self.seen_revisions.setdefault(alert.id, [])
        text = self.render(alert, list(earlier), raw)
        earlier.append((identifier(alert), alert.end_ts))
        return text

    def render(self, alert: Alert, earlier: list[tuple[str, float]], raw: bytes | None) -> str:
        if self.fmt == "cap":
            return to_cap(alert, earlier)
        if self.fmt == "table":
            who = ",".join(e.id + (f" ({e.name})" if e.name else "") for e in alert.entities)
            return (
                f"{alert.kind:<18} r{alert.revision:<3} {alert.status:<7} {to_iso(alert.start_ts)} → "
                f"{to_iso(alert.end_ts)}  {alert.lat:9.4f} {alert.lon:10.4f}  {alert.severity:<6} "
                f"{','.join(alert.agencies):<22} {who}\n"
            )
        return orjson.dumps(orjson.loads(raw or b"{}")).decode() + "\n"


def alert_topics(stream: StreamSettings, agency: str | None) -> list[str]:
    if agency is not None:
        return [stream.topics.agency_topic(agency)]
    return sorted(stream.agency_topics().values())


def make_consumer(brokers: str, topics: Iterable[str], from_beginning: bool, fetch_max_wait_ms: int = 500) -> Any:
    """``fetch_max_wait_ms``: ``[kafka] fetch_max_wait_ms``, as the worker (see :mod:`streams.fetch_wait`)."""
    from kafka import KafkaConsumer

    return KafkaConsumer(
        *topics,
        bootstrap_servers=[b.strip() for b in brokers.split(",") if b.strip()],
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        fetch_max_wait_ms=fetch_max_wait_ms,
        **client_kwargs(),
    )


def follow(
    consumer: Any,
    follower: Follower,
    out: TextIO,
    *,
    idle_exit_s: float | None = None,
    until: Callable[[Follower], bool] | None = None,
    deadline_s: float | None = None,
    poll_ms: int = 200,
) -> Follower:
    """Print new revisions until interrupted, idle for ``idle_exit_s``, ``until`` holds or the deadline."""
    started = last = time.monotonic()
    while True:
        batch = consumer.poll(timeout_ms=poll_ms)
        now = time.monotonic()
        for records in batch.values():
            last = now
            for message in records:
                text = follower.offer(message.value)
                if text is not None:
                    out.write(text)
            out.flush()
        if until is not None and until(follower):
            return follower
        if idle_exit_s is not None and now - last >= idle_exit_s:
            return follower
        if deadline_s is not None and now - started >= deadline_s:
            return follower
