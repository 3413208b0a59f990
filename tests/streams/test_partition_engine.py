"""The per-partition engine of the worker, without a broker: a log of frames, a table, crashes.

The log is real data (the bundled Virginia Beach sample, first 8,000 positions) split into
partitions and frames the way ``vigiamar feed`` does it. A "table" is a dict that receives
each flush's writes; a crash loses what was not flushed, and may cut the last flush short
(its first writes landed, the rest did not). The restarted engine reads the table and the
log again from the committed offset. The alerts must come out as if nothing happened.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.base import Environment
from detectors.pipeline import NoCells, Pipeline
from detectors.registry import build_track_detectors
from models.alert import Alert
from models.position import Position, Reject
from models.settings import PipelineConfig, Settings
from streams.embedded import RunReport, merged_items
from streams.partition_engine import PartitionEngine
from streams.wire import Partitioner, entity_key, record_from_wire, record_to_wire
from tests.conftest import REPO

SAMPLE = REPO / "data" / "samples" / "virginia_beach_2020-06-04_to_06.csv.gz"
PARTITIONS = 2
FRAME = 40
Log = list[list[dict[str, Any]]]


@pytest.fixture(scope="module")
def short_ttl(settings: Settings) -> Settings:
    """Tracks silent for an hour are removed, so removals (and their tombstones) happen often."""
    return dataclasses.replace(settings, pipeline=PipelineConfig(grace_s=60.0, track_ttl_s=3600.0))


@pytest.fixture(scope="module")
def env(settings: Settings) -> Environment:
    from streams.cli import load_environment

    return load_environment(settings)


@pytest.fixture(scope="module")
def logs() -> dict[int, Log]:
    with ExitStack() as stack:
        items = [i for i in merged_items([SAMPLE], None, stack, RunReport()) if not isinstance(i, Reject)][:8000]
    part = Partitioner(PARTITIONS)
    out: dict[int, Log] = {p: [] for p in range(PARTITIONS)}
    open_frames: dict[int, list[dict[str, Any]]] = {p: [] for p in range(PARTITIONS)}
    for item in items:
        p = part(entity_key(item))
        open_frames[p].append(record_to_wire(item))
        if len(open_frames[p]) == FRAME:
            out[p].append(open_frames.pop(p))
            open_frames[p] = []
    for p, frame in open_frames.items():
        out[p] += [frame] if frame else []
        out[p].append([])  # the end-of-input marker
    return out


def final(alerts: list[Alert]) -> dict[str, Alert]:
    best: dict[str, Alert] = {}
    for a in alerts:
        if a.id not in best or a.revision > best[a.id].revision:
            best[a.id] = a
    return best


_REFERENCE: dict[tuple[int, int], list[Alert]] = {}


def reference(s: Settings, env: Environment, log: Log) -> list[Alert]:
    """The replay pipeline over the partition's records: what the engine must match."""
    key = (id(s), id(log))
    if key not in _REFERENCE:
        pipeline = Pipeline(s, env, cells=NoCells())
        out: list[Alert] = []
        for frame in log:
            for wire in frame:
                out += pipeline.push(record_from_wire(wire))
        _REFERENCE[key] = out + pipeline.finish()
    return _REFERENCE[key]


class Harness:
    """One partition's log, table and committed offset; runs engines over them."""

    def __init__(self, s: Settings, env: Environment, log: Log, partition: int, rng: random.Random) -> None:
        self.s, self.env, self.log, self.partition, self.rng = s, env, log, partition, rng
        self.detectors = build_track_detectors(s.detectors, env, str(s.path))
        self.table: dict[bytes, bytes] = {}
        self.committed = 0
        self.alerts: list[Alert] = []
        self.deletes = 0

    def engine(self) -> PartitionEngine:
        eng = PartitionEngine(self.s, self.partition, PARTITIONS, ("vessel",), self.detectors, self.env)
        eng.restore(list(self.table.items()))
        return eng

    def flush(self, eng: PartitionEngine, landed: float = 1.0) -> None:
        f = eng.flush()
        keep = f.writes if landed >= 1.0 else f.writes[: int(len(f.writes) * landed)]
        for key, value in keep:
            if value is None:
                self.table.pop(key, None)
                self.deletes += 1
            else:
                self.table[key] = value
        if landed >= 1.0 and f.acks and self.rng.random() < 0.6:  # commits run on their own timer
            assert f.acks == sorted(f.acks), "acks go in offset order"
            self.committed = max(self.committed, f.acks[-1] + 1)

    def run(self, start: int, stop: int, eng: PartitionEngine, flush_every: int) -> None:
        for offset in range(start, stop):
            frame = self.log[offset]
            out = eng.push_frame(offset, frame, offset, end_of_input=not frame)
            self.alerts += out.alerts
            assert not out.refused
            if offset % flush_every == 0:
                self.flush(eng)


def test_engine_alone_gives_the_replay_alerts(settings: Settings, env: Environment, logs: dict[int, Log]) -> None:
    for p, log in logs.items():
        h = Harness(settings, env, log, p, random.Random(0))
        h.run(0, len(log), h.engine(), flush_every=5)
        assert final(h.alerts) == final(reference(settings, env, log))
        assert h.alerts, "the sample has alerts in every partition"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_crash_anywhere_loses_and_changes_nothing(
    short_ttl: Settings, env: Environment, logs: dict[int, Log], data: st.DataObject
) -> None:
    p = data.draw(st.sampled_from(sorted(logs)))
    log = logs[p]
    crash_at = data.draw(st.integers(1, len(log) - 1), label="crash before offset")
    landed = data.draw(st.sampled_from([0.0, 0.3, 0.7, 0.99, 1.0]), label="share of the last flush that landed")
    flush_every = data.draw(st.integers(1, 6))
    h = Harness(short_ttl, env, log, p, random.Random(data.draw(st.integers(0, 10**6))))
    eng = h.engine()
    h.run(0, crash_at, eng, flush_every)
    h.flush(eng, landed)  # the crash: this flush was cut short, nothing after it happened
    h.run(h.committed, len(log), h.engine(), flush_every)
    h.flush(eng)

    expected = final(reference(short_ttl, env, log))
    got = final(h.alerts)
    assert got == expected
    # A consumer keeping the highest revision per id sees every revision: no gaps.
    seen: dict[str, set[int]] = {}
    for a in h.alerts:
        seen.setdefault(a.id, set()).add(a.revision)
    assert all(revs == set(range(1, max(revs) + 1)) for revs in seen.values())
    # Every revision that arrives twice arrives identical.
    by_rev: dict[tuple[str, int], Alert] = {}
    for a in h.alerts:
        assert by_rev.setdefault((a.id, a.revision), a) == a


def test_an_offset_committed_beyond_the_table_makes_the_engine_read_again(
    settings: Settings, env: Environment, logs: dict[int, Log]
) -> None:
    """The table came back short (or a commit outran it): the engine seeks back to its checkpoint."""
    log = logs[1]
    h = Harness(settings, env, log, 1, random.Random(3))
    eng = h.engine()
    h.run(0, len(log) // 2, eng, flush_every=4)
    table_before = dict(h.table)
    h.flush(eng)
    h.committed = eng.last_offset + 1  # everything acked and committed...
    h.table = table_before  # ...but the restarted worker reads the table as it was one flush earlier
    eng = h.engine()
    resume = eng.missing_before(h.committed)
    assert resume is not None and resume < h.committed
    h.run(resume, len(log), eng, flush_every=4)  # the missing messages first, then on
    assert final(h.alerts) == final(reference(settings, env, log))
    assert h.engine().missing_before(h.committed) is None  # a normal restart: nothing missing


def test_removed_tracks_leave_the_table(short_ttl: Settings, env: Environment, logs: dict[int, Log]) -> None:
    h = Harness(short_ttl, env, logs[0], 0, random.Random(1))
    eng = h.engine()
    h.run(0, len(h.log), eng, flush_every=2)
    h.flush(eng)
    h.flush(eng)  # removal markers become deletes once a checkpoint covers them
    assert h.deletes > 0
    tracks_in_table = {k.rsplit(b"|", 1)[0] for k in h.table if k != eng.checkpoint_key}
    assert len(tracks_in_table) == len(eng.pipeline.engine.tracks)
    assert all(b'"deleted"' not in v for v in h.table.values())


def test_messages_are_acked_only_once_released_and_flushed(settings: Settings, env: Environment) -> None:
    eng = PartitionEngine(settings, 0, 1, ("vessel",), env=env)
    fix = {"type": "vessel", "id": "367584050", "lat": 36.9, "lon": -75.5}
    eng.push_frame(0, [{**fix, "time": "2020-06-04T10:00:00Z"}], "m0")
    eng.push_frame(1, [{**fix, "time": "2020-06-04T10:00:30Z"}], "m1")
    assert eng.flush().acks == []  # both still inside the grace period
    eng.push_frame(2, [{**fix, "time": "2020-06-04T10:01:05Z"}], "m2")  # watermark 10:00:05 releases m0
    assert eng.flush().acks == ["m0"]
    eng.push_frame(3, [], "m3", end_of_input=True)
    assert eng.flush().acks == ["m1", "m2", "m3"]
    # Read again after a rebalance: acknowledged again, never processed twice.
    out = eng.push_frame(2, [{**fix, "time": "2020-06-04T10:01:05Z"}], "m2-again")
    assert out.redelivered and out.records == 0
    assert eng.flush().acks == ["m2-again"]


def test_bad_records_are_refused_one_by_one_and_the_rest_goes_on(settings: Settings, env: Environment) -> None:
    part = Partitioner(4)
    mine = next(str(m) for m in range(367584000, 367585000) if part(str(m)) == 1)
    other = next(str(m) for m in range(367584000, 367585000) if part(str(m)) != 1)
    fix: Callable[[str, str], dict[str, Any]] = lambda ident, t: {  # noqa: E731
        "type": "vessel", "id": ident, "lat": 36.9, "lon": -75.5, "time": f"2020-06-04T{t}Z",
    }  # fmt: skip
    eng = PartitionEngine(settings, 1, 4, ("vessel",), env=env)
    frame = [
        fix(mine, "10:00:00"),
        {"type": "vessel", "id": mine, "lat": 95.0, "lon": 0.0, "time": "2020-06-04T10:00:01Z"},
        "not an object",
        fix(other, "10:00:02"),
        {**fix(mine, "10:00:03"), "type": "aircraft"},
        fix(mine, "10:00:00"),  # exact duplicate: refused by cleaning once released
        fix(mine, "10:05:00"),
    ]
    out = eng.push_frame(7, frame, None)
    reasons = {r.index: r.reason for r in out.refused}
    assert reasons == {
        1: "lat_out_of_range",
        2: "not_an_object",
        3: "wrong_partition",
        4: "wrong_topic",
        5: "duplicate",
    }
    assert all(r.offset == 7 for r in out.refused)
    assert out.records == 3
    assert [p.entity_id for p in [record_from_wire(frame[0])] if isinstance(p, Position)] == [mine]


def test_every_partition_finishes_at_the_end_of_the_whole_input(settings: Settings, env: Environment) -> None:
    """Replay expires every track at the newest event time of the whole input; a partition
    whose own records end hours earlier must too (the end-of-input marker carries that time)."""
    with ExitStack() as stack:
        items = [i for i in merged_items([SAMPLE], None, stack, RunReport()) if not isinstance(i, Reject)][:8000]
    end = max(i.ts for i in items)
    part = Partitioner(PARTITIONS)
    items = [i for i in items if part(entity_key(i)) != 0 or i.ts <= end - 3 * 3600]  # partition 0 stops early
    wires = {p: [record_to_wire(i) for i in items if part(entity_key(i)) == p] for p in range(PARTITIONS)}
    pipeline = Pipeline(settings, env, cells=NoCells())
    expected: list[Alert] = []
    for item in items:
        expected += pipeline.push(item)
    expected += pipeline.finish()

    def worker(input_end: float | None) -> list[Alert]:
        got: list[Alert] = []
        for p in range(PARTITIONS):
            detectors = build_track_detectors(settings.detectors, env, str(settings.path))
            eng = PartitionEngine(settings, p, PARTITIONS, ("vessel",), detectors, env)
            wire = wires[p]
            frames = [wire[k : k + FRAME] for k in range(0, len(wire), FRAME)]
            for offset, frame in enumerate(frames):
                got += eng.push_frame(offset, frame, offset).alerts
            got += eng.push_frame(len(frames), [], None, end_of_input=True, input_end=input_end).alerts
        return got

    assert final(worker(end)) == final(expected)
    # The partition's own end is not enough: tracks silent since partition 0's last record
    # (gaps, loitering windows) would stay as they were three hours before the end.
    assert final(worker(None)) != final(expected)
