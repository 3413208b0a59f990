"""``vigiamar feed``: publish files (or a live NMEA TCP feed) to the position topics.

Records are decoded by the same source decoders as ``replay`` (several files are merged by
event time, as ``replay`` merges them), written in vigiamar's wire format and packed into
frames: one message holds up to ``kafka.frame_size`` records of entities of one partition
(Kafka's default partitioner on the entity id), in input order (see :mod:`streams.wire`).
Vessel records go to ``positions.vessel``, aircraft to ``positions.air``. Input that does
not decode goes to the dead-letter topic with its reason, file and line.

When a file input ends, an end-of-input marker goes to every partition: the worker then
releases what its reorder buffer holds, so a replay through Kafka ends as ``replay`` does.
A TCP feed never ends that way; its partial frames go out after ``kafka.frame_linger_s``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import InputError
from models.position import Reject
from streams.embedded import RunReport, merged_items
from streams.sources.base import Item
from streams.topics import StreamSettings
from streams.wire import (
    CONTROL_HEADER,
    END_OF_INPUT,
    INPUT_END_HEADER,
    Partitioner,
    Record,
    encode_frame,
    entity_key,
    entity_type,
    record_to_wire,
)

TCP_PREFIX = "tcp://"


@dataclass
class FeedReport:
    records: int = 0
    messages: int = 0
    rejects: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    inputs: list[tuple[str, str]] = field(default_factory=list)
    failed_messages: int = 0  # sends the broker did not accept (after the producer's retries)
    failed_records: int = 0
    first_error: str = ""


class FramePublisher:
    """Packs records into per-partition frames and sends them with a kafka-python producer."""

    def __init__(self, producer: Any, stream: StreamSettings, report: FeedReport) -> None:
        self.producer = producer
        self.topics = stream.topics
        self.frame_size = stream.kafka.frame_size
        self.linger_s = stream.kafka.frame_linger_s
        self.report = report
        self._partitioner = Partitioner(stream.topics.partitions)
        self._frames: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._opened: dict[tuple[str, int], float] = {}
        self.max_ts = float("-inf")  # newest event time published: the end-of-input marker carries it

    def add(self, record: Record) -> None:
        topic = self.topics.positions_air if entity_type(record) == "aircraft" else self.topics.positions_vessel
        where = (topic, self._partitioner(entity_key(record)))
        frame = self._frames.get(where)
        if frame is None:
            frame = self._frames[where] = []
            self._opened[where] = time.monotonic()
        frame.append(record_to_wire(record))
        self.report.records += 1
        if record.ts > self.max_ts:
            self.max_ts = record.ts
        if len(frame) >= self.frame_size:
            self._send(where)

    def reject(self, reject: Reject) -> None:
        headers = [
            ("dlq_reason", reject.reason.encode()),
            ("dlq_source", reject.source.encode()),
            ("dlq_line", reject.where.encode()),
        ]
        if reject.detail:
            headers.append(("dlq_detail", reject.detail[:500].encode()))
        self._send_checked(0, self.topics.dead_letter, value=reject.raw.encode("utf-8", "replace"), headers=headers)
        self.report.rejects += 1

    def tick(self) -> None:
        """Send frames older than the linger time (live feeds)."""
        now = time.monotonic()
        for where in [w for w, t in self._opened.items() if now - t >= self.linger_s]:
            self._send(where)

    def flush_all(self) -> None:
        for where in list(self._frames):
            self._send(where)

    def end_of_input(self) -> None:
        """The marker that lets every worker partition release its reorder buffer."""
        self.flush_all()
        headers = [(CONTROL_HEADER, END_OF_INPUT)]
        if self.max_ts > float("-inf"):
            headers.append((INPUT_END_HEADER, repr(self.max_ts).encode()))
        for topic in self.topics.position_topics():
            for partition in range(self.topics.partitions):
                self._send_checked(0, topic, value=b"[]", partition=partition, headers=headers)
                self.report.messages += 1

    def _send_checked(self, records: int, topic: str, **kw: Any) -> None:
        """Send, and count the message (and its records) if the broker does not accept it."""
        future = self.producer.send(topic, **kw)
        if hasattr(future, "add_errback"):
            future.add_errback(self._failed, records)

    def _failed(self, exc: BaseException, records: int) -> None:
        report = self.report
        report.failed_messages += 1
        report.failed_records += records
        if not report.first_error:
            report.first_error = repr(exc)

    def _send(self, where: tuple[str, int]) -> None:
        frame = self._frames.pop(where)
        self._opened.pop(where, None)
        topic, partition = where
        # A frame of one entity is keyed by it, as a one-record producer would key it.
        key = frame[0]["id"] if all(r["id"] == frame[0]["id"] for r in frame) else None
        self._send_checked(
            len(frame), topic, value=encode_frame(frame), key=None if key is None else str(key).encode(),
            partition=partition,
        )  # fmt: skip
        self.report.messages += 1
        self.report.by_topic[topic] = self.report.by_topic.get(topic, 0) + len(frame)


def tcp_lines(address: str, on_idle: Callable[[], None], timeout_s: float = 0.2) -> Iterator[str]:
    """Lines of a TCP NMEA feed; lines without a tag block get the receive time as a column."""
    host, _, port = address[len(TCP_PREFIX) :].rpartition(":")
    try:
        conn = socket.create_connection((host or "localhost", int(port)), timeout=10)
    except (OSError, ValueError) as exc:
        raise InputError(address, f"cannot connect: {exc}") from exc
    conn.settimeout(timeout_s)
    buf = b""
    with conn:
        while True:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                on_idle()
                continue
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            now = time.time()
            for raw in lines:
                text = raw.decode("utf-8", "replace").rstrip("\r")
                yield text if text.startswith("\\") or not text.strip() else f"{now:.3f},{text}"
    if buf.strip():
        yield buf.decode("utf-8", "replace")


def _tcp_items(address: str, publisher: FramePublisher, report: RunReport) -> Iterator[Item]:
    from streams.sources.nmea import NmeaDecoder

    decoder = NmeaDecoder(address)
    report.inputs.append((address, "nmea"))
    try:
        yield from decoder.decode(tcp_lines(address, publisher.tick))
    finally:
        report.sources.merge(decoder.stats)


def publish(
    inputs: list[str],
    stream: StreamSettings,
    producer: Any,
    *,
    rate: float | None = None,
    input_format: str | None = None,
    end_marker: bool = True,
) -> FeedReport:
    """Decode ``inputs`` (files, or ``tcp://HOST:PORT``) and publish them; returns counts."""
    report = FeedReport()
    publisher = FramePublisher(producer, stream, report)
    run = RunReport()
    started = time.monotonic()
    files = [Path(p) for p in inputs if not p.startswith(TCP_PREFIX)]
    live = [p for p in inputs if p.startswith(TCP_PREFIX)]
    with ExitStack() as stack:
        items: list[Iterator[Item]] = [merged_items(files, input_format, stack, run)] if files else []
        items += [_tcp_items(a, publisher, run) for a in live]
        n = 0
        for source in items:
            for item in source:
                if isinstance(item, Reject):
                    publisher.reject(item)
                    continue
                publisher.add(item)
                n += 1
                if rate:
                    ahead = n / rate - (time.monotonic() - started)
                    if ahead > 0:
                        publisher.tick()
                        time.sleep(ahead)
    if end_marker and not live:
        publisher.end_of_input()
    publisher.flush_all()
    producer.flush(timeout=60)
    report.inputs = run.inputs
    report.seconds = time.monotonic() - started
    return report
