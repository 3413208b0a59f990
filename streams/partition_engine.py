"""One partition of a position topic: the replay pipeline, checkpointed to a table. No I/O here.

The worker owns one :class:`PartitionEngine` per assigned partition of ``positions.vessel``
and ``positions.air``. Messages (frames of records, see :mod:`streams.wire`) go through the
same :class:`detectors.pipeline.Pipeline` as ``vigiamar replay``: reorder buffer, watermark,
cleaning, per-track detectors, expiry. What the engine adds is exactly what a restart needs.

**Flushes.** :meth:`PartitionEngine.flush` returns the table writes for the partition:
each track changed since the last flush, a removal marker for each track its time to live
removed (both slots are deleted one flush later, once a checkpoint covers the removal), and
last the partition's checkpoint ``{o, r, max_ts, late, resume}``: ``o`` the offset of the
last message applied, ``r`` the release point (every buffered record with event time ≤ ``r``
has been processed), ``late`` the records still buffered although behind ``r``, ``resume``
the first message not yet acknowledged (reading again from there rebuilds this state).

**Two slots per track.** A track is written alternately to ``…|a`` and ``…|b``, each value
tagged with the ``o`` of its flush. Writes of one partition land in order, so if the last
flush was cut short, its track values may have landed without its checkpoint: the other
slot still holds the track as of the checkpoint. A restore takes, per track, the newer
slot whose ``o`` the checkpoint covers, and deletes values written after it.

**Acks.** A message is acknowledged (its offset may be committed) only when all its records
have left the reorder buffer *and* a flush after that has been written, in offset order.
faust flushes the producer before it commits, so a committed offset is always covered by
a durable checkpoint, and the messages whose records were still buffered are read again.

**Restore.** :meth:`PartitionEngine.restore` loads the tracks and the checkpoint. Reading
must start at or before ``resume``; if the consumer's committed offset is later (a table
read short, a commit that outran its checkpoint), :meth:`PartitionEngine.missing_before`
says so and the shell reads the missing messages first, so none is ever skipped. Messages
read again up to offset ``o`` only rebuild the reorder buffer (their records with event
time > ``r``, and the ``late`` ones); later messages run normally, from exactly the state of
the checkpoint, so their alerts come again with the same ids, revisions and contents.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from detectors import state_codec
from detectors.base import CellEngineLike, Environment, TrackDetector
from detectors.cell_slotting import EntityStage, SlottingOnly
from detectors.cells import sample_key, split_sample_key
from detectors.pipeline import NoCells, Pipeline
from detectors.track_engine import TrackKey
from models.alert import Alert
from models.errors import DecodeError
from models.position import Position
from models.settings import Settings
from streams.cell_partition import CellMessage, CellRouter
from streams.track_store import ChangeTracker, export_track, restore_track
from streams.wire import Partitioner, Record, entity_key, entity_type, record_from_wire

NEG_INF = -math.inf
SLOTS = ("a", "b")


@dataclass(slots=True)
class Refused:
    """A record for the dead-letter topic: where it came from and why."""

    offset: int
    index: int | None
    reason: str
    raw: bytes
    detail: str = ""


@dataclass(slots=True)
class FrameOutcome:
    alerts: list[Alert] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    records: int = 0  # records taken into the pipeline
    redelivered: bool = False


@dataclass(slots=True)
class Flush:
    writes: list[tuple[bytes, bytes | None]]  # table key -> value (None: delete)
    acks: list[Any]  # handles of messages now safe to acknowledge, in offset order
    tracks_written: int = 0
    tracks_removed: int = 0


class PartitionEngine:
    def __init__(
        self,
        settings: Settings,
        partition: int,
        partitions: int,
        entity_types: Sequence[str],
        detectors: Sequence[TrackDetector] | None = None,
        env: Environment | None = None,
        slotting: EntityStage | None = None,
        cells: CellRouter | None = None,
    ) -> None:
        """``slotting`` (with ``cells``, numbering its notes for the cells topic): the stage 1
        of the pairwise detectors, run here; without it, pairwise detection is off."""
        self.partition = partition
        self.entity_types = frozenset(entity_types)
        self.slotting = slotting
        self.cell_router = cells
        stage1: CellEngineLike = NoCells() if slotting is None else SlottingOnly(slotting)
        self.pipeline = Pipeline(settings, env, detectors, cells=stage1)
        # one record into the pipeline: the worker's metrics wrap this to time detector steps
        # (the pipeline is a compiled class, whose methods cannot be replaced)
        self.push_record: Callable[[Record], list[Alert]] = self.pipeline.push
        self.ended = False  # saw the end of the input (the cells stage need not wait for it)
        self.detectors = self.pipeline.detectors
        self.changes = ChangeTracker(self.pipeline.engine, settings.pipeline.track_ttl_s)
        self.grace_s = settings.pipeline.grace_s
        self._partitioner = Partitioner(partitions)
        self._prefix = f"{partition}|".encode()
        self.checkpoint_key = f"{partition}#checkpoint".encode()
        self._cells_keys = (self._cells_key("a"), self._cells_key("b"))
        self._cells_slot = "b"  # the slot of the last stage-1 value written (the next one takes the other)
        self._orphans: set[str] = set()  # stage-1 entities whose track is gone: kept in the stage-1 value
        self.counts: Counter[str] = Counter()
        self.released = NEG_INF  # every buffered record with event time <= this was processed
        self.last_offset = -1
        self.flushed_offset = -1  # ``o`` of the last checkpoint written
        self.records_since_flush = 0
        self._late: set[tuple[int, int]] = set()  # buffered although behind ``released``
        self._origin: dict[int, tuple[int, int]] = {}  # id(position) -> (offset, index), while buffered
        # acknowledgements
        self._order: deque[int] = deque()  # offsets not yet acknowledged, in arrival order
        self._handles: dict[int, list[Any]] = {}
        self._pending: list[tuple[float, int]] = []  # (newest buffered event time, offset)
        self._waiting: list[int] = []  # passed ``released`` but hold late records
        self._done: set[int] = set()  # fully processed, waiting for a flush
        self._extra_acks: list[Any] = []
        # table slots
        self._slot: dict[TrackKey, str] = {}  # slot of the track's newest value
        self._markers: dict[TrackKey, int] = {}  # removed tracks -> ``o`` of their marker
        self._garbage: list[bytes] = []  # values written after the restored checkpoint
        # restore
        self._restored_offset = -1
        self._restored_released = NEG_INF
        self._restored_late: set[tuple[int, int]] = set()
        self._resume: int | None = None  # a restored engine's first message must not be later

    # --- input ------------------------------------------------------------------------------
    def push_frame(
        self,
        offset: int,
        elements: Iterable[Any],
        handle: Any,
        end_of_input: bool = False,
        input_end: float | None = None,
    ) -> FrameOutcome:
        """Take one message (its decoded JSON elements); ``handle`` comes back in a flush's acks.

        ``end_of_input``: the input ended; expiry runs at ``input_end`` (the newest event
        time of the whole input) when it is later than this partition's own newest.
        """
        out = FrameOutcome()
        self._resume = None
        if offset <= self.last_offset:  # read again after a rebalance that kept this partition
            out.redelivered = True
            if offset in self._handles:
                self._handles[offset].append(handle)
            else:
                self._extra_acks.append(handle)
            return out
        rebuild = offset <= self._restored_offset
        newest, late = NEG_INF, False
        touch = self.changes.touch
        for index, element in enumerate(elements):
            try:
                record, key = self._record(element)
            except DecodeError as exc:
                if not rebuild:
                    out.refused.append(Refused(offset, index, exc.reason, orjson.dumps(element), exc.detail))
                continue
            ts = record.ts
            if rebuild:
                if not (ts > self._restored_released or (offset, index) in self._restored_late):
                    continue  # processed before the checkpoint
                self.pipeline.buffer.push(ts, record)
                is_late = (offset, index) in self._restored_late
            else:
                before = self.released
                if isinstance(record, Position):
                    self._origin[id(record)] = (offset, index)
                out.alerts.extend(self._push(record))
                is_late = ts <= before and self.released == before
            if rebuild and isinstance(record, Position):
                self._origin[id(record)] = (offset, index)
            touch(key, ts)
            if is_late:
                self._late.add((offset, index))
                late = True
            if ts > newest:
                newest = ts
            out.records += 1
        if end_of_input and not rebuild:
            out.alerts.extend(self._finish(input_end))
            self.ended = True
        if self.slotting is not None and self.slotting.outbox and self.cell_router is not None:
            self.cell_router.hold(self.slotting.drain())  # numbered now, sent with the progress
        self.last_offset = offset
        self.records_since_flush += out.records
        self._track(offset, handle, newest if out.records else None, late)
        out.refused.extend(self._cleaning_rejects())
        self.counts["records"] += out.records
        self.counts["refused"] += len(out.refused)
        return out

    @property
    def resume_offset(self) -> int | None:
        """Where reading must start for a restored engine (None once it took a message)."""
        return self._resume

    @property
    def next_offset(self) -> int:
        """The first offset this engine needs: where a restored one must start, else the one after the last taken."""
        return self._resume if self._resume is not None else self.last_offset + 1

    def missing_before(self, offset: int) -> int | None:
        """For a restored engine's first message: the offset reading should have started at, if later.

        The committed offset normally lies at or before the checkpoint's ``resume``. When it
        does not (the table was read short, or a commit outran its checkpoint), the messages
        from ``resume`` up to this one must be read first (the shell reads them with a plain
        consumer and pushes them before this one).
        """
        resume, self._resume = self._resume, None
        if resume is not None and offset > resume:
            self.counts["backfills"] += 1
            return resume
        return None

    def skipped(self, offset: int) -> bool:
        """This message is not the one after the last taken: the consumer jumped over some.

        Offsets of a position topic follow each other; a jump means messages this engine
        never saw (a seek past them, or another worker took the partition meanwhile and
        committed). The shell then starts the partition again from the table, as after an
        assignment. A restored engine's first message is checked by :meth:`missing_before`.
        """
        return self._resume is None and self.last_offset >= 0 and offset > self.last_offset + 1

    def _record(self, element: Any) -> tuple[Record, TrackKey]:
        record = record_from_wire(element)
        etype = entity_type(record)
        if etype not in self.entity_types:
            raise DecodeError("wrong_topic", f"{etype} record on a topic for {', '.join(sorted(self.entity_types))}")
        ident = entity_key(record)
        if self._partitioner(ident) != self.partition:
            raise DecodeError("wrong_partition", f"{ident} belongs to partition {self._partitioner(ident)}")
        return record, (etype, ident)

    def _push(self, record: Record) -> list[Alert]:
        buffer = self.pipeline.buffer
        before = buffer.max_ts
        alerts = self.push_record(record)
        after = buffer.max_ts
        if after != before or self.grace_s <= 0:
            self._released_until(after - buffer.grace_s)  # the pipeline's watermark
        return alerts

    def _finish(self, input_end: float | None) -> list[Alert]:
        alerts = self.pipeline.finish(input_end)
        end = self.pipeline.buffer.max_ts
        self._released_until(end if input_end is None else max(end, input_end))
        return alerts

    def _released_until(self, until: float) -> None:
        if until > self.released:
            self.released = until
        self._late.clear()  # a release takes everything up to ``until``, late records included

    def _cleaning_rejects(self) -> list[Refused]:
        """Fixes the track cleaner refused (duplicate, late), as the embedded shell sees them."""
        out = []
        for pos, reason in self.pipeline.dropped:
            origin = self._origin.pop(id(pos), None)
            offset, index = origin if origin is not None else (self.last_offset, None)
            out.append(Refused(offset, index, reason, orjson.dumps(pos.to_wire())))
        self.pipeline.dropped.clear()
        if len(self._origin) > 2 * len(self.pipeline.buffer) + 4096:
            self._origin.clear()  # accepted fixes never come back through ``dropped``
        return out

    # --- acknowledgements ---------------------------------------------------------------------
    def _track(self, offset: int, handle: Any, newest: float | None, late: bool) -> None:
        self._order.append(offset)
        self._handles[offset] = [handle]
        if newest is None or (not late and newest <= self.released):
            self._done.add(offset)
        else:
            heapq.heappush(self._pending, (newest, offset))
        self._settle()

    def _settle(self) -> None:
        late_offsets = {o for o, _ in self._late}
        if self._waiting:
            self._done.update(o for o in self._waiting if o not in late_offsets)
            self._waiting = [o for o in self._waiting if o in late_offsets]
        pending = self._pending
        while pending and pending[0][0] <= self.released:
            _, offset = heapq.heappop(pending)
            if offset in late_offsets:
                self._waiting.append(offset)
            else:
                self._done.add(offset)

    def give_up(self, offset: int, handle: Any) -> None:
        """A message whose handling failed (dead-lettered): acknowledge it in turn.

        One the engine took is already tracked (its buffered records decide); one it never
        took is done as it is.
        """
        if offset in self._handles:
            return
        if offset > self.last_offset:
            self.last_offset = offset
            self._order.append(offset)
            self._handles[offset] = [handle]
            self._done.add(offset)
        else:
            self._extra_acks.append(handle)

    def seen(self, offset: int) -> bool:
        """This message was handled before (now read again): its refusals were sent then."""
        return offset <= self.last_offset or offset <= self._restored_offset

    @property
    def unacked(self) -> int:
        return len(self._order)

    # --- checkpoints ----------------------------------------------------------------------------
    def flush_due(self, records: int) -> bool:
        return self.records_since_flush >= records

    def idle(self) -> bool:
        """Nothing to write or acknowledge since the last flush."""
        return self.last_offset == self.flushed_offset and not self._extra_acks and not self._garbage

    def flush(self) -> Flush:
        """Table writes for everything changed since the last flush, checkpoint last, and the acks.

        The stage-1 notes made since the last :meth:`progress` must have been taken (and sent)
        first: the checkpoint numbers them as sent, so a restore would never make them again.
        """
        if self.cell_router is not None and self.cell_router.held:
            raise RuntimeError("stage-1 notes not sent: call progress() before flush()")
        self._settle()
        o, r = self.last_offset, self.released
        tag = {"o": o, "r": state_codec.encode(r)}
        changed, removed = self.changes.changes(r)
        tracks = self.pipeline.engine.tracks
        slotting = self.slotting if self.cell_router is not None else None
        if slotting is not None:
            # an entity's stage-1 state rides with its track: written when either changed. One
            # whose track was forgotten first (a time to live shorter than the stage's memory)
            # goes into the stage-1 value instead, at every flush while it lasts.
            for ekey in slotting.take_dirty():
                track_key = split_sample_key(ekey)
                if track_key in tracks:
                    changed.add(track_key)
                    self._orphans.discard(ekey)
                elif ekey in slotting.entities:
                    self._orphans.add(ekey)
                else:
                    self._orphans.discard(ekey)
        writes: list[tuple[bytes, bytes | None]] = []
        written: set[bytes] = set()
        for key in sorted(changed):
            kb = self._next_slot(key)
            value = {**export_track(tracks[key], self.detectors), **tag}
            if slotting is not None:
                entity = slotting.export_entity(sample_key(*key))
                if entity is not None:
                    value["e"] = entity
            writes.append((kb, orjson.dumps(value)))
            written.add(kb)
            self._markers.pop(key, None)
            self.changes.written(key, tracks[key], r)
        for key in sorted(removed):
            if key in self._slot and key not in self._markers:
                kb = self._next_slot(key)
                writes.append((kb, orjson.dumps({"deleted": True, **tag})))
                written.add(kb)
                self._markers[key] = o
        writes = [(kb, None) for kb in self._garbage if kb not in written] + writes
        self._garbage = []
        for key, marked in list(self._markers.items()):
            if marked <= self.flushed_offset and key not in tracks:  # a durable checkpoint covers it
                newest = self._slot.pop(key)
                writes += [(self._slot_key(key, s), None) for s in SLOTS if s != newest]
                writes.append((self._slot_key(key, newest), None))  # the marker goes last
                del self._markers[key]
        acks = self._extra_acks
        self._extra_acks = []
        while self._order and self._order[0] in self._done:
            offset = self._order.popleft()
            self._done.discard(offset)
            acks.extend(self._handles.pop(offset, ()))
        checkpoint = {
            **tag,
            "max_ts": state_codec.encode(self.pipeline.buffer.max_ts),
            "late": sorted(self._late),
            "resume": self._order[0] if self._order else o + 1,  # re-read from here to rebuild this state
            "end": self.ended,
        }
        if self.slotting is not None and self.cell_router is not None:
            # stage 1 of the pairwise detectors: one value, in the slot the last flush did not use
            self._cells_slot = "b" if self._cells_slot == "a" else "a"
            stage = self.slotting.export(entities=False)
            stage["entities"] = [e for k in sorted(self._orphans) if (e := self.slotting.export_entity(k)) is not None]
            stage1 = {**tag, "stage": stage, "seqs": self.cell_router.seqs}
            writes.append((self._cells_key(self._cells_slot), orjson.dumps(stage1)))
        writes.append((self.checkpoint_key, orjson.dumps(checkpoint)))
        self.flushed_offset = o
        self.records_since_flush = 0
        self.counts["flushes"] += 1
        self.counts["tracks_written"] += len(changed)
        return Flush(writes, acks, len(changed), len(removed))

    def progress(self) -> list[CellMessage]:
        """The stage-1 notes made since the last call and this partition's watermark, for every
        cells partition: every note up to the watermark is in these messages or was sent before.

        The shell sends them *before* the flush that writes the checkpoint at this watermark
        and waits until they are delivered: a checkpoint then never stands for notes or a
        progress message that were lost (a restored partition with nothing new to read would
        not send them again, and the cells stage would wait for them for ever).
        """
        if self.cell_router is None:
            return []
        return self.cell_router.progress(self.released, self.ended)

    def _cells_key(self, slot: str) -> bytes:
        return f"{self.partition}#cells|{slot}".encode()

    def _slot_key(self, key: TrackKey, slot: str) -> bytes:
        return self._prefix + f"{key[0]}|{key[1]}|{slot}".encode()

    def _next_slot(self, key: TrackKey) -> bytes:
        slot = "b" if self._slot.get(key) == "a" else "a"
        self._slot[key] = slot
        return self._slot_key(key, slot)

    def owns(self, table_key: bytes) -> bool:
        return table_key.startswith(self._prefix) or table_key in (self.checkpoint_key, *self._cells_keys)

    def restore(self, items: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Load this partition's tracks and checkpoint (table items) into this new engine."""
        checkpoint: dict[str, Any] | None = None
        versions: dict[TrackKey, list[tuple[int, str, dict[str, Any]]]] = {}
        stage1: dict[bytes, dict[str, Any]] = {}
        for kb, value in items:
            if value is None or not self.owns(kb):
                continue
            try:
                data = orjson.loads(value)
                if kb == self.checkpoint_key:
                    checkpoint = data
                    continue
                if kb in self._cells_keys:
                    stage1[kb] = data
                    continue
                body, slot = kb[len(self._prefix) :].decode().rsplit("|", 1)
                etype, ident = body.split("|", 1)
                if slot not in SLOTS:
                    raise ValueError(kb)
                versions.setdefault((etype, ident), []).append((int(data["o"]), slot, data))
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
                self.counts["state_undecodable"] += 1
        c = int(checkpoint["o"]) if checkpoint else -1
        self._resume = int(checkpoint.get("resume", c + 1)) if checkpoint else 0
        if checkpoint is not None:
            self._restored_offset = self.flushed_offset = c
            self.released = self._restored_released = float(state_codec.decode(checkpoint["r"]))
            self.pipeline.buffer.max_ts = float(state_codec.decode(checkpoint["max_ts"]))
            self._restored_late = {(int(o), int(i)) for o, i in checkpoint.get("late", ())}
            self.ended = bool(checkpoint.get("end", False))
        self._restore_stage1(stage1, c)  # first: the entities come with their tracks
        for key, found in versions.items():
            self._restore_one(key, found, c)

    def _restore_stage1(self, found: dict[bytes, dict[str, Any]], c: int) -> None:
        """Stage 1 of the pairwise detectors as of the checkpoint (written just before it)."""
        if self.slotting is None or self.cell_router is None:
            return
        for kb, data in found.items():
            if data.get("o") != c:
                continue  # the other slot (older), or a flush whose checkpoint did not land
            try:
                self.slotting.restore(data["stage"])
                self.cell_router.seqs = [int(n) for n in data["seqs"]]
                self._orphans = set(self.slotting.entities)  # so far only those of the stage-1 value
            except (DecodeError, KeyError, TypeError, ValueError):
                self.counts["state_undecodable"] += 1
                return
            self._cells_slot = kb.decode().rsplit("|", 1)[1]
            self.counts["stage1_restored"] += 1
            return
        if c >= 0:
            self.counts["stage1_missing"] += 1

    def _restore_one(self, key: TrackKey, found: list[tuple[int, str, dict[str, Any]]], c: int) -> None:
        covered = [v for v in found if v[0] <= c]
        for o, slot, _ in found:
            if o > c:  # written by a flush whose checkpoint did not land
                self._garbage.append(self._slot_key(key, slot))
                self._slot.setdefault(key, "b" if slot == "a" else "a")  # the next write reuses it
        if not covered:
            return
        o, slot, data = max(covered, key=lambda v: v[0])
        self._slot[key] = slot
        if data.get("deleted"):
            self._markers[key] = o
            return
        try:
            track = restore_track(self.pipeline.engine, key, data)
            if "e" in data and self.slotting is not None and self.cell_router is not None:
                self.slotting.restore_entity(data["e"])
                self._orphans.discard(sample_key(*key))
        except DecodeError:
            self.counts["state_undecodable"] += 1
            return
        self.changes.written(key, track, self.released)
        self.counts["tracks_restored"] += 1
