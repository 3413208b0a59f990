"""``vigiamar feed`` packing: frames per partition, in input order, end-of-input markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from models.position import Position
from models.settings import Settings
from streams.feed import FeedReport, FramePublisher
from streams.topics import stream_settings
from streams.wire import CONTROL_HEADER, END_OF_INPUT, INPUT_END_HEADER, Partitioner, input_end, record_from_wire


class Recorder:
    """The two producer calls the publisher makes (kafka-python's ``send`` signature)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> None:  # fmt: skip
        self.sent.append({"topic": topic, "value": value, "key": key, "partition": partition, "headers": headers})

    def flush(self, timeout: float | None = None) -> None:
        return None


def test_frames_hold_one_partition_in_input_order_and_end_with_markers(settings: Settings) -> None:
    stream = stream_settings(settings)
    rec = Recorder()
    pub = FramePublisher(rec, stream, FeedReport())
    fixes = [Position("vessel", str(366000000 + i % 23), 1.6e9 + i, 36.0, -75.0, source="t") for i in range(2000)]
    fixes += [Position("aircraft", "4ca1f0", 1.6e9 + i, 48.0, 2.0, source="t") for i in range(3)]
    for fix in fixes:
        pub.add(fix)
    pub.end_of_input()
    part = Partitioner(stream.topics.partitions)
    frames = [m for m in rec.sent if not m["headers"]]
    seen: list[Position] = []
    for m in frames:
        records = [record_from_wire(r) for r in orjson.loads(m["value"])]
        assert 0 < len(records) <= stream.kafka.frame_size
        assert {part(r.entity_id) for r in records if isinstance(r, Position)} == {m["partition"]}
        assert m["topic"] == ("positions.air" if records[0].entity_type == "aircraft" else "positions.vessel")
        seen += [r for r in records if isinstance(r, Position)]
    for p in range(stream.topics.partitions):  # per partition, input order is kept
        mine = [f for f in fixes if part(f.entity_id) == p and f.entity_type == "vessel"]
        assert [f for f in seen if part(f.entity_id) == p and f.entity_type == "vessel"] == mine
    end = repr(max(f.ts for f in fixes)).encode()  # the newest event time of the whole input
    markers = [m for m in rec.sent if m["headers"] == [(CONTROL_HEADER, END_OF_INPUT), (INPUT_END_HEADER, end)]]
    assert len(markers) == 2 * stream.topics.partitions
    assert all(input_end(m["headers"]) == 1.6e9 + 1999 for m in markers)
    assert rec.sent[-len(markers) :] == markers  # after every frame
    assert [m["key"] for m in frames if m["topic"] == "positions.air"] == [b"4ca1f0"]  # one entity: keyed by it


def test_a_tcp_nmea_feed_gets_receive_times_and_is_published(settings: Settings, shared_data: Path) -> None:
    """Live receivers send bare sentences: the feed stamps each with its receive time."""
    import socket
    import threading
    import time

    from streams.feed import publish

    sample = (shared_data / "nmea" / "pyais_nmea_data_sample.txt").read_bytes().splitlines(keepends=True)
    lines = [*sample[:3], b"garbage line\r\n"]  # three position reports (type 3, 3, 1), then noise
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"".join(lines))
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    rec = Recorder()
    before = time.time()
    report = publish([f"tcp://127.0.0.1:{port}"], stream_settings(settings), rec)
    frames = [m for m in rec.sent if m["topic"] == "positions.vessel"]
    records = [record_from_wire(r) for m in frames for r in orjson.loads(m["value"])]
    assert report.records == len(records) == 3 and report.rejects == 1
    assert all(before - 1 <= r.ts <= time.time() + 1 for r in records)
    assert not [m for m in rec.sent if m["headers"] and m["headers"][0][0] == "vigiamar_control"]  # live: no end


class Refusing(Recorder):
    """A producer whose broker refuses every frame of partition 0 (after its retries)."""

    def send(self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> Any:  # fmt: skip
        super().send(topic, value, key, partition, headers)
        return _Failed(REFUSED if partition == 0 and value != b"[]" else None)


REFUSED = ValueError("NotLeaderForPartitionError")


class _Failed:
    def __init__(self, exc: Exception | None) -> None:
        self.exc = exc

    def add_errback(self, fn: Any, *args: Any) -> None:
        if self.exc is not None:
            fn(self.exc, *args)


def test_sends_the_broker_refuses_are_counted_not_lost_silently(settings: Settings) -> None:
    stream = stream_settings(settings)
    report = FeedReport()
    pub = FramePublisher(Refusing(), stream, report)
    fixes = [Position("vessel", str(366000000 + i % 23), 1.6e9 + i, 36.0, -75.0, source="t") for i in range(500)]
    for fix in fixes:
        pub.add(fix)
    pub.end_of_input()
    part = Partitioner(stream.topics.partitions)
    assert report.failed_records == sum(part(f.entity_id) == 0 for f in fixes) > 0
    assert report.failed_messages >= 1 and "NotLeaderForPartition" in report.first_error
