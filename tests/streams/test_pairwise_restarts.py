"""The pairwise detectors split the way the worker runs them, with crashes on both sides.

Position partitions run :class:`PartitionEngine` with stage 1 (slotting, notes numbered per
source); cells partitions run :class:`CellPartitionEngine` (stage 2). Both are joined by
in-memory logs that keep every message's wire form. Any partition of either kind crashes
now and then and comes back from what it last wrote (position partitions: their table,
read again from the committed offset; cells partitions: their snapshot). The pairwise
alerts must be those of the in-process engine, and a note sent again under a number must be
the note first sent under it (cells partitions skip notes by number).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from detectors.base import Environment
from detectors.cell_engine import build_cell_engine
from detectors.cell_slotting import EntityStage
from detectors.routing import Router
from models.alert import Alert
from models.position import Position, Reject, VesselStatic
from models.settings import Settings
from streams.cell_partition import CellMessage, CellPartitionEngine, CellRouter, source_id
from streams.cli import load_environment
from streams.embedded import RunReport, merged_items
from streams.partition_engine import PartitionEngine
from streams.wire import Partitioner, entity_key, record_to_wire
from tests.conftest import REPO
from tests.streams.test_cell_partition import in_process, wire

SAMPLE = REPO / "data" / "samples" / "virginia_beach_2020-06-04_to_06.csv.gz"
FRAME = 25
Record = Position | VesselStatic


@dataclass
class PositionSide:
    """One position partition: its log of frames, its table, its committed offset, its engine."""

    log: list[list[dict[str, Any]]]
    table: dict[bytes, bytes] = field(default_factory=dict)
    committed: int = 0
    next: int = 0  # the next offset to read
    engine: Any = None


@dataclass
class CellSide:
    log: list[bytes] = field(default_factory=list)
    snapshot: bytes | None = None
    next: int = 0
    engine: Any = None
    restored: int = -1  # the snapshot's last offset: crashes wait until the partition went past it


class World:
    def __init__(self, settings: Settings, env: Environment, records: list[Record], positions: int, cells: int,
                 seed: int) -> None:  # fmt: skip
        self.settings, self.env, self.rng = settings, env, random.Random(seed)
        probe = build_cell_engine(settings.detectors, env)
        assert probe is not None
        self.probe = probe
        self.route = Router.from_settings(settings).route
        self.positions, self.ncells = positions, cells
        part = Partitioner(positions)
        frames: list[list[list[dict[str, Any]]]] = [[[]] for _ in range(positions)]
        for r in records:
            p = part(entity_key(r))
            if len(frames[p][-1]) == FRAME:
                frames[p].append([])
            frames[p][-1].append(record_to_wire(r))
        for f in frames:
            f.append([])  # the end-of-input marker
        self.input_end = max(r.ts for r in records if isinstance(r, Position))
        self.sources = [source_id("positions.vessel", p) for p in range(positions)]
        self.pos = [PositionSide(f) for f in frames]
        self.cells = [CellSide() for _ in range(cells)]
        for p in range(positions):
            self._start_position(p)
        self.rebuild_counts: Counter[str] = Counter()  # of the cells engines replaced by a restart
        for k in range(cells):
            self._start_cells(k)
        self.alerts: list[Alert] = []
        self.numbered: dict[tuple[str, int, int], bytes] = {}  # (source, cells partition, seq) -> note
        self.crashes = [0, 0]

    # --- position partitions ---------------------------------------------------------------
    def new_engine(self, p: int) -> PartitionEngine:
        pw = self.probe
        return PartitionEngine(
            self.settings, p, self.positions, ("vessel",), [], self.env,
            slotting=EntityStage(pw.pair_detectors, pw.area_detectors, pw.timing, pw.grid),
            cells=CellRouter(self.sources[p], self.ncells),
        )  # fmt: skip

    def _start_position(self, p: int) -> None:
        side = self.pos[p]
        eng = self.new_engine(p)
        eng.restore(list(side.table.items()))
        resume = eng.resume_offset
        side.next = min(side.committed, resume) if resume is not None else side.committed
        side.engine = eng

    def step_position(self, p: int) -> None:
        side = self.pos[p]
        if side.next >= len(side.log):
            return
        offset = side.next
        side.next += 1
        frame = side.log[offset]
        end = offset == len(side.log) - 1
        out = side.engine.push_frame(offset, frame, offset, end, self.input_end if end else None)
        self.alerts += out.alerts
        if end or self.rng.random() < 0.2:
            self.flush_position(p)

    def flush_position(self, p: int) -> None:
        side = self.pos[p]
        self.send(side.engine.progress())
        f = side.engine.flush()
        for key, value in f.writes:
            if value is None:
                side.table.pop(key, None)
            else:
                side.table[key] = value
        acked = [a for a in f.acks if a is not None]
        if acked and self.rng.random() < 0.7:
            side.committed = max(side.committed, max(acked) + 1)

    # --- cells partitions ------------------------------------------------------------------
    def _start_cells(self, k: int) -> None:
        side = self.cells[k]
        if side.engine is not None:
            self.rebuild_counts.update(side.engine.counts)
        pw = self.probe
        eng = CellPartitionEngine(
            pw.pair_detectors, pw.area_detectors, pw.timing, pw.grid, k, self.ncells, self.sources, self.route
        )
        if side.snapshot is not None:
            eng.restore(orjson.loads(side.snapshot))
        side.next = eng.resume_offset  # before ``o`` when pending samples are read again
        side.restored = eng.last_offset
        side.engine = eng

    def step_cells(self, k: int) -> None:
        side = self.cells[k]
        if side.next >= len(side.log):
            return
        offset = side.next
        side.next += 1
        alerts, relays = side.engine.push(offset, orjson.loads(side.log[offset]))
        self.alerts += alerts
        self.send(relays)
        if self.rng.random() < 0.1:
            side.snapshot = orjson.dumps(side.engine.snapshot())

    # --- the cells topic -------------------------------------------------------------------
    def send(self, messages: list[CellMessage]) -> None:
        for partition, _, value in messages:
            raw = orjson.dumps(value)
            src = str(value["src"])
            for seq, note in value.get("notes", ()):
                first = self.numbered.setdefault((src, partition, seq), orjson.dumps(note))
                assert first == orjson.dumps(note), f"{src} sent another note as {seq} to cells partition {partition}"
            self.cells[partition].log.append(raw)

    # --- the run ---------------------------------------------------------------------------
    def busy(self) -> bool:
        return any(s.next < len(s.log) for s in self.pos) or any(s.next < len(s.log) for s in self.cells)

    def run(self, crash_p: float) -> None:
        rng = self.rng
        while self.busy():
            if rng.random() < 0.6:
                p = rng.randrange(self.positions)
                if rng.random() < crash_p and self.pos[p].next < len(self.pos[p].log):
                    self.crashes[0] += 1
                    self._start_position(p)
                self.step_position(p)
            else:
                k = rng.randrange(self.ncells)
                side = self.cells[k]
                if rng.random() < crash_p and side.engine.last_offset > side.restored:
                    self.crashes[1] += 1
                    self._start_cells(k)
                for _ in range(rng.randrange(1, 6)):
                    self.step_cells(k)


@pytest.fixture(scope="module")
def sample_records() -> list[Record]:
    with ExitStack() as stack:
        items = list(merged_items([SAMPLE], None, stack, RunReport()))
    return [r for r in items if not isinstance(r, Reject)]


def finals(alerts: Iterable[Alert]) -> dict[str, dict[str, Any]]:
    best: dict[str, Alert] = {}
    for a in alerts:
        if a.id not in best or a.revision > best[a.id].revision:
            best[a.id] = a
    return {i: a.to_wire() for i, a in best.items()}


@pytest.mark.parametrize(("positions", "cells", "seed", "crash_p"), [(4, 3, 1, 0.0), (4, 3, 2, 0.004), (3, 5, 3, 0.01)])
def test_crashes_of_either_stage_leave_the_pairwise_alerts_as_in_process(
    settings: Settings, sample_records: list[Record], positions: int, cells: int, seed: int, crash_p: float
) -> None:
    env = load_environment(settings)
    expected = in_process(sample_records, settings, env)
    assert any(a.kind == "rendezvous" for a in expected)
    world = World(settings, env, sample_records, positions, cells, seed)
    world.run(crash_p)
    if crash_p:
        assert all(world.crashes), world.crashes
        # snapshots leave pending samples out; restarts read their notes again
        assert world.rebuild_counts["pending_rebuilt"] > 0
    assert world.rebuild_counts["rebuild_incomplete"] == 0
    wire(world.alerts)  # a revision sent twice is the same record
    assert finals(world.alerts) == finals(expected)


def test_stage1_entities_are_written_with_their_tracks_and_only_when_changed(
    settings: Settings, sample_records: list[Record]
) -> None:
    # One position partition: after half the sample, every stage-1 entity is in its track's
    # value (none in the stage-1 value), a fresh engine restored from the table holds the same
    # entities, and the next frame's flush writes only the tracks of the vessels it moved.
    from detectors.state_codec import encode

    env = load_environment(settings)
    world = World(settings, env, sample_records, 1, 1, seed=0)
    side, eng = world.pos[0], world.pos[0].engine
    half = len(side.log) // 2
    while side.next < half:
        world.step_position(0)
    world.flush_position(0)
    values = {k: orjson.loads(v) for k, v in side.table.items()}
    stage1 = max((v for k, v in values.items() if b"#cells|" in k), key=lambda v: v["o"])
    assert stage1["stage"]["entities"] == []
    entities = eng.slotting.entities
    assert len(entities) > 20
    newest: dict[bytes, dict[str, Any]] = {}  # per track, the newer of its two slots
    for k, v in values.items():
        if b"#" not in k and (k[:-2] not in newest or v["o"] > newest[k[:-2]]["o"]):
            newest[k[:-2]] = v
    assert sorted(v["e"]["key"] for v in newest.values() if "e" in v) == sorted(entities)
    fresh = world.new_engine(0)
    fresh.restore(list(side.table.items()))
    assert fresh.counts["stage1_restored"] == 1
    assert {k: encode(v) for k, v in fresh.slotting.entities.items()} == {k: encode(v) for k, v in entities.items()}
    frame = side.log[side.next]
    moved = {r["id"] for r in frame if r.get("type") == "vessel"}
    eng.push_frame(side.next, frame, side.next, False, None)
    eng.progress()  # the frame's notes go out before the checkpoint
    writes = eng.flush().writes
    tracks_written = {k.split(b"|")[2].decode() for k, v in writes if v is not None and b"#" not in k}
    # the vessels of the frame, and the few whose expiry ran: not every entity
    assert moved & tracks_written and len(tracks_written) < len(entities) / 2
    (stage_value,) = [orjson.loads(v) for k, v in writes if v is not None and b"#cells|" in k]
    assert stage_value["stage"]["entities"] == []


def test_stage1_entities_outliving_their_tracks_go_into_the_stage1_value(
    settings: Settings, sample_records: list[Record]
) -> None:
    # Tracks forgotten after 30 min of silence, stage-1 entities kept for hours (dark
    # rendezvous' memory): those entities have no track value to ride with.
    from dataclasses import replace

    from detectors.state_codec import encode

    short = replace(settings, pipeline=replace(settings.pipeline, track_ttl_s=1800.0))
    env = load_environment(settings)
    world = World(short, env, sample_records, 1, 1, seed=0)
    side, eng = world.pos[0], world.pos[0].engine
    while side.next < len(side.log) * 3 // 4:
        world.step_position(0)
    world.flush_position(0)
    orphans = {k for k in eng.slotting.entities if tuple(k.split(":", 1)) not in eng.pipeline.engine.tracks}
    assert orphans
    values = {k: orjson.loads(v) for k, v in side.table.items()}
    stage1 = max((v for k, v in values.items() if b"#cells|" in k), key=lambda v: v["o"])
    assert sorted(e["key"] for e in stage1["stage"]["entities"]) == sorted(orphans)
    fresh = world.new_engine(0)
    fresh.restore(list(side.table.items()))
    assert {k: encode(v) for k, v in fresh.slotting.entities.items()} == {
        k: encode(v) for k, v in eng.slotting.entities.items()
    }
    # and the restored engine keeps writing them
    (again,) = [orjson.loads(v) for k, v in fresh.flush().writes if v is not None and b"#cells|" in k]
    assert sorted(e["key"] for e in again["stage"]["entities"]) == sorted(orphans)
