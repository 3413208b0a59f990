"""The worker's agents: thin shells around :class:`streams.partition_engine.PartitionEngine`.

Each agent decodes, hands the message to the engine of its partition, publishes what comes
out (alerts, dead letters), writes state and acknowledges; every event is handled inside
its own ``try`` so nothing escapes the ``async for`` (faust would ack and restart the agent,
silently skipping data). See :mod:`streams.partition_engine` for the delivery guarantees.

Two things the shell adds around the engine:

* a message of a partition this worker no longer owns (it slipped through a rebalance) is
  left alone: processing it would write over the new owner's state;
* a restored engine whose checkpoint lies before the group's committed offset (faust's
  recovery read the changelog short, see below) gets the messages in between read first
  with a plain consumer, so none is ever skipped.

**End offsets.** faust's recovery reads a changelog partition up to its end offset as the
broker's ListOffsets gives it. Tansu answers with the first offset of the partition's last
record batch plus one, so a recovery stops after that batch's first record. A flush's
writes therefore end with the checkpoint opening a batch of its own (the values are
flushed to the broker first): whatever the recovery misses then lies after the last
checkpoint it read. Without this, a worker restored from the checkpoint before could take
a track value the missed checkpoint relied on for garbage and overwrite it; the next
restore then found that track only as of an older flush (fixes lost, an alert changed).
On a broker with exact end offsets the extra flush costs one round trip per flush.

State writes go out with ``Topic.send`` (straight to the Kafka client), not
``Table.send_changelog``: the latter queues in faust's own buffer, which the flush before a
commit may leave behind, letting the committed offset outrun the checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from detectors.cell_slotting import EntityStage
from models.errors import DecodeError
from streams import rebalance
from streams.admin import committed_offset
from streams.app import Topology
from streams.backfill import BackfillError, read_range
from streams.cell_agent import CellAgent, send_cells
from streams.cell_partition import CellRouter, source_id
from streams.partition_engine import PartitionEngine, Refused
from streams.stalls import StallWatch
from streams.wire import (
    alert_value,
    cloudevents_headers,
    dead_letter_headers,
    decode_alert,
    decode_frame,
    input_end,
    is_end_of_input,
)

log = logging.getLogger("vigiamar.worker")
WRITER_HEADER = "vigiamar-writer"
WRITER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Slot:
    """A partition's engine, the lock that orders its flushes, and when it last flushed."""

    engine: PartitionEngine
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    flushed_at: float = field(default_factory=time.monotonic)
    frozen: bool = False  # revoked in a rebalance not yet over: write nothing (see Worker._on_revoked)
    generation: int = 0  # the consumer group generation it was last assigned in (see rebalance.thaw)
    sent: list[tuple[Any, Any, dict[str, Any]]] = field(default_factory=list)  # (future, topic, send kwargs)


@dataclass
class _Message:
    """An aiokafka record read by a backfill, shaped like a faust message for :meth:`Worker._push`."""

    tp: Any
    record: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.record, name)

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return list(self.record.headers or ())


class Worker:
    """State and handlers shared by the agents of one worker process."""

    def __init__(self, topo: Topology, metrics: Any = None) -> None:
        self.topo = topo
        self.metrics = metrics
        if metrics is not None:
            metrics.watch_reference(topo.env.geography)  # are its memos big enough for the area?
        self.slots: dict[Any, Slot] = {}  # TP -> Slot
        self.streams: dict[str, Any] = {}  # topic -> the agent's (manual-ack) stream
        self.counts: Counter[str] = Counter()  # vigiamar_worker_events_total{event}
        if metrics is not None:
            metrics.watch_events(self.counts)
        self.offsets: dict[Any, int] = {}  # TP -> offset of the last message processed (consumer lag)
        # Cell state of a per-cell stage, when the worker runs one: its cells count as active
        # (``Metrics.set_active``). Anything :func:`streams.metrics.count_cells` reads (``len()``
        # or a ``cells`` mapping), e.g. a ``CellPartitionEngine``'s ``stage``; drop it on revoke.
        self.cell_engines: list[Any] = []
        self.cell_agent: CellAgent | None = None
        kafka = topo.stream.kafka
        self.flush_interval_s = kafka.flush_interval_s
        self.flush_records = kafka.flush_records
        self.stalls = StallWatch(kafka.stall_reread_s)  # fetched messages faust never delivered
        self.routed: dict[Any, int] = {}  # alerts TP -> the last alert routed (first: the group's, see _last_routed)
        self.gap_seeks: dict[Any, int] = {}  # alerts TP -> the last routed offset when it sought back past a gap
        self.generation = rebalance.NO_GENERATION  # of the last assignment
        # A pause of the whole process (a VM frozen, SIGSTOP, swapping) as long as the group's
        # session timeout may have cost this worker its membership without its knowing yet:
        # no state is written until the heartbeats had time to tell (see _may_write).
        self._pause_s = max(kafka.session_timeout_s - kafka.heartbeat_interval_s, 1.0)
        self._confirm_s = 2.0 * kafka.heartbeat_interval_s
        self._alive_at: float | None = None  # the event loop last ran here (None: not yet, starting)
        self._hold_until = 0.0

    # --- wiring -------------------------------------------------------------------------------
    def install(self) -> None:
        app = self.topo.app
        for name, topic in self.topo.positions.items():
            app.agent(topic, name=f"positions-{name}")(self._positions_agent(name))
        if self.topo.pairwise is not None:  # the per-cell stage of the pairwise detectors
            self.cell_agent = CellAgent(self)
            app.agent(self.topo.cells, name="cells")(self.cell_agent.agent)
        app.agent(self.topo.alerts, name="router")(self._router)
        app.timer(max(self.flush_interval_s, 1.0))(self._flush_idle)
        app.timer(1.0)(self._tick)
        app.on_partitions_revoked.connect(cast(Any, self._on_revoked))
        app.on_partitions_assigned.connect(cast(Any, self._on_assigned))

    async def _on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """A rebalance starts: write what each partition holds now, then write nothing more.

        The partitions may go to another worker, which restores them from the tables once the
        rebalance is over; a write of ours landing after that restore would mix two owners'
        state (a checkpoint of one with track values of the other). faust has finished the
        events in hand when it calls this. The assignment that ends the rebalance thaws the
        partitions this worker keeps and drops the others (:meth:`_on_assigned`).
        """
        revoked = args[0] if args else kwargs.get("revoked", set())
        write = self._may_write()
        await rebalance.freeze(self.slots, revoked, self._flush_busy, write)
        if self.cell_agent is not None:
            await self.cell_agent.freeze(revoked, write)
        await self.topo.app.producer.flush()

    async def _on_assigned(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Keep engines only for partitions still ours that no other worker held meanwhile."""
        assigned = args[0] if args else kwargs.get("assigned", set())
        generation = self.topo.app.consumer_generation_id  # faust sets it before this signal
        self._alive_at, self._hold_until = time.monotonic(), 0.0  # a member as of this assignment
        self.stalls.assigned(assigned, time.monotonic())
        if generation != self.generation + 1:  # another member may have routed them meanwhile
            self.routed, self.gap_seeks = {}, {}
        self.generation = generation
        self.routed = {tp: o for tp, o in self.routed.items() if tp in assigned}
        self.gap_seeks = {tp: o for tp, o in self.gap_seeks.items() if tp in assigned}
        for tp, _ in rebalance.thaw(self.slots, assigned, generation):
            if self.metrics is not None:
                self.metrics.forget_partition(tp.topic, tp.partition)
        if self.cell_agent is not None:
            self.cell_agent.revoke(assigned, generation)
        for tp in list(self.offsets):
            if tp not in assigned:
                del self.offsets[tp]
                if self.metrics is not None:
                    self.metrics.forget_partition(tp.topic, tp.partition)

    # --- positions ------------------------------------------------------------------------------
    def _positions_agent(self, topic_name: str) -> Any:
        async def positions(stream: Any) -> None:
            manual = stream.noack()
            self.streams[topic_name] = manual
            async for event in manual.events():
                try:
                    await self.on_frame(event, manual)
                except Exception as exc:  # a bug must not stop the partition: dead-letter, go on
                    await self._failed(event, exc)

        positions.__name__ = f"positions_{topic_name.replace('.', '_')}"
        return positions

    async def _failed(self, event: Any, exc: Exception) -> None:
        msg = event.message
        log.error("message %s:%s failed", msg.tp, msg.offset, exc_info=exc)
        slot = self.slots.get(msg.tp)
        if slot is not None:
            slot.engine.give_up(msg.offset, event)
        try:
            await self._dead_letter(msg, "internal_error", repr(exc))
        except Exception:
            log.exception("could not dead-letter %s:%s", msg.tp, msg.offset)

    def _slot(self, tp: Any) -> Slot:
        slot = self.slots.get(tp)
        if slot is None:
            topo = self.topo
            pw = topo.pairwise
            partitions = topo.stream.topics.partitions
            engine = PartitionEngine(
                topo.settings,
                tp.partition,
                partitions,
                topo.entity_types[tp.topic],
                topo.detectors,
                topo.env,
                slotting=None if pw is None else EntityStage(pw.pair, pw.area, pw.timing, pw.grid),
                cells=None if pw is None else CellRouter(source_id(tp.topic, tp.partition), partitions),
            )
            if self.metrics is not None:
                self._time_steps(engine)
            table = topo.tables[tp.topic]
            engine.restore(list(table.data.items()))
            log.info(
                "partition %s: %d tracks restored, checkpoint at offset %d (resume at %s)",
                tp,
                len(engine.pipeline.engine),
                engine.flushed_offset,
                engine.resume_offset,
            )
            slot = self.slots[tp] = Slot(engine, generation=self.topo.app.consumer_generation_id)
        return slot

    def writer_headers(self) -> list[tuple[str, bytes]]:
        """Which process wrote a state value, and in which generation: to trace a mixed state."""
        return [(WRITER_HEADER, f"{WRITER} g{self.topo.app.consumer_generation_id}".encode())]

    async def _tick(self) -> None:
        self._awake()

    def _awake(self) -> float:
        """Now; notes a stand-still of the event loop since it last ran here (see _may_write)."""
        now = time.monotonic()
        if self._alive_at is not None and now - self._alive_at > self._pause_s:
            log.warning(
                "the event loop stood still for %.0f s: no state written for %.0f s, until the group's"
                " heartbeats say whether this worker is still a member", now - self._alive_at, self._confirm_s,
            )  # fmt: skip
            self._hold_until = now + self._confirm_s
        self._alive_at = now
        return now

    def _may_write(self) -> bool:
        """Whether this worker may write state now (else counted as ``writes_withheld``).

        Not when the group coordinator no longer knows this member (aiokafka resets its
        generation to -1): its partitions may be another's already. Nor, for two heartbeat
        intervals, after the event loop stood still for nearly a session timeout: the whole
        process may have been paused long enough for the group to drop it, and only the next
        heartbeats tell (a loop merely busy that long costs a few seconds of delay, no more).
        """
        now = self._awake()
        if now < self._hold_until or rebalance.member_generation(self.topo.app) == rebalance.NO_GENERATION:
            self.counts["writes_withheld"] += 1
            return False
        return True

    def _stale(self, msg: Any) -> bool:
        """A message of a partition this worker no longer owns (it slipped through a rebalance).

        Processing it would start an engine from this worker's possibly old copy of the
        table and write over the new owner's state; the new owner reads it anyway.
        """
        app = self.topo.app
        generation = getattr(msg, "generation_id", None)
        if generation is not None and generation != app.consumer_generation_id:
            return True
        return msg.tp not in self.slots and msg.tp not in app.consumer.assignment()

    async def on_frame(self, event: Any, stream: Any) -> None:
        msg = event.message
        self.stalls.heard_from(msg.tp, time.monotonic())
        if self._stale(msg):
            self.counts["stale"] += 1
            log.info("skipped %s:%s from before a rebalance", msg.tp, msg.offset)
            return
        slot = self._slot(msg.tp)
        if slot.frozen:  # fetched before the rebalance; read again from the committed offset after it
            self.counts["stale"] += 1
            return
        if slot.engine.skipped(msg.offset):
            log.warning(
                "partition %s: offset %d after %d, messages between never read: restoring from the table",
                msg.tp, msg.offset, slot.engine.last_offset,
            )  # fmt: skip
            self.counts["offset_gaps"] += 1
            del self.slots[msg.tp]
            slot = self._slot(msg.tp)
        async with slot.lock:
            missing_from = slot.engine.missing_before(msg.offset)
            if missing_from is not None:
                try:
                    await self._backfill(msg.tp, slot, missing_from, msg.offset)
                except BackfillError as exc:
                    # Start over with the next message: restore again, read the gap (this one included).
                    log.error("%s; will retry with the next message", exc)
                    del self.slots[msg.tp]
                    return
            end = await self._push(msg, slot, event)
            if end or slot.engine.flush_due(self.flush_records) or self._interval_passed(slot):
                await self._flush(msg.tp, slot)
        self._processed(msg.tp, msg.offset)

    async def _push(self, msg: Any, slot: Slot, handle: Any) -> bool:
        """One message into its engine; publish alerts and dead letters. True at end of input."""
        engine = slot.engine
        try:
            elements = decode_frame(msg.value)
            end = is_end_of_input(msg.headers)
        except DecodeError as exc:
            elements, end = [], False
            if not engine.seen(msg.offset):
                await self._dead_letter(msg, exc.reason, exc.detail)
        out = engine.push_frame(msg.offset, elements, handle, end, input_end(msg.headers) if end else None)
        single = msg.value is not None and msg.value.lstrip()[:1] == b"{"
        for refused in out.refused:
            if single and refused.offset == msg.offset and refused.index == 0:
                refused.raw, refused.index = msg.value, None  # one record per message: its own bytes
            await self._refused(msg.topic, msg.partition, msg.key, refused, slot)
        for alert in out.alerts:
            await self._send(slot, self.topo.alerts, key=alert.id.encode(), value=alert_value(alert),
                             headers=cloudevents_headers(alert))  # fmt: skip
        if self.metrics is not None:
            self._count(msg.topic, engine, out)
        return end

    async def _backfill(self, tp: Any, slot: Slot, start: int, stop: int, timeout_s: float = 60.0) -> None:
        """Read messages ``start`` … ``stop - 1`` of a partition that the group's offset skipped.

        A restored engine's checkpoint says where reading must start; the committed offset is
        later only if the table came back short or a commit outran it. Those messages are
        read with a plain consumer (no group, nothing committed) and pushed before going on.
        Raises :class:`BackfillError` when they cannot be read in ``timeout_s``.
        """
        log.warning("partition %s: reading offsets %d-%d first (state checkpoint is older)", tp, start, stop - 1)
        async for message in self._read_range(tp, start, stop, timeout_s):
            await self._push(_Message(tp, message), slot, None)

    def _count(self, topic: str, engine: PartitionEngine, out: Any) -> None:
        m = self.metrics
        if out.records:
            m.positions_in("kafka", self.topo.entity_types[topic][0], out.records)
        now = time.time()
        for alert in out.alerts:
            m.alert(alert)
            m.observe_latency(now - alert.end_ts)
        m.set_watermark(engine.pipeline.watermark)

    def _time_steps(self, engine: PartitionEngine) -> None:
        """Time the engine's detector steps (one record each, no Kafka I/O): ``stage="track"``."""
        from streams.metrics import metrics_config, step_timer

        every = metrics_config(self.topo.settings).step_sample_every
        engine.push_record = step_timer(self.metrics, engine.push_record, every, "track")

    def _processed(self, tp: Any, offset: int) -> None:
        """A message is done: the partition's consumer lag counts from the next one."""
        if self.metrics is not None:
            self.offsets[tp] = offset
            self._report_lag(tp, offset)

    def _report_lag(self, tp: Any, offset: int) -> None:
        """Lag = highwater (the offset the next message written will get) - (``offset`` + 1).

        The highwater is the consumer's, from its latest fetch response: no broker round trip.
        """
        try:
            highwater = self.topo.app.consumer.highwater(tp)
        except Exception:  # no longer assigned, or no consumer yet: nothing to report
            return
        if highwater is not None:
            self.metrics.set_consumer_lag(tp.topic, tp.partition, highwater - offset - 1)

    def _active(self) -> tuple[int, int]:
        """Tracks held by every partition's engine, and cells held by the cell stage's engines."""
        from streams.metrics import count_cells

        tracks = sum(len(s.engine.pipeline.engine) for s in self.slots.values())
        return tracks, sum(count_cells(c) for c in self.cell_engines)

    async def _flush_busy(self, tp: Any, slot: Slot) -> None:
        if not slot.engine.idle():
            await self._flush(tp, slot)

    def _interval_passed(self, slot: Slot) -> bool:
        return time.monotonic() - slot.flushed_at >= self.flush_interval_s

    async def _send(self, slot: Slot, topic: Any, **kw: Any) -> None:
        """Send, keeping the result: the partition's next checkpoint waits until the broker has it."""
        slot.sent.append((await topic.send(**kw), topic, kw))

    async def _delivered(self, tp: Any, slot: Any) -> bool:
        """Whether every alert and dead letter sent for this partition reached the broker.

        ``slot``: anything with a ``sent`` list of (future, topic, send kwargs), a position
        partition's or a cells partition's. Called after the producer's flush. Sends that
        failed (after the client's own retries) go out again, and the checkpoint waits for the
        next flush: a checkpoint must never cover a message whose output was lost.
        """
        if not all(fut.done() for fut, _, _ in slot.sent):
            return False  # still in flight: look again at the next flush
        failed = [(topic, kw) for fut, topic, kw in slot.sent if fut.cancelled() or fut.exception() is not None]
        if not failed:
            slot.sent = []
            return True
        log.warning("partition %s: %d sends not delivered, sending them again before writing state", tp, len(failed))
        self.counts["resent"] += len(failed)
        slot.sent = [(await topic.send(**kw), topic, kw) for topic, kw in failed]
        return False

    async def _flush(self, tp: Any, slot: Slot) -> None:
        """Write the engine's changes (after every alert and dead letter is delivered), then ack."""
        if self.slots.get(tp) is not slot or slot.frozen:
            return  # revoked meanwhile: another worker restores from the last checkpoint
        if not self._may_write():  # the rebalance that follows decides whether it stays ours
            return
        slot.flushed_at = time.monotonic()
        # The stage-1 notes and the watermark go out first, and the checkpoint waits for both.
        await send_cells(self.topo, slot.engine.progress(), slot.sent)
        await self.topo.app.producer.flush()
        if not await self._delivered(tp, slot):
            return
        flush = slot.engine.flush()
        table = self.topo.tables[tp.topic]
        store, producer = table.data, self.topo.app.producer
        changelog = table.changelog_topic.get_topic_name()
        headers = self.writer_headers()

        async def write(key: bytes, value: bytes | None) -> None:
            # Straight to the Kafka client, in order, already serialised: Table.send_changelog
            # queues in faust's own buffer, which a commit's flush may leave behind (the commit
            # would then outrun the checkpoint), and Topic.send costs ~0.1 ms a record.
            await producer.send(changelog, key, value, tp.partition, None, headers)
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value

        *values, checkpoint = flush.writes
        for key, value in values:
            await write(key, value)
        if values:  # the checkpoint opens a record batch of its own (see "End offsets" above)
            await producer.flush()
        await write(*checkpoint)
        stream = self.streams[tp.topic]
        for handle in flush.acks:
            if handle is not None:  # None: a message read by a backfill, below the committed offset
                await stream.ack(handle)
        self.counts["flushes"] += 1
        if self.metrics is not None:
            self.metrics.set_active(*self._active())

    async def _flush_idle(self) -> None:
        """A partition that went quiet still gets its state written and its messages acked."""
        for tp, offset in list(self.offsets.items()):  # lag grows while the agent waits, too
            self._report_lag(tp, offset)
        for tp, slot in list(self.slots.items()):
            if slot.engine.idle() or not self._interval_passed(slot):
                continue
            try:
                async with slot.lock:
                    await self._flush(tp, slot)
            except Exception:
                log.exception("flush of %s failed", tp)
        if self.cell_agent is not None:
            await self.cell_agent.flush_idle()
        try:
            await self._read_stalled_again()
        except Exception:
            log.exception("looking for stalled partitions failed")

    async def _read_stalled_again(self) -> None:
        """Seek back partitions whose fetched messages faust dropped (see :mod:`streams.stalls`)."""
        app = self.topo.app
        flow = getattr(app, "flow_control", None)
        if getattr(app, "rebalancing", False) or (flow is not None and not flow.is_active()):
            return  # the seek that ends a rebalance reads them again
        consumer = app.consumer
        t = self.topo.stream.topics
        inputs = {*self.topo.positions, t.alerts, *([t.cells] if self.cell_agent is not None else [])}
        now = time.monotonic()
        for tp in self.stalls.due([tp for tp in consumer.assignment() if tp.topic in inputs], now):
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # not assigned any more
                continue
            needed = self._next_needed(tp)
            if highwater is None or needed is None or needed >= highwater:
                continue
            log.warning(
                "partition %s: offsets %d-%d were fetched but never delivered for %.0f s: reading them again",
                tp, needed, highwater - 1, now - self.stalls.heard.get(tp, self.stalls.since[tp]),
            )  # fmt: skip
            self.counts["stall_rereads"] += 1
            self.stalls.read_again(tp, now)
            await consumer.seek(tp, needed)

    def _next_needed(self, tp: Any) -> int | None:
        """The first offset of ``tp`` its engine has not taken (restored from the table if none runs);
        for the router, the one after the last alert routed (None: none since the assignment, and
        the group committed none)."""
        if tp.topic == self.topo.stream.topics.alerts:
            last = self._last_routed(tp)
            return None if last is None else last + 1
        if self.cell_agent is not None and tp.topic == self.topo.stream.topics.cells:
            return self.cell_agent.next_offset(tp)
        return self._slot(tp).engine.next_offset

    # --- router ---------------------------------------------------------------------------------
    async def _router(self, stream: Any) -> None:
        """alerts → alerts.<agency>, one copy per receiving agency; value and headers unchanged."""
        async for event in stream.events():
            msg = event.message
            self.stalls.heard_from(msg.tp, time.monotonic())
            if await self._in_order(msg):
                await self._route(msg)

    async def _route(self, msg: Any) -> None:
        """One alert message to each receiving agency's topic (dead-lettered if it is not one).

        The agencies are the alert's own: the detectors' side routed it (jurisdiction zones, else
        the default agency; :mod:`detectors.routing`). An alert releasable to no agency (release
        labels with no agency in common) names none and stays on the internal ``alerts`` topic.
        """
        self._processed(msg.tp, msg.offset)  # routing one is quick: count it done from the start
        try:
            alert = decode_alert(msg.value)
        except DecodeError as exc:
            await self._dead_letter(msg, exc.reason, exc.detail)
            return
        agencies = alert.agencies
        if not agencies:
            self.counts["unreleased"] += 1
            log.info("alert %s r%d is releasable to no agency: not routed", alert.id, alert.revision)
            return
        try:
            for agency in agencies:
                await self.topo.agency_topic(agency).send(key=msg.key, value=msg.value, headers=msg.headers)
            self.counts["routed"] += len(agencies)
        except Exception as exc:
            log.exception("routing %s failed", alert.id)
            await self._dead_letter(msg, "internal_error", repr(exc))

    async def _in_order(self, msg: Any) -> bool:
        """Whether to route this alert message: the next one of its partition.

        One routed before (read again after a rebalance's seek) is skipped. A jump past
        messages never delivered (faust dropped them in a rebalance) seeks back to the first
        of them: the messages after it come again, in order, and no revision goes missing
        from the agency topics. If the group's consumer jumps past them again, they are read
        with a plain consumer and routed first (:meth:`_route_missing`): a seek that never
        brings them must not stop the router.
        """
        tp = msg.tp
        last = self.routed.get(tp)
        if last is None:  # the first message since the assignment
            last = self._last_routed(tp)
            if last is None and tp not in self._committed_offsets():
                last = await self._ask_committed(tp)
            log.info("alerts partition %s: first message since the assignment at offset %d (%s)", tp, msg.offset,
                     "nothing committed" if last is None else f"the group routed up to {last}")  # fmt: skip
            if last is not None:
                self.routed[tp] = last
        if last is not None and msg.offset <= last:
            return False
        if last is not None and msg.offset > last + 1:
            if self.gap_seeks.get(tp) != last:
                log.warning("alerts partition %s: offset %d after %d: reading the ones between again",
                            tp, msg.offset, last)  # fmt: skip
                self.counts["offset_gaps"] += 1
                self.gap_seeks[tp] = last
                await self.topo.app.consumer.seek(tp, last + 1)
                return False
            await self._route_missing(tp, last + 1, msg.offset)
        self.gap_seeks.pop(tp, None)
        self.routed[tp] = msg.offset
        return True

    def _last_routed(self, tp: Any) -> int | None:
        """The offset of the last alert of ``tp`` routed: by this worker since the assignment, else
        the one before the group's committed offset (the previous owner routed up to there; the
        first message delivered stores it in ``routed``).

        Without that baseline, messages faust dropped between the assignment's seek and the
        first delivery would go unnoticed: the first message delivered would be routed as if
        it followed on, and with none delivered the stall watch would not know where to read.
        """
        last = self.routed.get(tp)
        if last is None:
            # faust's record of what it sought to or committed (the next offset to read); it holds
            # None for nothing committed and for 0 alike: take what comes (the partition's start)
            committed = self._committed_offsets().get(tp)
            if isinstance(committed, int) and committed > 0:
                return committed - 1
        return last

    def _committed_offsets(self) -> Any:
        return getattr(self.topo.app.consumer, "_committed_offset", {})

    async def _ask_committed(self, tp: Any, timeout_s: float = 15.0) -> int | None:
        """The group's committed offset less one, asked of the broker: the first message came
        while faust's seek that ends the rebalance still ran (it resumes the partitions first),
        before faust recorded the offsets. Messages faust dropped before that first one are then
        still seen as missing (a chaos run lost 17 alert messages so). None: none committed, or
        no answer (logged; the message is taken as it comes)."""
        group = getattr(getattr(self.topo.app, "conf", None), "id", None) or self.topo.stream.kafka.app_id
        try:
            committed = await asyncio.wait_for(
                asyncio.to_thread(committed_offset, self.topo.brokers, group, tp.topic, tp.partition), timeout_s
            )
        except Exception as exc:  # timeout, or the client's own errors: route as before
            log.warning("alerts partition %s: the group's committed offset not read (%r)", tp, exc)
            return None
        return None if committed is None else committed - 1

    async def _route_missing(self, tp: Any, start: int, stop: int) -> None:
        """Route offsets ``start`` … ``stop - 1`` of an alerts partition, read with a plain
        consumer: the group's consumer jumped past them twice. Offsets the broker does not
        serve (none there) are passed over; if they cannot be read at all, the router goes on
        without them (logged and counted) rather than stop every agency's feed."""
        log.warning("alerts partition %s: offsets %d-%d jumped over again: reading them with a plain consumer",
                    tp, start, stop - 1)  # fmt: skip
        self.counts["offset_gaps_read"] += 1
        try:
            async for record in self._read_range(tp, start, stop):
                self.routed[tp] = record.offset
                await self._route(_Message(tp, record))
        except Exception as exc:  # BackfillError, or the client's own: the agent must not restart and skip
            log.error("alerts partition %s: offsets %d-%d not read (%r); routing goes on without them",
                      tp, start, stop - 1, exc)  # fmt: skip
            self.counts["offset_gaps_unread"] += 1

    def _read_range(self, tp: Any, start: int, stop: int, timeout_s: float = 60.0) -> Any:
        """Offsets ``start`` … ``stop - 1`` of ``tp`` with a plain consumer (:func:`read_range`)."""
        return read_range(self.topo.brokers, tp, start, stop, timeout_s)

    # --- dead letters ---------------------------------------------------------------------------
    async def _refused(self, topic: str, partition: int, key: Any, r: Refused, slot: Slot) -> None:
        headers = dead_letter_headers(r.reason, topic, partition, r.offset, r.detail, r.index)
        await self._send(slot, self.topo.dead_letter, key=key, value=r.raw, headers=headers)
        self._dead_lettered(r.reason)

    async def _dead_letter(self, msg: Any, reason: str, detail: str) -> None:
        """A whole message: its raw bytes, with where it came from and why it was refused."""
        headers = dead_letter_headers(reason, msg.topic, msg.partition, msg.offset, detail)
        await self.topo.dead_letter.send(key=msg.key, value=msg.value, headers=headers)
        self._dead_lettered(reason)

    def _dead_lettered(self, reason: str) -> None:
        self.counts[f"dead_letter:{reason}"] += 1
        if self.metrics is not None:
            self.metrics.dead_lettered(self.topo.stream.topics.dead_letter)
            self.metrics.rejected(reason)
