"""The cell engine split over partitions: stage 1 per position partition, stage 2 per cells partition.

Messages go through their wire form (orjson) into per-partition logs, read at uneven paces,
with cells partitions restarted from their snapshots: the pairwise alerts must be exactly
those of the in-process engine (every revision, whole records).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from typing import Any

import orjson
import pytest

from detectors.base import Environment
from detectors.cell_engine import build_cell_engine
from detectors.cell_records import SampleNote, note_from_wire
from detectors.cell_slotting import EntityStage, SlottingOnly
from detectors.pipeline import Pipeline
from detectors.routing import Router
from models.alert import Alert
from models.errors import DecodeError
from models.position import Position, Reject, VesselStatic
from models.settings import Settings
from streams.cell_partition import CellMessage, CellPartitionEngine, CellRouter, source_id
from streams.cli import load_environment
from streams.embedded import RunReport, merged_items
from streams.wire import Partitioner, entity_key
from tests.conftest import REPO
from tests.detectors.test_cell_engine import T0, destination, fixes, merged

SAMPLE = REPO / "data" / "samples" / "virginia_beach_2020-06-04_to_06.csv.gz"
PAIRWISE = {"rendezvous", "dark_rendezvous", "air_sea_rendezvous"}
Record = Position | VesselStatic


def in_process(records: Iterable[Record], settings: Settings, env: Environment) -> list[Alert]:
    pipeline = Pipeline(settings, env, detectors=[])
    alerts: list[Alert] = []
    for r in records:
        alerts += pipeline.push(r)
    return alerts + pipeline.finish()


class Split:
    """Position partitions (pipeline + stage 1) and cells partitions (stage 2), joined by logs."""

    def __init__(
        self, settings: Settings, env: Environment, positions: int, cells: int, seed: int, crash_every: int
    ) -> None:
        self.settings, self.env = settings, env
        # a crash (back to the last snapshot) every ``crash_every`` messages read, a snapshot 4 x as often
        self.crash_every = crash_every
        self.taken = 0
        self.rng = random.Random(seed)
        probe = build_cell_engine(settings.detectors, env)
        assert probe is not None
        self.probe = probe
        self.part = Partitioner(positions)
        self.router = Router.from_settings(settings)
        self.pipelines: list[Pipeline] = []
        self.stages: list[EntityStage] = []
        for _ in range(positions):
            stage = EntityStage(probe.pair_detectors, probe.area_detectors, probe.timing, probe.grid)
            self.stages.append(stage)
            self.pipelines.append(Pipeline(settings, env, detectors=[], cells=SlottingOnly(stage)))
        self.sources = [source_id("positions.vessel", p) for p in range(positions)]
        self.routers = [CellRouter(s, cells) for s in self.sources]
        self.ncells = cells
        self.engines = [self._engine(k) for k in range(cells)]
        self.logs: list[list[bytes]] = [[] for _ in range(cells)]
        self.read = [0] * cells
        self.snapshots: list[bytes | None] = [None] * cells
        self.alerts: list[Alert] = []
        self.restarts = 0

    def _engine(self, k: int) -> CellPartitionEngine:
        p = self.probe
        return CellPartitionEngine(
            p.pair_detectors, p.area_detectors, p.timing, p.grid, k, self.ncells, self.sources, self.router.route
        )

    def send(self, messages: list[CellMessage]) -> None:
        for partition, _, value in messages:
            self.logs[partition].append(orjson.dumps(value))
            if str(value["src"]).startswith("cells/") and self.rng.random() < 0.5:  # a relay, handed over
                alerts, relays = self.engines[partition].deliver(orjson.loads(orjson.dumps(value)))
                self.alerts += alerts
                self.send(relays)

    def push(self, record: Record) -> None:
        ident = entity_key(record)
        p = self.part(ident)
        self.pipelines[p].push(record)
        if self.rng.random() < 0.5:  # sent at once, or held for the next progress (as the worker does)
            self.send(self.routers[p].messages(self.stages[p].drain()))
        else:
            self.routers[p].hold(self.stages[p].drain())
        if self.rng.random() < 0.01:
            q = self.rng.randrange(len(self.pipelines))
            self.send(self.routers[q].progress(self.pipelines[q].watermark, False))
        self.consume(self.rng.randrange(len(self.engines)), self.rng.randrange(4))

    def finish(self) -> None:
        for p, pipeline in enumerate(self.pipelines):
            pipeline.finish()
            self.routers[p].hold(self.stages[p].drain())
            self.send(self.routers[p].progress(pipeline.buffer.max_ts, True))
        while any(self.read[k] < len(self.logs[k]) for k in range(len(self.engines))):
            for k in range(len(self.engines)):
                self.consume(k, len(self.logs[k]) - self.read[k])

    def consume(self, k: int, n: int) -> None:
        engine = self.engines[k]
        for _ in range(n):
            offset = self.read[k]
            if offset >= len(self.logs[k]):
                return
            self.read[k] += 1
            alerts, relays = engine.push(offset, orjson.loads(self.logs[k][offset]))
            self.alerts += alerts
            self.send(relays)
            if engine.last_offset != offset:
                continue  # read again for its pending samples: crashes count new messages only
            self.taken += 1
            if self.taken % (self.crash_every // 4) == 0:
                self.snapshots[k] = orjson.dumps(engine.snapshot())
            elif self.taken % self.crash_every == 1 and self.snapshots[k] is not None:  # back to the last snapshot
                self.engines[k] = engine = self._engine(k)
                engine.restore(orjson.loads(self.snapshots[k] or b"{}"))
                self.read[k] = engine.resume_offset
                self.restarts += 1


def records_of(settings: Settings) -> list[Record]:
    with ExitStack() as stack:
        items = list(merged_items([SAMPLE], None, stack, RunReport()))
    return [r for r in items if not isinstance(r, Reject)]


def wire(alerts: list[Alert]) -> list[dict[str, Any]]:
    """Every revision once (one sent again after a restart must be the same record), in order."""
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    for a in alerts:
        assert seen.setdefault((a.id, a.revision), a.to_wire()) == a.to_wire()
    return [seen[k] for k in sorted(seen)]


def run_split(
    records: list[Record], settings: Settings, env: Environment, positions: int, cells: int, seed: int, crash_every: int
) -> Split:
    split = Split(settings, env, positions, cells, seed, crash_every)
    for r in records:
        split.push(r)
    split.finish()
    return split


@pytest.mark.parametrize(("positions", "cells", "seed"), [(4, 3, 1)])
def test_the_split_engine_gives_the_alerts_of_the_in_process_one_on_the_sample(
    settings: Settings, positions: int, cells: int, seed: int
) -> None:
    env = load_environment(settings)
    records = records_of(settings)
    expected = in_process(records, settings, env)
    kinds = {a.kind for a in expected}
    assert kinds <= PAIRWISE and "rendezvous" in kinds  # the sample's 2 rendezvous (``make run``)
    split = run_split(records, settings, env, positions, cells, seed, 701)
    assert split.restarts > 0
    assert sum(e.counts["duplicate_notes"] for e in split.engines) > 0 or split.restarts == 0
    assert wire(split.alerts) == wire(expected)


def test_handoffs_and_reappearances_across_cells_partitions(settings: Settings) -> None:
    """A pair drifting east across several cells (its states relayed between partitions), and
    a vessel going dark beside a loiterer and reappearing 2 cells away."""
    env = Environment()
    lat2, lon2 = destination(37.02, -76.04, 0.0, 150.0)
    drift = merged(
        fixes("367000001", T0, T0 + 6 * 3600, 30, 37.02, -76.04, speed_kn=1.5),
        fixes("367000002", T0 + 11, T0 + 6 * 3600, 45, lat2, lon2, speed_kn=1.5),
    )
    la, lo = destination(36.5, -74.5, 90.0, 400.0)
    loiter = fixes("367100001", T0, T0 + 8 * 3600, 60, 36.5, -74.5, speed_kn=0.5, course_deg=0.0)
    dark = fixes("367100002", T0, T0 + 3600, 60, la, lo, speed_kn=0.5, course_deg=0.0)
    back = fixes("367100002", T0 + 4 * 3600, T0 + 5 * 3600, 60, la, lo + 0.12, speed_kn=0.5, course_deg=0.0)
    records: list[Record] = sorted([*drift, *loiter, *dark, *back], key=lambda p: (p.ts, p.entity_id))
    expected = in_process(records, settings, env)
    assert {a.kind for a in expected} == {"rendezvous", "dark_rendezvous"}
    relayed_closed: list[int] = []
    for cells in (2, 3, 7):
        split = run_split(records, settings, env, 2, cells, cells, 53)
        assert wire(split.alerts) == wire(expected)
        sent = sum((e.stage.counts for e in split.engines), Counter[str]())
        assert sent["states_sent"] > 0  # pair states went between cells partitions
        relayed_closed.append(sent["closed_sent"])
    assert max(relayed_closed) == 1  # the reappearance 2 cells away, for one split at least


def test_a_silent_position_partition_stops_holding_pairwise_back_after_the_idle_time(settings: Settings) -> None:
    """An unused partition (an air topic with no aircraft) must not block rendezvous alerts for ever,
    and a pause of the whole feed must not make anyone idle."""
    probe = build_cell_engine(settings.detectors, Environment())
    assert probe is not None
    now = [1000.0]
    sources = [source_id("positions.vessel", 0), source_id("positions.air", 0)]

    def engine(idle_s: float, clock: list[float] = now) -> CellPartitionEngine:
        p = probe
        return CellPartitionEngine(
            p.pair_detectors, p.area_detectors, p.timing, p.grid, 0, 1, sources, idle_source_s=idle_s,
            clock=lambda: clock[0],
        )  # fmt: skip

    vessel, air = CellRouter(sources[0], 1), CellRouter(sources[1], 1)
    paused_clock = [1000.0]
    waits, idles, paused = engine(0.0), engine(300.0), engine(300.0, paused_clock)
    for e in (waits, idles, paused):
        e.deliver(vessel.progress(T0, False)[0][2])
    assert waits.watermark == idles.watermark == float("-inf")  # the air partition may still send
    # A pause of the whole feed (nothing for an hour), then the vessel partition speaks again.
    paused_clock[0] += 3600.0
    paused.deliver(vessel.progress(T0 + 10, False)[0][2])
    assert paused.watermark == float("-inf") and paused.counts["idle_sources"] == 0
    # The vessel partition sends every 10 s; the air partition stays silent.
    for k in range(1, 31):
        now[0] += 10.0
        for e in (waits, idles):
            e.deliver(vessel.progress(T0 + 60 * k, False)[0][2])
        if k == 29:
            assert idles.watermark == float("-inf")  # 290 s: not idle yet
    assert waits.watermark == float("-inf")  # idleness off: waits for ever
    assert idles.watermark == T0 + 1800 and idles.counts["idle_sources"] == 1
    # The air partition speaks again: it counts again from then on.
    idles.deliver(air.progress(T0 + 30, False)[0][2])
    assert idles.watermark == T0 + 30 and idles.counts["idle_sources"] == 0
    # A source it was not built for never holds it back.
    idles.deliver(CellRouter("positions.bogus/9", 1).progress(0.0, False)[0][2])
    assert idles.watermark == T0 + 30 and idles.counts["unknown_sources"] == 1


def test_held_notes_go_out_with_the_progress_numbered_as_made_and_split_when_many(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import streams.cell_partition as cp

    monkeypatch.setattr(cp, "MAX_NOTES", 4)
    probe = build_cell_engine(settings.detectors, Environment())
    assert probe is not None
    p = probe
    stage = EntityStage(p.pair_detectors, p.area_detectors, p.timing, p.grid)
    pipeline = Pipeline(settings, Environment(), detectors=[], cells=SlottingOnly(stage))
    for pos in fixes("367000001", T0, T0 + 600, 60, 36.9, -75.5, speed_kn=0.5):
        pipeline.push(pos)
    notes = stage.drain()
    assert len(notes) >= 5
    held, direct = CellRouter("positions.vessel/0", 3), CellRouter("positions.vessel/0", 3)
    held.hold(notes[:3])
    held.hold(notes[3:])
    assert held.held == sum(len(v["notes"]) for _, _, v in direct.messages(notes)) > 0
    out = held.progress(T0 + 600, False)
    assert held.held == 0 and held.seqs == direct.seqs
    # the same notes with the same numbers as when sent at once, at most 4 to a message
    by_partition: dict[int, list[Any]] = {}
    for part, _, value in out:
        assert value["src"] == "positions.vessel/0" and len(value.get("notes", ())) <= 4
        by_partition.setdefault(part, []).extend(value.get("notes", ()))
    fresh = CellRouter("positions.vessel/0", 3)
    expected: dict[int, list[Any]] = {}
    for part, _, value in fresh.messages(notes):
        expected.setdefault(part, []).extend(value["notes"])
    assert {k: v for k, v in by_partition.items() if v} == expected
    # every cells partition gets the watermark once, on its last message
    marks = [(part, i) for i, (part, _, value) in enumerate(out) if "wm" in value]
    assert sorted(part for part, _ in marks) == [0, 1, 2]
    for part, i in marks:
        assert all(q != part for q, _, _ in out[i + 1 :])
        assert out[i][2]["done"] is False
    assert any(len(v.get("notes", ())) == 4 for _, _, v in out)  # some partition needed two messages
    # nothing held: the next progress is the watermark alone
    assert [sorted(v) for _, _, v in held.progress(T0 + 700, True)] == [["done", "src", "wm"]] * 3


def test_relays_merge_per_partition_and_source_in_order_within_the_size_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.cell_partition as cp

    def relay(partition: int, src: str, *seqs: int, pad: int = 0) -> CellMessage:
        return (partition, b"1/2", {"src": src, "notes": [[n, {"ps": 0, "k": "x" * pad}] for n in seqs]})

    wm = (1, b"", {"src": "cells/0", "wm": 5.0, "done": False})
    messages = [relay(1, "cells/0", 1, 2), relay(2, "cells/0", 1), wm, relay(1, "cells/0", 3), relay(1, "cells/3", 1)]
    out = cp.merge_messages(messages)
    assert [(p, v["src"], [n for n, _ in v.get("notes", ())]) for p, _, v in out] == [
        (1, "cells/0", [1, 2, 3]), (2, "cells/0", [1]), (1, "cells/0", []), (1, "cells/3", [1]),
    ]  # fmt: skip
    assert out[2][2] is wm[2]  # a message with a watermark is left as it is
    monkeypatch.setattr(cp, "MAX_NOTES", 2)
    assert [[n for n, _ in v["notes"]] for _, _, v in cp.merge_messages([relay(1, "cells/0", 1, 2, 3, 4, 5)])] == [
        [1, 2], [3, 4], [5],
    ]  # fmt: skip
    monkeypatch.setattr(cp, "MAX_NOTES", 1000)
    monkeypatch.setattr(cp, "MERGED_BYTES", 1000)
    big = cp.merge_messages([relay(1, "cells/0", *range(1, 8), pad=300)])
    assert [[n for n, _ in v["notes"]] for _, _, v in big] == [[1, 2, 3], [4, 5, 6], [7]]
    assert all(len(orjson.dumps(v)) < 1100 for _, _, v in big)
    huge = cp.merge_messages([relay(1, "cells/0", 1, pad=5000)])  # one relay over the limit still goes, alone
    assert [[n for n, _ in v["notes"]] for _, _, v in huge] == [[1]]


def test_a_checkpoint_refuses_to_number_notes_not_yet_sent(settings: Settings) -> None:
    from streams.partition_engine import PartitionEngine
    from streams.wire import record_to_wire

    probe = build_cell_engine(settings.detectors, Environment())
    assert probe is not None
    p = probe
    eng = PartitionEngine(
        settings, 0, 1, ("vessel",), [], Environment(),
        slotting=EntityStage(p.pair_detectors, p.area_detectors, p.timing, p.grid),
        cells=CellRouter("positions.vessel/0", 2),
    )  # fmt: skip
    frame = [record_to_wire(pos) for pos in fixes("367000001", T0, T0 + 600, 60, 36.9, -75.5, speed_kn=0.5)]
    eng.push_frame(0, frame, "m0")
    assert eng.cell_router is not None and eng.cell_router.held
    with pytest.raises(RuntimeError, match="progress"):
        eng.flush()
    sent = eng.progress()
    assert sum(len(v.get("notes", ())) for _, _, v in sent) > 0
    assert eng.flush().writes


def test_a_cells_message_out_of_range_is_rejected_whole(settings: Settings) -> None:
    probe = build_cell_engine(settings.detectors, Environment())
    assert probe is not None
    p = probe
    e = CellPartitionEngine(p.pair_detectors, p.area_detectors, p.timing, p.grid, 0, 1, ["positions.vessel/0"])
    stage = EntityStage(p.pair_detectors, p.area_detectors, p.timing, p.grid)
    pipeline = Pipeline(settings, Environment(), detectors=[], cells=SlottingOnly(stage))
    for pos in fixes("367000001", T0, T0 + 600, 60, 36.9, -75.5, speed_kn=0.5):
        pipeline.push(pos)
    (_, _, good), *_ = CellRouter("positions.vessel/0", 1).messages(stage.drain())
    seq, note = good["notes"][0]
    sample, deliveries, handoffs = note  # the compact form: [sample fields, deliveries, handoffs]
    broken_samples = [
        [*sample[:1], bad, *sample[2:]] for bad in ("nan", "inf", float("nan"), float("inf"), None, "x")
    ]  # the slot time
    broken_samples += [
        ["367000001", *sample[1:]],  # a key without its entity type
        ["ship:367000001", *sample[1:]],  # an entity type there is not
        [None, *sample[1:]],
        sample[:-1],  # a field short
        [*sample[:5], "home", *sample[6:]],  # the home cell
    ]
    for bad_sample in broken_samples:
        with pytest.raises(DecodeError):
            e.deliver({**good, "notes": [[seq, [bad_sample, deliveries, handoffs]]]})
    for bad_deliveries in ([[99, [1]]], [[0, "12"]], [[0, [1.5]]], "x"):
        with pytest.raises(DecodeError):
            e.deliver({**good, "notes": [[seq, [sample, bad_deliveries, handoffs]]]})
    with pytest.raises(DecodeError):
        e.deliver({**good, "notes": [[seq, [sample, deliveries]]]})
    assert e.stage.cells == {} and e.applied == {}  # nothing of a rejected message was applied


def test_sample_notes_in_the_dict_form_of_earlier_versions_still_read(settings: Settings) -> None:
    """A cells topic written before the compact form (a rolling upgrade) is read as it was."""
    probe = build_cell_engine(settings.detectors, Environment())
    assert probe is not None
    stage = EntityStage(probe.pair_detectors, probe.area_detectors, probe.timing, probe.grid)
    pipeline = Pipeline(settings, Environment(), detectors=[], cells=SlottingOnly(stage))
    for pos in fixes("367000001", T0, T0 + 600, 60, 36.9, -75.5, speed_kn=0.5):
        pipeline.push(pos)
    notes = [n for n in stage.drain() if isinstance(n, SampleNote)]
    assert notes
    for note in notes:
        s = note.sample
        old = {
            "s": {
                "k": s.key, "e": s.etype, "i": s.eid, "ts": s.ts, "lat": s.lat, "lon": s.lon, "v": s.speed_kn,
                "h": s.home, "g": s.gap_s, "n": s.name, "st": s.ship_type, "ns": s.nav_status, "alt": s.altitude_ft,
            },
            "d": [[ch, cids] for ch, cids in note.deliveries],
            "ho": [list(h) for h in note.handoffs],
        }  # fmt: skip
        assert note_from_wire(orjson.loads(orjson.dumps(old))) == note
        assert note_from_wire(orjson.loads(orjson.dumps(note.to_wire()))) == note
    broken = dict(old, s={**old["s"], "ts": "nan"})
    with pytest.raises(DecodeError):
        note_from_wire(broken)
