"""The ``cells`` topic: stage-1 notes out of position partitions, one partition's per-cell stage. No I/O.

**Out of a position partition** (:class:`CellRouter`). The notes of the partition's
:class:`~detectors.cell_slotting.EntityStage` are numbered (per source, the position topic
and partition, and per cells partition they go to) as they are made, and held. At each state
flush the partition sends every ``cells`` partition one message (key: the first cell a note
names, :func:`~detectors.cells.cell_key`) with the notes held for it and its *progress*: its
watermark, up to which it has sent every note (``done`` once it saw the end of the input);
more than :data:`MAX_NOTES` notes go in several messages, the watermark in the last. Holding
the notes until then delays nothing: a cells partition does no work before the watermark
moves, and the watermark only moves at a flush. It makes the messages few (one per cells
partition per flush, not one per input frame as well), and each message read costs the
cells stage's consumer far more than a note in it. The numbering is part of the partition's
checkpoint, so a partition read again from its checkpoint sends the same notes with the same
numbers.

**One cells partition** (:class:`CellPartitionEngine`). Its
:class:`~detectors.cell_stage.CellStage` holds the cells that hash to it. Its watermark is the
minimum of the progress of every position partition (of both position topics) not yet done,
or the largest once all are: no slot is compared while a partition may still send samples for
it. A partition not heard from for ``idle_source_s`` while others kept sending (an air topic
with no aircraft, a receiver that stopped) is left out of that minimum until it sends again,
as Flink's source idleness does: otherwise one unused partition would hold every pairwise
alert back for ever. That time is *activity time* (the worker's clock, advanced by at most
:data:`ACTIVITY_STEP_S` per message), so a pause of the whole feed makes nobody idle, and
when every partition still sending looks idle none is left out. What a partition sends
after being left out may be behind the cells' horizon: it is counted as late
(``late_samples``). Only the shell's clock decides idleness; detectors see event time only.

Notes already applied (same source and number) are skipped, so a note sent twice (a
position partition read again after a restart) counts once. Relays to other cells partitions
go out the same way, numbered per cells partition; a worker also hands a relay straight to
a cells partition it holds (:meth:`CellPartitionEngine.deliver`), without waiting for the
topic to bring it (the copy in the topic, read later, is then skipped).

**Checkpoints.** :meth:`CellPartitionEngine.snapshot` is the partition state as one value
with ``o``, the offset of the last message applied, and ``r``, where reading again must
start. It leaves out the samples waiting for their slot: a lag's worth of every entity's
samples (more while a silent partition holds the watermark back), which would make every
snapshot as large as that window. A restarted partition loads the snapshot and reads from
``r``: messages up to ``o`` give back only their samples for slots still ahead (each note
once), exactly the pending samples of the moment of the snapshot; no slot runs until they
are all back. Messages after ``o`` are applied again from exactly that state, so their
alerts and relays come again with the same ids, revisions and numbers.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from detectors import state_codec
from detectors.cell_records import Note, PairStates, SampleNote, note_from_wire, number_notes
from detectors.cell_stage import CellStage
from detectors.cell_timing import EngineTiming
from detectors.cells import AreaDetector, Grid, PairDetector, cell_key
from models.alert import Alert
from models.errors import DecodeError
from streams.wire import Partitioner

CellMessage = tuple[int, bytes, dict[str, Any]]  # (cells partition, key, value)
MAX_NOTES = 1000  # notes in one cells message (a sample note is about 200 bytes of JSON)
MERGED_BYTES = 256 * 1024  # relays merged into one message: about this much JSON at most
ACTIVITY_STEP_S = 30.0  # one message moves activity time on by at most this (see CellPartitionEngine)


def source_id(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


def _notes(value: Any) -> tuple[str, list[tuple[int, Note]]]:
    """A cells message's source and numbered notes (KeyError, TypeError, ValueError if it has none)."""
    return str(value["src"]), [(int(seq), note_from_wire(w)) for seq, w in value.get("notes", ())]


class CellRouter:
    """Notes → messages per ``cells`` partition, numbered per source.

    :meth:`messages` sends notes at once (relays between cells partitions); :meth:`hold`
    numbers notes and keeps them for the next :meth:`progress` (a position partition's notes).
    """

    def __init__(self, source: str, partitions: int) -> None:
        self.source = source
        self.partitions = partitions
        self.seqs = [0] * partitions  # per cells partition: the number of the last note sent there
        self._partitioner = Partitioner(partitions)
        self._parts: dict[int, int] = {}  # cell id -> cells partition
        self._held: dict[int, tuple[int, list[Any]]] = {}  # cells partition -> (first cell, numbered notes)

    def partition_of(self, cell_id: int) -> int:
        return self._partitioner(cell_key(cell_id))

    def messages(self, notes: list[Note]) -> list[CellMessage]:
        """``notes``, numbered, in messages to send now."""
        groups: dict[int, tuple[int, list[Any]]] = {}
        number_notes(notes, self.partition_of, self._parts, self.seqs, groups)
        return self._messages(groups)

    def hold(self, notes: list[Note]) -> None:
        """Number ``notes`` now; they go out with the next :meth:`progress`."""
        number_notes(notes, self.partition_of, self._parts, self.seqs, self._held)

    @property
    def held(self) -> int:
        """Notes waiting for the next :meth:`progress` (a note for two partitions counts twice)."""
        return sum(len(items) for _, items in self._held.values())

    def _messages(self, groups: dict[int, tuple[int, list[Any]]]) -> list[CellMessage]:
        out: list[CellMessage] = []
        for p, (cid, items) in groups.items():
            key = cell_key(cid).encode()
            for i in range(0, len(items), MAX_NOTES):
                out.append((p, key, {"src": self.source, "notes": items[i : i + MAX_NOTES]}))
        return out

    def progress(self, watermark: float, done: bool) -> list[CellMessage]:
        """The notes held, then the source's watermark, for every ``cells`` partition: the
        watermark rides on the partition's last message of notes, or goes alone."""
        held, self._held = self._held, {}
        out = self._messages(held)
        wm = state_codec.encode(watermark)
        last: dict[int, dict[str, Any]] = {p: value for p, _, value in out}  # each partition's last
        for p in range(self.partitions):
            value = last.get(p)
            if value is None:
                out.append((p, b"", {"src": self.source, "wm": wm, "done": done}))
            else:
                value["wm"], value["done"] = wm, done
        return out


def merge_messages(messages: Iterable[CellMessage]) -> list[CellMessage]:
    """Messages of notes alone (relays) merged per cells partition and source, in order: at most
    :data:`MAX_NOTES` notes and about :data:`MERGED_BYTES` of JSON a message (a relay carries
    pair states, which can be large). A merged message stands where its first part stood, so
    notes only ever move earlier; any other message (one with a watermark) is kept as it is."""
    merged: list[CellMessage] = []
    groups: dict[tuple[int, str], list[Any]] = {}
    for partition, key, value in messages:
        if value.keys() != {"src", "notes"}:
            merged.append((partition, key, value))
            continue
        group = groups.get((partition, value["src"]))
        if group is None:
            group = groups[(partition, value["src"])] = []
            merged.append((partition, key, {"src": value["src"], "notes": group}))
        group.extend(value["notes"])
    out: list[CellMessage] = []
    for partition, key, value in merged:
        if value.keys() != {"src", "notes"}:
            out.append((partition, key, value))
            continue
        part: list[Any] = []
        size = 0
        for note in value["notes"]:
            n = len(orjson.dumps(note))
            if part and (len(part) >= MAX_NOTES or size + n > MERGED_BYTES):
                out.append((partition, key, {"src": value["src"], "notes": part}))
                part, size = [], 0
            part.append(note)
            size += n
        out.append((partition, key, {"src": value["src"], "notes": part}))
    return out


class CellPartitionEngine:
    def __init__(
        self,
        pair_detectors: Sequence[PairDetector],
        area_detectors: Sequence[AreaDetector],
        timing: EngineTiming,
        grid: Grid,
        partition: int,
        partitions: int,
        sources: Iterable[str],
        route: Callable[[Alert], Alert] | None = None,
        idle_source_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.partition = partition
        self.route = route
        self.router = CellRouter(f"cells/{partition}", partitions)
        self.stage = CellStage(pair_detectors, area_detectors, timing, grid, owns=self._owns)
        self.marks: dict[str, float] = dict.fromkeys(sources, -math.inf)
        self.idle_source_s = idle_source_s
        self.clock = clock
        # Idleness is measured in *activity time*: the clock, advanced only while messages come
        # in (at most ACTIVITY_STEP_S per message), so a pause of the whole feed idles nobody.
        self._activity = 0.0
        self._last_clock = clock()
        self.heard: dict[str, float] = dict.fromkeys(self.marks, 0.0)  # activity time of its last message
        self.done: set[str] = set()
        self.applied: dict[str, int] = {}  # per source: every note up to this number was applied
        self.ahead: dict[str, set[int]] = {}  # per source: later ones applied (relays handed over directly)
        self.counts: Counter[str] = Counter()
        self.last_offset = -1
        self.flushed_offset = -1
        # pending samples are not in snapshots: per slot still ahead, the first offset that
        # delivered samples to it (a snapshot's ``r``: where reading again must start)
        self._first_offset: dict[float, int] = {}
        self._offset: int | None = None  # of the message being applied (None: a direct relay)
        # after a restore: messages up to ``o`` are read again from ``r`` for their pending samples
        self._rebuild: tuple[int, int] | None = None  # (next offset to read again, o)
        self._rebuilt: set[tuple[str, int]] = set()  # (source, number) of the notes read again

    def _owns(self, cell_id: int) -> bool:  # the stage remembers the answers
        return self.router.partition_of(cell_id) == self.partition

    @property
    def watermark(self) -> float:
        """No position partition still sending is behind it."""
        waiting = [s for s in self.marks if s not in self.done]
        idle = 0
        if waiting and self.idle_source_s > 0:
            since = self._activity - self.idle_source_s
            active = [s for s in waiting if self.heard[s] > since]
            if active:  # never all: with nobody active, nobody may be overtaken
                idle = len(waiting) - len(active)
                waiting = active
        self.counts["idle_sources"] = idle
        if waiting:
            return min(self.marks[s] for s in waiting)
        return max(self.marks.values(), default=-math.inf)

    def _heard(self, src: str) -> None:
        now = self.clock()
        self._activity += min(max(now - self._last_clock, 0.0), ACTIVITY_STEP_S)
        self._last_clock = now
        if src in self.heard:
            self.heard[src] = self._activity

    def push(self, offset: int, value: Any) -> tuple[list[Alert], list[CellMessage]]:
        """One message of the cells topic (decoded JSON); alerts and relays it causes.

        Raises :class:`DecodeError` for a message that is not one (nothing of it applied).
        """
        rebuild = self._rebuild
        if rebuild is not None and rebuild[0] <= offset <= rebuild[1]:
            self._take_pending(offset, value)
            return [], []
        if offset <= self.last_offset:
            self.counts["redelivered"] += 1
            return [], []
        if rebuild is not None:
            if rebuild[0] <= rebuild[1]:  # the shell must read from ``resume_offset``: some samples are lost
                self.counts["rebuild_incomplete"] += 1
            self._rebuild = None
            self._rebuilt.clear()
        self.last_offset = offset
        self._offset = offset
        try:
            return self.deliver(value)
        finally:
            self._offset = None

    def _take_pending(self, offset: int, value: Any) -> None:
        """A message applied before the snapshot, read again: its samples still pending go back."""
        assert self._rebuild is not None
        self._rebuild = (offset + 1, self._rebuild[1])
        try:
            src, notes = _notes(value)
        except (KeyError, TypeError, ValueError, AttributeError):
            return  # refused when first read (dead-lettered then)
        for seq, note in notes:
            if not isinstance(note, SampleNote) or (src, seq) in self._rebuilt or not self._was_applied(src, seq):
                continue  # a note sent twice counts once, as when it was first read
            self._rebuilt.add((src, seq))
            if self.stage.take_pending(note):
                self._first_offset.setdefault(note.sample.ts, offset)
                self.counts["pending_rebuilt"] += 1

    def _was_applied(self, src: str, seq: int) -> bool:
        ahead = self.ahead.get(src)
        return seq <= self.applied.get(src, 0) or (ahead is not None and seq in ahead)

    def deliver(self, value: Any) -> tuple[list[Alert], list[CellMessage]]:
        """A message's notes and watermark, whether read from the topic or handed over directly
        by a cells partition of the same worker (its copy in the topic is skipped when read)."""
        try:
            src, notes = _notes(value)
            wm = float(state_codec.decode(value["wm"])) if "wm" in value else None
            self._check(notes)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DecodeError("bad_cell_message", repr(exc)) from exc
        self._heard(src)
        stage = self.stage
        offset, first = self._offset, self._first_offset
        for seq, note in notes:
            if self._seen(src, seq):
                self.counts["duplicate_notes"] += 1
                continue
            stage.take(note)
            if offset is not None and isinstance(note, SampleNote) and note.sample.ts > stage.horizon:
                first.setdefault(note.sample.ts, offset)
        self.counts["notes"] += len(notes)
        if wm is not None and src in self.marks:  # only the position partitions it was built for
            if wm > self.marks[src]:
                self.marks[src] = wm
            if value.get("done"):
                self.done.add(src)
        elif wm is not None:
            self.counts["unknown_sources"] += 1
        if self._rebuild is not None:  # pending samples not all back yet: no slot may run
            return [], self.router.messages(stage.drain())
        before = stage.horizon
        ended = bool(self.marks) and self.done.issuperset(self.marks)  # every position partition's input ended
        alerts = stage.advance(self.watermark, final=ended)
        if stage.horizon > before and first:
            for ts in [t for t in first if t <= stage.horizon]:
                del first[ts]
        if alerts and self.route is not None:
            alerts = [self.route(a) for a in alerts]
        return alerts, self.router.messages(stage.drain())

    def _check(self, notes: list[tuple[int, Note]]) -> None:
        """Channels and detector indexes within this engine's detectors (ValueError if not)."""
        stage = self.stage
        nchan, npair = len(stage.pair_detectors) + len(stage.area_detectors), len(stage.pair_detectors)
        for _, note in notes:
            if isinstance(note, SampleNote):
                if any(not 0 <= ch < nchan for ch, _ in note.deliveries) or any(
                    not 0 <= h[0] < npair for h in note.handoffs
                ):
                    raise ValueError("channel or detector index out of range")
            elif isinstance(note, PairStates) and not 0 <= note.index < npair:
                raise ValueError("detector index out of range")

    def _seen(self, src: str, seq: int) -> bool:
        """Whether note ``seq`` of ``src`` was applied already; marks it applied if not."""
        if self._was_applied(src, seq):
            return True
        last = self.applied.get(src, 0)
        ahead = self.ahead.get(src)
        if seq != last + 1:
            self.ahead.setdefault(src, set()).add(seq)
            return False
        last = seq
        while ahead and last + 1 in ahead:
            last += 1
            ahead.discard(last)
        if ahead is not None and not ahead:
            del self.ahead[src]
        self.applied[src] = last
        return False

    # --- checkpoints ----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The partition's state without its pending samples: ``r`` is where reading again
        brings them back (the first message that delivered one), ``o`` the last message applied."""
        self.flushed_offset = self.last_offset
        return {
            "o": self.last_offset,
            "r": self._reread_from(),
            "stage": self.stage.export(pending=False),
            "marks": {s: state_codec.encode(m) for s, m in self.marks.items()},
            "done": sorted(self.done),
            "applied": self.applied,
            "ahead": {s: sorted(a) for s, a in self.ahead.items()},
            "seqs": self.router.seqs,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load a snapshot into this new engine. Raises DecodeError."""
        try:
            self.stage.restore(data["stage"])
            for s, m in data.get("marks", {}).items():
                self.marks[str(s)] = float(state_codec.decode(m))
            self.done = {str(s) for s in data.get("done", ())}
            self.applied = {str(s): int(n) for s, n in data.get("applied", {}).items()}
            self.ahead = {str(s): {int(n) for n in a} for s, a in data.get("ahead", {}).items()}
            self.router.seqs = [int(n) for n in data["seqs"]]
            self.last_offset = self.flushed_offset = int(data["o"])
            resume = int(data.get("r", self.last_offset + 1))  # no "r": pending samples are in the stage
            self._rebuild = (resume, self.last_offset) if resume <= self.last_offset else None
            self._activity, self._last_clock = 0.0, self.clock()
            self.heard = dict.fromkeys(self.marks, 0.0)  # idleness is counted from the restart
        except (KeyError, TypeError, ValueError, AttributeError, AssertionError) as exc:
            raise DecodeError("bad_state", repr(exc)) from exc

    @property
    def resume_offset(self) -> int:
        """The next offset to read (after a restore: the first whose pending samples come back)."""
        return self._rebuild[0] if self._rebuild is not None else self.last_offset + 1

    def _reread_from(self) -> int:
        """Where a partition restored from a snapshot taken now must start reading again."""
        first = min(self._first_offset.values(), default=self.last_offset + 1)
        return min(first, self.resume_offset)

    def idle(self) -> bool:
        return self.last_offset == self.flushed_offset
