"""The worker's per-cell stage: one :class:`CellPartitionEngine` per assigned ``cells`` partition.

Same discipline as the position partitions (:mod:`streams.agents`): a message is
acknowledged only after a snapshot covering it was written to the ``cells`` table (after the
producer flush that delivers the alerts and relays it caused), so a committed offset is always
covered by a durable snapshot. A restored partition reads from the snapshot's ``r`` (the
first message whose samples are still pending: snapshots leave those out, see
:mod:`streams.cell_partition`); the group's committed offset is later, so the messages in
between are read first with a plain consumer, and none is skipped. Snapshots are compressed
(``z`` + zlib).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from detectors.routing import Router
from models.alert import Alert
from models.errors import DecodeError
from streams import rebalance
from streams.backfill import BackfillError, read_range
from streams.cell_partition import CellMessage, CellPartitionEngine, merge_messages, source_id
from streams.wire import alert_value, cloudevents_headers

if TYPE_CHECKING:
    from streams.agents import Worker


log = logging.getLogger("vigiamar.worker")


@dataclass
class CellSlot:
    engine: CellPartitionEngine
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    flushed_at: float = field(default_factory=time.monotonic)
    handles: list[Any] = field(default_factory=list)  # messages applied since the last snapshot
    fresh: bool = True  # restored, no message taken yet
    frozen: bool = False  # revoked in a rebalance not yet over: write nothing
    generation: int = 0  # the consumer group generation it was last assigned in (see rebalance.thaw)
    sent: list[Any] = field(default_factory=list)  # (future, topic, kwargs) of outputs not yet confirmed
    held: list[Any] = field(default_factory=list)  # relays handed to local partitions: to the topic at the next flush
    busy: int = 0  # outputs being published: no snapshot until they are in ``sent`` or ``held``


def encode_snapshot(data: dict[str, Any]) -> bytes:
    return b"z" + zlib.compress(orjson.dumps(data), 1)


def decode_snapshot(value: bytes) -> dict[str, Any]:
    raw = zlib.decompress(value[1:]) if value[:1] == b"z" else value
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise DecodeError("bad_state", "snapshot is not an object")
    return data


class CellAgent:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.topo = worker.topo
        self.slots: dict[Any, CellSlot] = {}
        self.stream: Any = None
        self.router = Router.from_settings(self.topo.settings)
        t = self.topo.stream.topics
        self.sources = [source_id(name, p) for name in t.position_topics() for p in range(t.partitions)]

    async def agent(self, stream: Any) -> None:
        manual = stream.noack()
        self.stream = manual
        async for event in manual.events():
            try:
                await self.on_message(event)
            except Exception as exc:  # a bug must not stop the partition: dead-letter, go on
                msg = event.message
                log.error("cells message %s:%s failed", msg.tp, msg.offset, exc_info=exc)
                slot = self.slots.get(msg.tp)
                if slot is not None:
                    slot.handles.append(event)
                try:
                    await self.worker._dead_letter(msg, "internal_error", repr(exc))
                except Exception:
                    log.exception("could not dead-letter %s:%s", msg.tp, msg.offset)

    def _key(self, partition: int) -> bytes:
        return f"{partition}#cells".encode()

    def _new_engine(self, partition: int) -> CellPartitionEngine:
        pw = self.topo.pairwise
        assert pw is not None
        stream = self.topo.stream
        return CellPartitionEngine(
            pw.pair, pw.area, pw.timing, pw.grid, partition, stream.topics.partitions, self.sources, self._route,
            idle_source_s=stream.kafka.idle_source_s,
        )  # fmt: skip

    def _slot(self, tp: Any) -> CellSlot:
        slot = self.slots.get(tp)
        if slot is None:
            engine = self._new_engine(tp.partition)
            value = self.topo.cell_table.data.get(self._key(tp.partition))
            if value is not None:
                try:
                    engine.restore(decode_snapshot(value))
                except (DecodeError, ValueError, zlib.error) as exc:
                    log.error("cells partition %s: snapshot unreadable (%s), starting empty", tp, exc)
                    engine = self._new_engine(tp.partition)
            log.info(
                "cells partition %s: %d cells restored, snapshot at offset %d (pending samples read again from %d)",
                tp,
                len(engine.stage.cells),
                engine.last_offset,
                engine.resume_offset,
            )
            slot = self.slots[tp] = CellSlot(engine, generation=self.topo.app.consumer_generation_id)
            self.worker.cell_engines.append(engine.stage)
        return slot

    def next_offset(self, tp: Any) -> int:
        """The first offset of ``tp`` its engine has not taken (restored from the table if none runs)."""
        return self._slot(tp).engine.resume_offset

    def _route(self, alert: Alert) -> Alert:
        return self.router.route(alert)

    def revoke(self, assigned: Any, generation: int) -> None:
        """Keep (and thaw) the cells partitions assigned again in the next generation; drop the others."""
        dropped = [slot.engine.stage for _, slot in rebalance.thaw(self.slots, assigned, generation)]
        self.worker.cell_engines = [c for c in self.worker.cell_engines if not any(c is d for d in dropped)]

    def _drop(self, tp: Any) -> None:
        """Forget one partition's engine: its next message restores it from the table."""
        slot = self.slots.pop(tp, None)
        if slot is not None:
            stage = slot.engine.stage
            self.worker.cell_engines = [c for c in self.worker.cell_engines if c is not stage]

    async def freeze(self, revoked: Any, write: bool = True) -> None:
        """A rebalance starts: snapshot the revoked cells partitions (unless not ``write``), then
        write nothing more for them until the assignment (see :meth:`Worker._on_revoked`)."""
        await rebalance.freeze(self.slots, revoked, self.flush, write)

    async def on_message(self, event: Any) -> None:
        msg = event.message
        self.worker.stalls.heard_from(msg.tp, time.monotonic())
        if self.worker._stale(msg):
            self.worker.counts["stale"] += 1
            return
        slot = self._slot(msg.tp)
        if slot.frozen:  # fetched before the rebalance; read again after it
            self.worker.counts["stale"] += 1
            return
        if not slot.fresh and slot.engine.last_offset >= 0 and msg.offset > slot.engine.resume_offset:
            log.warning(
                "cells partition %s: offset %d after %d, messages between never read: restoring from the table",
                msg.tp, msg.offset, slot.engine.resume_offset - 1,
            )  # fmt: skip
            self.worker.counts["offset_gaps"] += 1
            self._drop(msg.tp)  # the next line restores it, then backfills
            slot = self._slot(msg.tp)
        async with slot.lock:
            if slot.fresh:
                start = slot.engine.resume_offset
                if msg.offset > start:
                    try:
                        await self._backfill(msg.tp, slot, start, msg.offset)
                    except BackfillError as exc:  # start over with the next message, as position partitions do
                        log.error("%s; will retry with the next message", exc)
                        self._drop(msg.tp)
                        return
                slot.fresh = False
            await self._push(msg.tp, msg.offset, msg.value, slot)
            slot.handles.append(event)
            if time.monotonic() - slot.flushed_at >= self.worker.flush_interval_s:
                await self.flush(msg.tp, slot)

    async def _push(self, tp: Any, offset: int, value: bytes | None, slot: CellSlot) -> None:
        engine = slot.engine
        try:  # one read again after a rebalance that kept the partition is skipped by the engine
            alerts, relays = engine.push(offset, orjson.loads(value or b"null"))
        except (DecodeError, orjson.JSONDecodeError) as exc:
            if offset <= engine.last_offset:
                return  # read again for its pending samples: refused when first read
            engine.last_offset = offset
            reason = exc.reason if isinstance(exc, DecodeError) else "bad_json"
            await self.worker._dead_letter(_Raw(tp, offset, value), reason, str(exc))
            return
        await self._publish(slot, alerts, relays)

    async def _publish(self, slot: CellSlot, alerts: list[Alert], relays: list[CellMessage]) -> None:
        """Alerts to the alerts topic; relays to the cells partitions they are for. The results
        are kept in the slot whose state they come from: its snapshot waits for them.

        A relay for a cells partition this worker holds goes to it at once (it may be waiting
        for it); its durable copy waits in ``held`` for this slot's next flush, which sends the
        copies merged, one message per cells partition, before the snapshot (each message read
        costs the stage far more than a note in it). A relay for a partition held elsewhere
        goes to the topic at once."""
        slot.busy += 1
        try:
            for alert in alerts:
                kw = {"key": alert.id.encode(), "value": alert_value(alert), "headers": cloudevents_headers(alert)}
                slot.sent.append((await self.topo.alerts.send(**kw), self.topo.alerts, kw))
                if self.worker.metrics is not None:
                    self.worker.metrics.alert(alert)
            local = {tp.partition: s for tp, s in self.slots.items()}
            direct: list[tuple[CellSlot, dict[str, Any]]] = []
            remote: list[CellMessage] = []
            for relay in relays:
                other = local.get(relay[0])
                if other is not None and not other.fresh:
                    slot.held.append(relay)
                    direct.append((other, relay[2]))
                else:
                    remote.append(relay)
            await send_cells(self.topo, remote, slot.sent)
            for other, value in direct:
                await self._publish(other, *other.engine.deliver(value))
        finally:
            slot.busy -= 1

    async def flush(self, tp: Any, slot: CellSlot) -> None:
        """Snapshot (after the alerts and relays it covers are delivered), then acknowledge."""
        if self.slots.get(tp) is not slot or slot.frozen:
            return
        if not self.worker._may_write():
            return
        slot.flushed_at = time.monotonic()
        if slot.engine.idle() and not slot.handles and not slot.held:
            return
        held, slot.held = slot.held, []
        await send_cells(self.topo, merge_messages(held), slot.sent)
        await self.topo.app.producer.flush()
        if slot.busy or slot.held:
            return  # outputs of a relay handed over meanwhile are not all out: snapshot at the next flush
        if not await self.worker._delivered(tp, slot):
            return  # an output the broker refused went again: snapshot at the next flush
        value = encode_snapshot(slot.engine.snapshot())
        table = self.topo.cell_table
        key = self._key(tp.partition)
        await table.changelog_topic.send(
            key=key,
            value=value,
            partition=tp.partition,
            key_serializer="raw",
            value_serializer="raw",
            headers=self.worker.writer_headers(),
        )
        table.data[key] = value
        handles, slot.handles = slot.handles, []
        for handle in handles:
            await self.stream.ack(handle)
        self.worker.counts["cell_flushes"] += 1
        stage = slot.engine.stage
        log.debug(
            "cells partition %s: offset %d, watermark %s, horizon %s%s, %d cells",
            tp.partition,
            slot.engine.last_offset,
            slot.engine.watermark,
            stage.horizon,
            " (waiting for a relay)" if stage.waiting else "",
            len(stage.cells),
        )

    async def flush_idle(self) -> None:
        for tp, slot in list(self.slots.items()):
            if not (slot.handles or slot.held) or time.monotonic() - slot.flushed_at < self.worker.flush_interval_s:
                continue
            try:
                async with slot.lock:
                    await self.flush(tp, slot)
            except Exception:
                log.exception("flush of %s failed", tp)

    async def _backfill(self, tp: Any, slot: CellSlot, start: int, stop: int) -> None:
        log.info("cells partition %s: reading offsets %d-%d first (pending samples, then what the snapshot lacks)",
                 tp, start, stop - 1)  # fmt: skip
        async for message in read_range(self.topo.brokers, tp, start, stop):
            await self._push(tp, message.offset, message.value, slot)


@dataclass
class _Raw:
    """Enough of a message for a dead letter."""

    tp: Any
    offset: int
    value: bytes | None
    key: bytes | None = None

    @property
    def topic(self) -> str:
        return str(self.tp.topic)

    @property
    def partition(self) -> int:
        return int(self.tp.partition)


class DirectTopic:
    """A topic whose sends go straight to the Kafka client, already serialised.

    faust's ``Topic.send`` costs about 0.1 ms of CPU a message; the cells stage sends
    thousands (stage-1 notes, watermarks, relays), as the worker's state writes do
    (``Worker._flush``). Sends keep their order per partition, as through faust. Like the
    state writes, they bypass faust's transaction manager: vigiamar does not use
    exactly-once processing (Tansu has no producer ids, see DESIGN.md).
    """

    def __init__(self, producer: Any, name: str) -> None:
        self.producer = producer
        self.name = name

    async def send(self, *, key: bytes | None, value: bytes, partition: int) -> Any:
        """The delivery future (done when the broker has the message), like ``Topic.send``'s."""
        fut = await self.producer.send(self.name, key, value, partition, None, None)
        fut.add_done_callback(self._failed)
        return fut

    def _failed(self, fut: Any) -> None:
        """Read a failure (as faust's own callback did): ``Worker._delivered`` sends it again,
        and one whose partition was revoked meanwhile is not left unread."""
        if not fut.cancelled() and fut.exception() is not None:
            log.warning("send to %s failed: %r", self.name, fut.exception())


async def send_cells(topo: Any, messages: list[CellMessage], sent: list[Any] | None = None) -> None:
    """Send stage-1 notes or relays; with ``sent``, keep each result there (see ``Worker._delivered``,
    which sends a refused one again through the same :class:`DirectTopic`)."""
    if not messages:
        return
    topic = DirectTopic(topo.app.producer, topo.cells.get_topic_name())
    for partition, key, value in messages:
        kw: dict[str, Any] = {"key": key or None, "value": orjson.dumps(value), "partition": partition}
        fut = await topic.send(**kw)
        if sent is not None:
            sent.append((fut, topic, kw))
