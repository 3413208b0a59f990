"""The worker's cells agent on a stand-in for Kafka: restarts from its snapshot, read again.

The ``cells`` log of one partition comes from the split pipeline of
``test_pairwise_restarts.py`` (the bundled Virginia Beach sample through 8 position
partitions): every note, relay and watermark in its wire form. A worker reads it, writes a
snapshot, and dies; another one restores the partition from the snapshot's table value,
reads the pending samples' notes again (the backfill stands in for a plain consumer), and
goes on. Its alerts must be those of a worker that never stopped.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from detectors.base import Environment
from models.alert import Alert
from models.settings import Settings
from streams.agents import Worker
from streams.cell_agent import CellAgent
from streams.metrics import Metrics
from streams.topics import stream_settings
from streams.wire import decode_alert
from tests.streams.test_pairwise_restarts import World, finals, sample_records
from tests.streams.test_worker_metrics import TP, Event, Message, Sink, env, make_worker
from tests.streams.test_worker_rebalance import _with_cells_stage, cells_sent

__all__ = ["env", "sample_records"]  # module fixtures


@pytest.fixture(scope="module")
def cells_log(
    settings: Settings, env: Environment, sample_records: list[Any]
) -> tuple[int, list[bytes], dict[str, dict[str, Any]]]:
    """A partition of the ``cells`` topic that gives one of the sample's rendezvous, its log,
    and the final alerts of a worker that reads it without stopping."""
    t = stream_settings(settings).topics
    world = World(settings, env, sample_records, t.partitions, t.partitions, seed=5)
    world.run(0.0)
    end = orjson.dumps(world.input_end)
    for side in world.cells:  # the air partitions carried nothing: their end markers
        for p in range(t.partitions):
            side.log.append(b'{"src":"%s/%d","wm":%s,"done":true}' % (t.positions_air.encode(), p, end))
    for k, side in enumerate(world.cells):
        clean, agent = _agent(settings, env, {})
        _feed(agent, TP(t.cells, k), side.log, range(len(side.log)))
        expected = finals(_alerts(clean))
        if any(a["kind"] == "rendezvous" for a in expected.values()):
            return k, side.log, expected
    raise AssertionError("no cells partition gives the sample's rendezvous")


def _agent(settings: Settings, env: Environment, table: dict[bytes, bytes]) -> tuple[Worker, CellAgent]:
    worker = make_worker(settings, env, Metrics())
    _with_cells_stage(worker, settings, env)
    worker.topo.cell_table.data = table
    worker.cell_agent = agent = CellAgent(worker)
    agent.stream = Sink()
    return worker, agent


def _feed(agent: CellAgent, tp: TP, log: list[bytes], offsets: range | list[int]) -> None:
    agent.worker.topo.app.consumer.highwaters[tp] = len(log)  # type: ignore[attr-defined]  # assigned

    async def backfill(tp_: Any, slot: Any, start: int, stop: int) -> None:
        for o in range(start, stop):  # the log stands in for the plain consumer
            await agent._push(tp_, o, log[o], slot)

    agent._backfill = backfill  # type: ignore[method-assign]

    async def go() -> None:
        for o in offsets:
            await agent.on_message(Event(Message(tp, o, log[o])))

    asyncio.run(go())


def _alerts(*workers: Worker) -> list[Alert]:
    return [decode_alert(m["value"]) for w in workers for m in w.topo.alerts.sent]  # type: ignore[attr-defined]


def _position_logs(
    settings: Settings, env: Environment, sample_records: list[Any]
) -> tuple[dict[str, dict[str, Any]], list[list[bytes]]]:
    """The split pipeline's final alerts, and per cells partition what the position partitions
    sent it (the relays are the workers' own to make), with the air partitions' end markers."""
    t = stream_settings(settings).topics
    world = World(settings, env, sample_records, t.partitions, t.partitions, seed=5)
    world.run(0.0)
    expected = finals(world.alerts)
    assert any(a["kind"] == "rendezvous" for a in expected.values())
    end = orjson.dumps(world.input_end)
    air = t.positions_air.encode()
    logs = []
    for side in world.cells:
        log = [m for m in side.log if not orjson.loads(m)["src"].startswith("cells/")]
        logs.append(log + [b'{"src":"%s/%d","wm":%s,"done":true}' % (air, p, end) for p in range(t.partitions)])
    return expected, logs


def test_a_restarted_cells_partition_reads_its_pending_samples_again(
    settings: Settings, env: Environment, cells_log: tuple[int, list[bytes], dict[str, dict[str, Any]]]
) -> None:
    k, log, expected = cells_log
    tp = TP(stream_settings(settings).topics.cells, k)

    table: dict[bytes, bytes] = {}
    first, agent = _agent(settings, env, table)
    cut = len(log) * 2 // 3
    _feed(agent, tp, log, range(cut))
    asyncio.run(agent.flush(tp, agent.slots[tp]))  # the snapshot, then the worker dies
    snapshot = agent.slots[tp].engine.snapshot()
    assert snapshot["r"] < snapshot["o"] == cut - 1, "samples were pending: the snapshot holds none of them"

    second, agent = _agent(settings, env, table)
    # the group's committed offset is after the snapshot: the pending samples' notes are read first
    _feed(agent, tp, log, range(cut, len(log)))
    engine = agent.slots[tp].engine
    assert engine.counts["pending_rebuilt"] > 0 and engine.counts["rebuild_incomplete"] == 0
    assert finals(_alerts(first, second)) == expected

    third, agent = _agent(settings, env, table)
    # committed before the snapshot's end, then a jump while reading again: back to the snapshot
    jump = (snapshot["r"] + cut) // 2
    _feed(agent, tp, log, [jump, *range(jump + 3, len(log))])
    assert third.counts["offset_gaps"] == 1
    assert agent.slots[tp].engine.counts["rebuild_incomplete"] == 0
    assert finals(_alerts(first, third)) == expected


def test_relays_between_cells_partitions_of_one_worker_are_handed_over_and_sent_merged_at_the_flush(
    settings: Settings, env: Environment, sample_records: list[Any]
) -> None:
    t = stream_settings(settings).topics
    expected, logs = _position_logs(settings, env, sample_records)
    worker, agent = _agent(settings, env, {})
    worker.flush_interval_s = 1e9  # flushes only when the test asks
    tps = [TP(t.cells, k) for k in range(t.partitions)]
    for tp, log in zip(tps, logs, strict=True):
        worker.topo.app.consumer.highwaters[tp] = len(log)  # type: ignore[attr-defined]  # assigned

    def relays_sent() -> list[dict[str, Any]]:
        values = [(m["partition"], orjson.loads(m["value"])) for m in cells_sent(worker, worker.topo.cells)]
        return [{"partition": p, **v} for p, v in values if v["src"].startswith("cells/")]

    async def go() -> dict[str, list[Any]]:
        for o in range(max(len(log) for log in logs)):  # every partition held here, read in turn
            for tp, log in zip(tps, logs, strict=True):
                if o < len(log):
                    await agent.on_message(Event(Message(tp, o, log[o])))
        assert relays_sent() == []  # handed over at once; their copies wait for the flushes
        held = {f"cells/{tp.partition}": list(agent.slots[tp].held) for tp in tps}
        for tp in tps:
            await agent.flush(tp, agent.slots[tp])
        return held

    held = asyncio.run(go())
    assert sum(len(h) for h in held.values()) > len(tps)
    sent = relays_sent()
    for src, relays in held.items():
        mine = [m for m in sent if m["src"] == src]
        by_partition = {m["partition"]: m["notes"] for m in mine}
        assert len(by_partition) == len(mine)  # one message per partition (under MAX_NOTES each here)
        assert by_partition == {p: [n for q, _, v in relays if q == p for n in v["notes"]] for p, _, _ in relays}
    assert all(not slot.held and not slot.busy for slot in agent.slots.values())
    assert finals(_alerts(worker)) == expected


def test_a_cells_snapshot_waits_while_outputs_of_a_relay_handed_over_are_being_published(
    settings: Settings, env: Environment
) -> None:
    worker, agent = _agent(settings, env, {})
    tp = TP(stream_settings(settings).topics.cells, 0)
    slot = agent._slot(tp)
    slot.handles.append("message")
    changelog = worker.topo.cell_table.changelog_topic
    slot.busy = 1  # a relay to this partition is being published (an await away)
    asyncio.run(agent.flush(tp, slot))
    assert changelog.sent == [] and slot.handles == ["message"]
    slot.busy = 0
    asyncio.run(agent.flush(tp, slot))
    assert len(changelog.sent) == 1 and slot.handles == []


def test_two_workers_holding_half_the_cells_partitions_each_give_the_split_pipelines_alerts(
    settings: Settings, env: Environment, sample_records: list[Any]
) -> None:
    """Even cells partitions on one worker, odd ones on another, no flush at all: what one
    sends to the other's partitions is appended to their logs (a stand-in for the broker).
    Relays for another worker's partition must go to the topic at once (that worker may be
    waiting for them), so the alerts are the split pipeline's without any flush."""
    t = stream_settings(settings).topics
    expected, sent_here = _position_logs(settings, env, sample_records)
    logs = dict(enumerate(sent_here))
    pair = [_agent(settings, env, {}) for _ in range(2)]  # partition k is held by pair[k % 2]
    for worker, _ in pair:
        worker.flush_interval_s = 1e9
    read = dict.fromkeys(logs, 0)
    shuttled = [0, 0]

    async def go() -> int:
        moved = 0
        busy = True
        while busy:
            busy = False
            for k, log in logs.items():  # every partition in turn, one message each
                worker, agent = pair[k % 2]
                if read[k] < len(log):
                    tp = TP(t.cells, k)
                    worker.topo.app.consumer.highwaters[tp] = len(log)  # type: ignore[attr-defined]  # assigned
                    await agent.on_message(Event(Message(tp, read[k], log[read[k]])))
                    read[k] += 1
                    busy = True
            for side, (worker, _) in enumerate(pair):  # the broker: messages for the other worker's partitions
                sent = cells_sent(worker, worker.topo.cells)
                for m in sent[shuttled[side] :]:
                    if m["partition"] % 2 != side:
                        logs[m["partition"]].append(m["value"])
                        moved += 1
                shuttled[side] = len(sent)
        return moved

    assert asyncio.run(go()) > 0
    assert finals(_alerts(*(w for w, _ in pair))) == expected
