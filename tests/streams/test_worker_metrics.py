"""The faust worker's metrics, measured on the worker's own handlers with a stand-in for Kafka.

The end-to-end check against a real broker is in ``tests/kafka/test_streaming.py`` (poison pills).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

from detectors.base import Environment
from detectors.registry import build_track_detectors
from models.position import Position
from models.settings import Settings
from streams.agents import Worker
from streams.app import Topology
from streams.embedded import RunReport, merged_items
from streams.metrics import Metrics
from streams.topics import stream_settings
from streams.wire import Partitioner, encode_frame, record_to_wire
from tests.conftest import TEST_DATA

CHANGELOG = "vigiamar-tracks-vessel-changelog"
SLICE = TEST_DATA / "vb_367584050_2020-06-04.csv.gz"  # one vessel, 484 positions
FRAME = 50


class TP(NamedTuple):
    topic: str
    partition: int


@dataclass
class Message:
    tp: TP
    offset: int
    value: bytes
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return self.tp.topic

    @property
    def partition(self) -> int:
        return self.tp.partition


@dataclass
class Event:
    message: Message


class Sink:
    """A topic, a producer or a stream: takes what it is given."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.sent: list[dict[str, Any]] = []
        self.flushes: list[int] = []  # len(sent) at each flush: what went before it reached the broker
        self.refuse = 0  # the next sends the broker refuses

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, *args: Any, **kw: Any) -> asyncio.Future[None]:
        """Like faust's ``Topic.send`` (keywords) and ``Producer.send`` (topic, key, value,
        partition, timestamp, headers): the result is a future the broker's answer completes."""
        names = ("topic", "key", "value", "partition", "timestamp", "headers")
        self.sent.append(kw or dict(zip(names, args, strict=True)))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.refuse:
            self.refuse -= 1
            fut.set_exception(RuntimeError("NotLeaderForPartitionError"))
        else:
            fut.set_result(None)
        return fut

    async def flush(self) -> None:
        self.flushes.append(len(self.sent))

    async def ack(self, handle: Any) -> None:
        pass


class Consumer:
    """The parts of faust's consumer the worker uses: the assignment, each partition's highwater,
    seeks, the committed offsets."""

    def __init__(self) -> None:
        self.highwaters: dict[TP, int] = {}
        self.seeks: list[tuple[TP, int]] = []
        self._committed_offset: dict[TP, int | None] = {}  # faust's: the next offset, as sought or committed

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int:
        assert tp in self.highwaters, "Partition is not assigned"  # as aiokafka does
        return self.highwaters[tp]


class App:
    def __init__(self) -> None:
        self.consumer = Consumer()
        self.consumer_generation_id = 1
        self.producer = Sink()


def make_worker(settings: Settings, env: Environment, metrics: Metrics) -> Worker:
    stream = stream_settings(settings)
    t = stream.topics
    topo = Topology(
        app=App(), brokers="", stream=stream, settings=settings, env=env,  # type: ignore[arg-type]
        detectors=build_track_detectors(settings.detectors, env, str(settings.path)),
        positions={t.positions_vessel: None}, entity_types={t.positions_vessel: ("vessel",)},
        tables={t.positions_vessel: type("Table", (), {"data": {}, "changelog_topic": Sink(CHANGELOG)})()},
        alerts=Sink(), agencies={}, dead_letter=Sink(),
    )  # fmt: skip
    worker = Worker(topo, metrics)
    worker.streams[t.positions_vessel] = Sink()
    return worker


@pytest.fixture(scope="module")
def env(settings: Settings) -> Environment:
    from streams.cli import load_environment

    return load_environment(settings)


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    with ExitStack() as stack:
        records = [r for r in merged_items([SLICE], None, stack, RunReport()) if isinstance(r, Position)]
    wire = [record_to_wire(r) for r in records]
    out = [encode_frame(wire[i : i + FRAME]) for i in range(0, len(wire), FRAME)]
    out.insert(3, b"\x00 not json")  # a poison pill
    out.insert(7, encode_frame([wire[6 * FRAME - 1]]))  # the last fix of the frame before, again
    return out


def changelog_writes(worker: Worker) -> list[dict[str, Any]]:
    """What the worker wrote to the state changelog (through the app's producer)."""
    return [m for m in worker.topo.app.producer.sent if m.get("topic") == CHANGELOG]  # type: ignore[attr-defined]


def run(worker: Worker, messages: Iterator[Message]) -> None:
    async def go() -> None:
        for msg in messages:
            await worker.on_frame(Event(msg), None)

    asyncio.run(go())


def test_worker_reports_lag_step_time_rejects_and_active_state(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    m = Metrics()
    worker = make_worker(settings, env, m)
    topic = stream_settings(settings).topics.positions_vessel
    tp = TP(topic, Partitioner(stream_settings(settings).topics.partitions)("367584050"))
    lag = {"topic": topic, "partition": str(tp.partition)}
    consumer = worker.topo.app.consumer  # type: ignore[attr-defined]
    consumer.highwaters[tp] = len(frames)  # every message written before the worker reads

    half = len(frames) // 2
    run(worker, (Message(tp, o, frames[o]) for o in range(half)))
    assert m.value("vigiamar_consumer_lag_messages", lag) == len(frames) - half
    run(worker, (Message(tp, o, frames[o]) for o in range(half, len(frames))))
    assert m.value("vigiamar_consumer_lag_messages", lag) == 0

    consumer.highwaters[tp] += 7  # written meanwhile, not read yet: the idle timer reports them
    asyncio.run(worker._flush_idle())
    assert m.value("vigiamar_consumer_lag_messages", lag) == 7

    positions = m.value("vigiamar_positions_in_total", {"source": "kafka", "type": "vessel"})
    assert positions == 485  # 484 + the repeated fix (taken in, then dropped by the cleaner)
    steps = m.value("vigiamar_detector_step_seconds_count", {"stage": "track"})
    assert steps == positions, "every detector step is timed (step_sample_every = 1)"
    assert 0 < m.value("vigiamar_detector_step_seconds_sum", {"stage": "track"}) < steps * 0.05

    assert m.value("vigiamar_rejected_total", {"reason": "bad_json"}) == 1  # counted once, not per hop
    assert m.value("vigiamar_rejected_total", {"reason": "duplicate"}) == 1
    assert m.value("vigiamar_dead_lettered_total", {"topic": "deadletter"}) == 2
    assert len(worker.topo.dead_letter.sent) == 2

    asyncio.run(worker._flush(tp, worker.slots[tp]))
    assert m.value("vigiamar_active_tracks") == 1
    assert m.value("vigiamar_active_cells") == 0
    worker.cell_engines.append(type("Cells", (), {"cells": {"a": 1, "b": 2}})())
    asyncio.run(worker._flush(tp, worker.slots[tp]))
    assert m.value("vigiamar_active_cells") == 2

    shore = env.geography.shore.cache_info()  # type: ignore[attr-defined]
    assert m.value("vigiamar_reference_memo_cells", {"index": "shore"}) == shore.currsize > 0
    assert m.value("vigiamar_reference_memo_lookups_total", {"index": "shore", "result": "miss"}) == shore.misses

    # the worker's own events, read from its counts at each scrape
    assert m.value("vigiamar_worker_events_total", {"event": "dead_letter:bad_json"}) == 1
    assert m.value("vigiamar_worker_events_total", {"event": "stall_rereads"}) == 0
    worker.counts["stall_rereads"] += 2
    assert m.value("vigiamar_worker_events_total", {"event": "stall_rereads"}) == 2

    asyncio.run(worker._on_assigned(None, set()))  # revoked: another worker reports its lag now
    assert m.registry.get_sample_value("vigiamar_consumer_lag_messages", lag) is None
    assert worker.offsets == {}


def test_without_metrics_the_worker_times_nothing(settings: Settings, env: Environment, frames: list[bytes]) -> None:
    worker = make_worker(settings, env, None)  # type: ignore[arg-type]
    t = stream_settings(settings).topics
    tp = TP(t.positions_vessel, Partitioner(t.partitions)("367584050"))
    worker.topo.app.consumer.highwaters[tp] = 1  # type: ignore[attr-defined]
    run(worker, iter([Message(tp, 0, frames[0])]))
    engine = worker.slots[tp].engine
    assert engine.push_record == engine.pipeline.push  # the pipeline's own method, not wrapped
    assert worker.offsets == {}
