"""A rebalance on the worker's own handlers: state written when partitions are revoked, nothing after.

A partition revoked in a rebalance may go to another worker, which restores it from the
tables once the rebalance is over. A write of the old owner landing after that restore
would mix two owners' state, so the worker writes each revoked partition's state at once
and then nothing more until the assignment says whether it keeps the partition.
The same flow against a real broker is ``tests/kafka/test_streaming.py`` (killed worker).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from detectors.base import Environment
from models.settings import Settings
from streams.agents import Worker
from streams.cell_agent import CellAgent
from streams.metrics import Metrics
from streams.topics import stream_settings
from streams.wire import Partitioner, decode_alert
from tests.streams.test_worker_metrics import TP, Event, Message, Sink, changelog_writes, env, frames, make_worker, run

__all__ = ["env", "frames"]  # module fixtures shared with the metrics tests


def _worker(settings: Settings, env: Environment, messages: int) -> tuple[Worker, TP]:
    """A worker with a stand-in for Kafka, and the partition of the slice's vessel (``messages`` long)."""
    worker = make_worker(settings, env, Metrics())
    t = stream_settings(settings).topics
    tp = TP(t.positions_vessel, Partitioner(t.partitions)("367584050"))
    worker.topo.app.consumer.highwaters[tp] = messages  # type: ignore[attr-defined]
    return worker, tp


def test_revoked_partitions_are_written_then_frozen_until_the_assignment(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    worker, tp = _worker(settings, env, len(frames))
    half = len(frames) // 2
    run(worker, (Message(tp, o, frames[o]) for o in range(half)))
    slot = worker.slots[tp]
    assert not slot.engine.idle(), "processed since the last flush: a revoke has something to write"

    asyncio.run(worker._on_revoked(None, {tp}))
    written = len(changelog_writes(worker))
    assert written > 0 and changelog_writes(worker)[-1]["key"] == slot.engine.checkpoint_key  # checkpoint last
    assert slot.engine.flushed_offset == half - 1 and slot.frozen

    # While frozen: messages are left for the next owner (or for this one, read again after
    # the rebalance), and neither a flush nor the idle timer writes.
    run(worker, (Message(tp, o, frames[o]) for o in range(half, half + 2)))
    assert slot.engine.last_offset == half - 1
    asyncio.run(worker._flush(tp, slot))
    slot.flushed_at = 0.0
    asyncio.run(worker._flush_idle())
    assert len(changelog_writes(worker)) == written

    # Kept in the assignment of the next generation: the same engine goes on where it was.
    worker.topo.app.consumer_generation_id += 1  # type: ignore[attr-defined]
    asyncio.run(worker._on_assigned(None, {tp}))
    assert worker.slots[tp] is slot and not slot.frozen
    run(worker, (Message(tp, o, frames[o]) for o in range(half, len(frames))))
    assert slot.engine.last_offset == len(frames) - 1
    asyncio.run(worker._flush(tp, slot))
    assert len(changelog_writes(worker)) > written

    # Revoked and given to another worker: dropped, never written again.
    asyncio.run(worker._on_revoked(None, {tp}))
    asyncio.run(worker._on_assigned(None, set()))
    assert tp not in worker.slots


def test_a_partition_assigned_again_after_a_missed_generation_is_restored_from_the_table(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """A worker the group dropped for a generation gets its partition back: another member may
    have written newer state meanwhile (without committing past this worker's last offset),
    so the worker's memory is not used; the table's state is."""
    worker, tp = _worker(settings, env, len(frames))
    half, three_quarters = len(frames) // 2, 3 * len(frames) // 4
    run(worker, (Message(tp, o, frames[o]) for o in range(half)))
    asyncio.run(worker._on_revoked(None, {tp}))
    table = worker.topo.tables[tp.topic].data  # type: ignore[attr-defined]

    other, _ = _worker(settings, env, len(frames))  # held the partition in the generation missed
    other.topo.tables[tp.topic].data.update(table)  # type: ignore[attr-defined]
    start = orjson.loads(table[worker.slots[tp].engine.checkpoint_key])["resume"]  # as the group committed
    run(other, (Message(tp, o, frames[o]) for o in range(start, three_quarters)))
    asyncio.run(other._flush(tp, other.slots[tp]))
    newer = other.slots[tp].engine.flushed_offset
    assert newer == three_quarters - 1
    table.update(other.topo.tables[tp.topic].data)  # type: ignore[attr-defined]  # the changelog, read again

    resume = orjson.loads(table[other.slots[tp].engine.checkpoint_key])["resume"]
    assert half <= resume  # the group may have committed no further than this worker had read

    old = worker.slots[tp]
    worker.topo.app.consumer_generation_id += 2  # type: ignore[attr-defined]
    asyncio.run(worker._on_assigned(None, {tp}))
    assert tp not in worker.slots
    run(worker, (Message(tp, o, frames[o]) for o in range(half, len(frames))))  # no jump in offsets
    assert worker.slots[tp] is not old
    assert worker.slots[tp].engine.flushed_offset >= newer  # started from the other member's checkpoint


def test_a_worker_the_group_dropped_writes_nothing_more(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """Once aiokafka learns the member is gone (generation -1), its partitions may be another's:
    neither the flush when the rebalance starts nor a timed flush writes state."""
    worker, tp = _worker(settings, env, len(frames))
    run(worker, (Message(tp, o, frames[o]) for o in range(len(frames) // 2)))
    coordinator = type("Coordinator", (), {"generation": -1})()
    aiokafka_consumer = type("AIOKafkaConsumer", (), {"_coordinator": coordinator})()
    worker.topo.app.consumer._thread = type("Thread", (), {"_consumer": aiokafka_consumer})()  # type: ignore[attr-defined]
    slot = worker.slots[tp]
    slot.flushed_at = 0.0
    asyncio.run(worker._flush_idle())
    assert changelog_writes(worker) == [] and worker.counts["writes_withheld"] == 1
    asyncio.run(worker._on_revoked(None, {tp}))
    assert changelog_writes(worker) == [] and slot.frozen

    coordinator.generation = 2  # back in the group: writes again
    worker.topo.app.consumer_generation_id = 2  # type: ignore[attr-defined]
    asyncio.run(worker._on_assigned(None, {tp}))
    assert worker.slots[tp] is slot and not slot.frozen
    asyncio.run(worker._flush(tp, slot))
    assert changelog_writes(worker)[-1]["key"] == slot.engine.checkpoint_key


def test_after_the_process_stood_still_for_a_session_timeout_no_state_is_written_until_heartbeats_could_tell(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """A pause of the whole process (a frozen VM) may have cost the worker its membership
    before any heartbeat could say so: it writes nothing for two heartbeat intervals."""
    worker, tp = _worker(settings, env, len(frames))
    run(worker, (Message(tp, o, frames[o]) for o in range(len(frames) // 2)))
    slot = worker.slots[tp]
    kafka = worker.topo.stream.kafka
    worker._alive_at = time.monotonic() - kafka.session_timeout_s  # the event loop last ran that long ago
    asyncio.run(worker._flush(tp, slot))
    assert changelog_writes(worker) == [] and worker.counts["writes_withheld"] == 1
    asyncio.run(worker._on_revoked(None, {tp}))
    assert changelog_writes(worker) == [] and slot.frozen
    assert kafka.heartbeat_interval_s < worker._hold_until - worker._alive_at <= 2 * kafka.heartbeat_interval_s

    # The rebalance that follows shows the worker a member (here it keeps its partition).
    worker.topo.app.consumer_generation_id += 1  # type: ignore[attr-defined]
    asyncio.run(worker._on_assigned(None, {tp}))
    asyncio.run(worker._flush(tp, slot))
    assert changelog_writes(worker)[-1]["key"] == slot.engine.checkpoint_key

    # A loop that ran a moment ago, however busy, writes at once.
    assert worker._alive_at is not None
    worker._alive_at -= kafka.session_timeout_s / 2
    run(worker, (Message(tp, o, frames[o]) for o in range(len(frames) // 2, len(frames))))
    written = len(changelog_writes(worker))
    asyncio.run(worker._flush(tp, slot))
    assert len(changelog_writes(worker)) > written


def test_a_checkpoint_opens_a_record_batch_of_its_own(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """The track values of a flush reach the broker before its checkpoint is sent: a recovery that
    stops after the first record of the last batch (Tansu's end offsets) still reads the checkpoint."""
    worker, tp = _worker(settings, env, len(frames))
    half = len(frames) // 2
    run(worker, (Message(tp, o, frames[o]) for o in range(half)))
    asyncio.run(worker._flush(tp, worker.slots[tp]))
    run(worker, (Message(tp, o, frames[o]) for o in range(half, len(frames))))
    asyncio.run(worker._flush(tp, worker.slots[tp]))
    producer = worker.topo.app.producer  # type: ignore[attr-defined]
    checkpoints = [i for i, m in enumerate(producer.sent) if m.get("key") == worker.slots[tp].engine.checkpoint_key]
    assert len(checkpoints) >= 2
    for i in checkpoints:
        assert producer.sent[i - 1].get("topic") == producer.sent[i]["topic"]  # values of the same flush before it
        assert i in producer.flushes, "the checkpoint was sent in the same batch as the values before it"


def _finals(worker: Worker) -> dict[str, tuple[int, bytes]]:
    best: dict[str, tuple[int, bytes]] = {}
    for sent in worker.topo.alerts.sent:  # type: ignore[attr-defined]
        alert = decode_alert(sent["value"])
        if alert.id not in best or alert.revision > best[alert.id][0]:
            best[alert.id] = (alert.revision, sent["value"])
    return best


def test_a_jump_in_offsets_restarts_the_partition_from_the_table(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """Messages the consumer jumped over are read again from the table's checkpoint on, not lost."""
    clean, tp = _worker(settings, env, len(frames))
    run(clean, (Message(tp, o, frames[o]) for o in range(len(frames))))

    worker, _ = _worker(settings, env, len(frames))
    half = len(frames) // 2
    run(worker, (Message(tp, o, frames[o]) for o in range(half)))
    first = worker.slots[tp]
    asyncio.run(worker._flush(tp, first))
    run(worker, (Message(tp, o, frames[o]) for o in range(half, half + 2)))  # taken, not yet written
    read: list[tuple[int, int]] = []

    async def backfill(tp_: Any, slot: Any, start: int, stop: int, timeout_s: float = 60.0) -> None:
        read.append((start, stop))  # the log itself stands in for a plain consumer here
        for o in range(start, stop):
            await worker._push(Message(tp_, o, frames[o]), slot, None)

    worker._backfill = backfill  # type: ignore[method-assign]
    run(worker, (Message(tp, o, frames[o]) for o in range(half + 4, len(frames))))  # half+2, half+3 skipped
    assert worker.slots[tp] is not first and worker.counts["offset_gaps"] == 1
    assert len(read) == 1 and read[0][0] <= half and read[0][1] == half + 4
    assert _finals(worker) == _finals(clean)


def test_a_checkpoint_waits_until_the_alerts_it_covers_reached_the_broker(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """A refused alert send is sent again; the state that covers it is written only after."""
    worker, tp = _worker(settings, env, len(frames))
    alerts = worker.topo.alerts
    worker.flush_records = 10**9  # flushes only when the test asks
    worker.flush_interval_s = 10**9
    alerts.refuse = 1  # type: ignore[attr-defined]
    run(worker, (Message(tp, o, frames[o]) for o in range(len(frames))))
    slot = worker.slots[tp]
    sent = len(alerts.sent)  # type: ignore[attr-defined]
    assert sent > 0, "the slice gives alerts"

    asyncio.run(worker._flush(tp, slot))
    assert changelog_writes(worker) == [] and worker.counts["resent"] == 1  # nothing written: one alert went again
    assert alerts.sent[-1] == alerts.sent[0]  # type: ignore[attr-defined]
    asyncio.run(worker._flush(tp, slot))
    assert changelog_writes(worker) and changelog_writes(worker)[-1]["key"] == slot.engine.checkpoint_key
    assert len(alerts.sent) == sent + 1  # type: ignore[attr-defined]


def test_messages_fetched_but_never_delivered_are_read_again(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """faust drops fetched messages that reach a stream between generations; when nothing
    follows them (an input's last messages), the worker seeks back to what its engine needs."""
    clean, tp = _worker(settings, env, len(frames))
    run(clean, (Message(tp, o, frames[o]) for o in range(len(frames))))

    worker, _ = _worker(settings, env, len(frames))
    consumer = worker.topo.app.consumer
    silent = TP(tp.topic, tp.partition + 1)  # holds one message that never came: no engine, no checkpoint
    consumer.highwaters[silent] = 1  # type: ignore[attr-defined]
    worker.stalls.after_s = 0.05
    asyncio.run(worker._on_assigned(None, set(consumer.assignment())))
    half = len(frames) // 2
    run(worker, (Message(tp, o, frames[o]) for o in range(half)))  # the rest was fetched, then dropped
    asyncio.run(worker._read_stalled_again())
    assert consumer.seeks == []  # not yet quiet for long enough  # type: ignore[attr-defined]

    time.sleep(0.06)
    run(worker, [Message(tp, half - 1, frames[half - 1])])  # a message of the topic: its agent is busy
    asyncio.run(worker._read_stalled_again())
    assert consumer.seeks == []  # type: ignore[attr-defined]

    time.sleep(0.06)
    asyncio.run(worker._read_stalled_again())
    assert sorted(consumer.seeks) == [(tp, half), (silent, 0)]  # type: ignore[attr-defined]
    assert worker.counts["stall_rereads"] == 2
    run(worker, (Message(tp, o, frames[o]) for o in range(half, len(frames))))
    assert _finals(worker) == _finals(clean)
    time.sleep(0.06)
    asyncio.run(worker._read_stalled_again())  # caught up (the silent one was just sought: not yet due)
    assert [s for s in consumer.seeks if s[0] == tp] == [(tp, half)]  # type: ignore[attr-defined]


def cells_sent(worker: Worker, cells: Sink) -> list[dict[str, Any]]:
    """What the worker sent to the cells topic (through the app's producer)."""
    return [m for m in worker.topo.app.producer.sent if m.get("topic") == cells.name]  # type: ignore[attr-defined]


def _with_cells_stage(worker: Worker, settings: Settings, env: Environment) -> Sink:
    """Give the stand-in worker the pairwise detectors' cells stage; returns its cells topic."""
    from detectors.cell_engine import engine_timing
    from detectors.cells import Grid
    from detectors.registry import build_pair_detectors
    from streams.app import Pairwise

    pair, area = build_pair_detectors(settings.detectors, env, str(settings.path))
    worker.topo.pairwise = Pairwise(pair, area, engine_timing(pair), Grid())
    worker.topo.cells = cells = Sink("cells")
    worker.topo.cell_table = type("Table", (), {"data": {}, "changelog_topic": Sink("cells-changelog")})()
    return cells


def test_a_cells_partition_whose_last_messages_were_dropped_is_read_again(settings: Settings, env: Environment) -> None:
    worker, _ = _worker(settings, env, 0)
    _with_cells_stage(worker, settings, env)
    worker.cell_agent = agent = CellAgent(worker)
    consumer = worker.topo.app.consumer
    ctp = TP(worker.topo.stream.topics.cells, 2)
    consumer.highwaters = {ctp: 3}  # type: ignore[attr-defined]
    worker.stalls.after_s = 0.05
    asyncio.run(worker._on_assigned(None, {ctp}))
    progress = orjson.dumps({"src": "positions.vessel/0", "wm": 1591299039.0, "done": False})
    asyncio.run(agent.on_message(Event(Message(ctp, 0, progress))))  # 1 and 2 were fetched, then dropped
    time.sleep(0.06)
    asyncio.run(worker._read_stalled_again())
    assert consumer.seeks == [(ctp, 1)]  # type: ignore[attr-defined]
    assert agent.slots[ctp].engine.marks["positions.vessel/0"] == 1591299039.0


def _router(
    settings: Settings, env: Environment, frames: list[bytes], least: int
) -> tuple[list[bytes], Worker, Any, Sink, Any]:
    """The alert messages the slice gives (at least ``least``), a fresh worker to route them,
    its alerts partition, the sink of every agency topic, and a stream of chosen offsets."""
    source, tp = _worker(settings, env, len(frames))
    run(source, (Message(tp, o, frames[o]) for o in range(len(frames))))
    values = [sent["value"] for sent in source.topo.alerts.sent]  # type: ignore[attr-defined]
    assert len(values) >= least, "the slice gives a few alert revisions"
    worker = make_worker(settings, env, Metrics())
    atp = TP(worker.topo.stream.topics.alerts, 0)
    worker.topo.app.consumer._committed_offset[atp] = None  # type: ignore[attr-defined]  # sought: none committed
    routed = Sink("alerts.any")
    worker.topo.agencies = dict.fromkeys(worker.topo.stream.agencies, routed)

    class Stream:
        def __init__(self, offsets: list[int]) -> None:
            self.offsets = offsets

        async def events(self) -> Any:
            for o in self.offsets:
                yield Event(Message(atp, o, values[o]))

    return values, worker, atp, routed, Stream


def test_the_router_reads_again_alerts_faust_dropped(settings: Settings, env: Environment, frames: list[bytes]) -> None:
    """An alert message missing between two delivered ones is read again, not skipped: every
    revision reaches the agency topics once, in order."""
    values, worker, atp, routed, Stream = _router(settings, env, frames, 4)
    asyncio.run(worker._router(Stream([0, 1, 3])))  # 2 was fetched and dropped
    assert worker.topo.app.consumer.seeks == [(atp, 2)]  # type: ignore[attr-defined]
    asyncio.run(worker._router(Stream([2, 3, 1])))  # the seek reads 2 again; 1 came twice
    copies = [v for v in values[:4] for _ in decode_alert(v).agencies or ("default",)]  # one per agency
    assert [m["value"] for m in routed.sent] == copies
    assert worker.counts["offset_gaps"] == 1


def test_after_an_assignment_the_router_resumes_where_the_group_committed(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """A new owner of an alerts partition takes the group's committed offset as where routing
    stands: what the previous owner routed is not routed again, and alerts faust dropped
    before the first delivery are read again rather than skipped."""
    values, worker, atp, routed, Stream = _router(settings, env, frames, 6)
    consumer = worker.topo.app.consumer
    consumer._committed_offset[atp] = 2  # type: ignore[attr-defined]  # the previous owner routed 0 and 1
    asyncio.run(worker._on_assigned(None, {atp}))
    asyncio.run(worker._router(Stream([1, 4])))  # 1: fetched before the seek; 2 and 3 dropped
    assert consumer.seeks == [(atp, 2)]  # type: ignore[attr-defined]
    assert routed.sent == []
    asyncio.run(worker._router(Stream([2, 3, 4, 5])))
    copies = [v for o in (2, 3, 4, 5) for v in [values[o]] * len(decode_alert(values[o]).agencies or ("x",))]
    assert [m["value"] for m in routed.sent] == copies


def test_a_first_message_before_faust_recorded_the_committed_offset_asks_the_broker(
    settings: Settings, env: Environment, frames: list[bytes], monkeypatch: Any
) -> None:
    """faust resumes the partitions before its seek that ends the rebalance records the
    committed offsets: a message delivered meanwhile asks the broker for the group's offset,
    so messages dropped before it are read again; no answer routes it as before."""
    import streams.agents

    values, worker, atp, routed, Stream = _router(settings, env, frames, 6)
    asked: list[tuple[str, str, int]] = []

    def committed(brokers: str, group: str, topic: str, partition: int) -> int | None:
        asked.append((group, topic, partition))
        return 2

    monkeypatch.setattr(streams.agents, "committed_offset", committed)
    del worker.topo.app.consumer._committed_offset[atp]  # type: ignore[attr-defined]  # not sought yet
    asyncio.run(worker._on_assigned(None, {atp}))
    asyncio.run(worker._router(Stream([4])))  # 2 and 3 dropped; faust has no offset recorded yet
    assert asked == [(worker.topo.stream.kafka.app_id, atp.topic, atp.partition)]
    assert worker.topo.app.consumer.seeks == [(atp, 2)] and routed.sent == []  # type: ignore[attr-defined]

    def unanswered(brokers: str, group: str, topic: str, partition: int) -> int | None:
        raise TimeoutError("no broker")

    _, other, btp, other_routed, OtherStream = _router(settings, env, frames, 6)
    del other.topo.app.consumer._committed_offset[btp]  # type: ignore[attr-defined]
    monkeypatch.setattr(streams.agents, "committed_offset", unanswered)
    asyncio.run(other._router(OtherStream([4, 5])))
    assert [m["value"] for m in other_routed.sent][-1] == values[5]  # taken as it came
    assert other.topo.app.consumer.seeks == []  # type: ignore[attr-defined]


def test_an_alert_releasable_to_no_agency_stays_on_the_internal_topic(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """Release labels with no agency in common leave an alert with no agencies: the router
    sends it nowhere, never to the default agency (docs/security.md)."""
    import dataclasses

    from streams.wire import alert_value

    values, worker, _, routed, Stream = _router(settings, env, frames, 2)
    restricted = alert_value(dataclasses.replace(decode_alert(values[0]), agencies=()))
    values[0] = restricted
    asyncio.run(worker._router(Stream([0, 1])))
    assert [m["value"] for m in routed.sent] == [values[1]] * len(decode_alert(values[1]).agencies)
    assert worker.counts["unreleased"] == 1


def test_an_alerts_partition_with_nothing_delivered_since_the_assignment_is_read_again(
    settings: Settings, env: Environment
) -> None:
    """Every alert message after the assignment's seek was dropped: no delivery ever shows the
    gap, so the stall watch reads from the group's committed offset."""
    worker, _ = _worker(settings, env, 0)
    consumer = worker.topo.app.consumer
    atp, unknown = TP(worker.topo.stream.topics.alerts, 0), TP(worker.topo.stream.topics.alerts, 1)
    consumer.highwaters = {atp: 5, unknown: 5}  # type: ignore[attr-defined]
    consumer._committed_offset[atp] = 3  # type: ignore[attr-defined]  # none for the other: no offset to go by
    worker.stalls.after_s = 0.05
    asyncio.run(worker._on_assigned(None, {atp, unknown}))
    time.sleep(0.06)
    asyncio.run(worker._read_stalled_again())
    assert consumer.seeks == [(atp, 3)]  # type: ignore[attr-defined]
    assert worker.counts["stall_rereads"] == 1


def test_a_checkpoint_waits_until_the_watermark_it_stands_for_reached_the_cells_topic(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """A position partition's watermark for the cells stage goes out before the checkpoint at
    that watermark, and a refused one is sent again first: a restored partition with nothing
    new to read never owes the cells stage its watermark."""
    worker, tp = _worker(settings, env, len(frames))
    cells = _with_cells_stage(worker, settings, env)
    worker.flush_records = 10**9  # flushes only when the test asks
    worker.flush_interval_s = 10**9
    run(worker, (Message(tp, o, frames[o]) for o in range(len(frames) - 1)))
    slot = worker.slots[tp]
    producer = worker.topo.app.producer  # the cells stage's messages go straight to the Kafka client
    notes = len(cells_sent(worker, cells))

    producer.refuse = 1  # type: ignore[attr-defined]  # the first progress message of the flush is refused
    asyncio.run(worker._flush(tp, slot))
    progress = [orjson.loads(m["value"]) for m in cells_sent(worker, cells)[notes:]]
    assert all("wm" in m for m in progress)
    assert len(progress) == worker.topo.stream.topics.partitions + 1  # one per cells partition, one again
    assert progress[-1] == progress[0]  # the refused one, sent again ...
    assert changelog_writes(worker) == [] and worker.counts["resent"] == 1  # ... and no state written yet
    asyncio.run(worker._flush(tp, slot))
    written = changelog_writes(worker)
    assert written and written[-1]["key"] == slot.engine.checkpoint_key
    checkpoint = orjson.loads(written[-1]["value"])
    assert {orjson.dumps(m["wm"]) for m in progress} == {orjson.dumps(checkpoint["r"])}  # what it stands for


def test_alerts_the_consumer_jumps_over_twice_are_read_with_a_plain_consumer(
    settings: Settings, env: Environment, frames: list[bytes]
) -> None:
    """A seek back that does not bring the missing alert messages must not stop the router:
    the second jump over them reads them with a plain consumer and routes them first."""
    from streams.backfill import BackfillError

    values, worker, atp, routed, Stream = _router(settings, env, frames, 8)
    served = {2}  # what the broker serves a plain consumer of the offsets 2-3 (3 is not there)
    read: list[tuple[int, int]] = []

    async def read_range(tp_: Any, start: int, stop: int) -> Any:
        read.append((start, stop))
        for o in range(start, stop):
            if o in served:
                yield type("Record", (), {"offset": o, "key": None, "value": values[o], "headers": ()})()

    worker._read_range = read_range  # type: ignore[method-assign,assignment]

    asyncio.run(worker._router(Stream([0, 1, 4])))  # 2 and 3 fetched and dropped: a seek back
    asyncio.run(worker._router(Stream([4, 5])))  # the seek brought 4 again: read 2-3 aside
    assert worker.topo.app.consumer.seeks == [(atp, 2)]  # type: ignore[attr-defined]
    assert read == [(2, 4)]
    copies = [v for o in (0, 1, 2, 4, 5) for v in [values[o]] * len(decode_alert(values[o]).agencies or ("x",))]
    assert [m["value"] for m in routed.sent] == copies
    assert worker.counts["offset_gaps"] == 1 and worker.counts["offset_gaps_read"] == 1

    async def unreadable(tp_: Any, start: int, stop: int) -> Any:
        raise BackfillError("not served")
        yield  # an async generator

    worker._read_range = unreadable  # type: ignore[method-assign,assignment]
    before = len(routed.sent)
    asyncio.run(worker._router(Stream([5, 7])))  # 6 jumped over: a seek back
    asyncio.run(worker._router(Stream([7])))  # again, and it cannot be read: the router goes on
    assert len(routed.sent) > before and routed.sent[-1]["value"] == values[7]
    assert worker.counts["offset_gaps_unread"] == 1
