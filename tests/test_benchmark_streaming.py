"""The streaming benchmark imports, parses its options and runs its no-Kafka part on a few hundred rows.

No broker and no timing assertions: speed is measured by ``make bench``, never by tests.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from benchmarks import NAMES, Figure, format_table, streaming
from benchmarks import __main__ as bench_main
from benchmarks._broker import PAIRWISE, write_settings
from models.settings import load_settings
from tests.conftest import REPO

AIS_SAMPLE = REPO / "data" / "samples" / "virginia_beach_2020-06-04_to_06.csv.gz"


def test_the_command_line_takes_the_streaming_options() -> None:
    assert "streaming" in NAMES
    args = bench_main.build_parser().parse_args(
        ["streaming", "--rate", "5000", "--workers", "1,2,4", "--baseline-limit", "300", "--latency-s", "5",
         "--kafka", "flush_interval_s=5,frame_size=1000", "--fetch-wait-ms", "50", "--limit", "2000",
         "--no-pairwise"]
    )  # fmt: skip
    assert args.names == ["streaming"] and args.limit == 2000
    assert bench_main.streaming_options(args) == {
        "rate": 5000.0,
        "workers": (1, 2, 4),
        "baseline_limit": 300,
        "latency_s": 5.0,
        "kafka": {"flush_interval_s": 5, "frame_size": 1000},
        "fetch_wait_ms": 50,
        "pairwise": False,
    }
    assert bench_main.streaming_options(bench_main.build_parser().parse_args(["streaming"])) == {}


@pytest.mark.parametrize("text", ["", "0", "1,-2", "x"])
def test_worker_counts_must_be_positive_integers(text: str) -> None:
    with pytest.raises(ValueError):
        streaming.parse_counts(text)


def test_kafka_overrides_are_numbers_and_bad_ones_are_refused() -> None:
    assert streaming.parse_overrides("flush_interval_s=0.5, frame_size=200") == {
        "flush_interval_s": 0.5,
        "frame_size": 200,
    }
    for bad in ("flush_interval_s", "=3", "frame_size=many"):
        with pytest.raises(ValueError):
            streaming.parse_overrides(bad)


def test_percentile_interpolates_and_is_nan_without_values() -> None:
    assert streaming.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert streaming.percentile([0.0, 10.0], 0.99) == pytest.approx(9.9)
    assert math.isnan(streaming.percentile([], 0.5))


def test_the_latency_run_slows_to_what_one_worker_sustained() -> None:
    assert streaming.latency_rate(10_000, None) == (10_000, "")
    assert streaming.latency_rate(10_000, 12_000) == (10_000, "")
    rate, why = streaming.latency_rate(10_000, 4_000)
    assert rate == 2_800 and "4,000" in why


def test_group_generation_is_read_from_a_worker_log_once_its_recovery_completed() -> None:
    joined = "[..] Joined group 'vigiamar' (generation 3) with member_id x\n"
    assert streaming._generation(joined) is None
    assert streaming._generation(joined + "[..] [^---Recovery]: Recovery complete\n") == 3
    assert streaming._generation("nothing yet") is None


def test_the_cpu_split_adds_up_to_the_process_time() -> None:
    probe = {"process_s": 1.0, "main_s": 0.9, "push_s": 0.6, "flush_s": 0.1, "decode_s": 0.05}
    note = streaming.split_note(probe, 10_000)
    assert "engine+detectors 60" in note and "faust+Kafka client+glue 25" in note and "client threads 10" in note
    assert streaming.split_note({}, 10_000) == ""
    cells = {**probe, "cells_s": 0.1, "cells_json_s": 0.02, "cells_snapshot_s": 0.01}
    note = streaming.split_note(cells, 10_000)
    assert (
        "cells stage 10, cells codec 2, cells snapshots 1 (0 cells messages sent, 0 read), faust+Kafka client+glue 12"
        in note
    )


def test_the_headline_judges_each_latency_run_against_the_target() -> None:
    def latency(p99_s: float, shipped: bool) -> Figure:
        extra = {"rate": 10_000.0, "p50_s": 0.2, "p99_s": p99_s, "shipped": shipped}
        return Figure("streaming", "latency run", 60_000, 6.0, 4_000.0, extra=extra)

    lines = bench_main.streaming_headline([latency(0.33, False), latency(1.2, True)])
    assert lines == [
        "streaming, event->alert at 10,000 positions/s: p50 200 ms, p99 330 ms (target p99 < 1 s: reached)",
        "streaming, event->alert at 10,000 positions/s (as shipped, cells stage on; per-track alerts): "
        "p50 200 ms, p99 1,200 ms (target p99 < 1 s: not reached)",
    ]


def test_settings_for_the_broker_load_with_overrides_and_no_pairwise_detectors(tmp_path: Path) -> None:
    settings = load_settings(write_settings(tmp_path, kafka={"frame_size": 7}, topics={"partitions": 3}))
    assert settings.extra["kafka"]["frame_size"] == 7 and settings.extra["topics"]["partitions"] == 3
    assert all(not settings.detectors[name].get("enabled", True) for name in PAIRWISE if name in settings.detectors)


def test_the_no_kafka_part_runs_on_a_few_hundred_positions(tmp_path: Path) -> None:
    figures = streaming.run(AIS_SAMPLE, limit=400, offline_only=True)
    assert [f.case.split(":")[0] for f in figures] == ["no Kafka"] * 6
    for f in figures:
        assert isinstance(f, Figure) and f.positions == 400 and f.seconds > 0 and f.rate > 0
    assert all(format_table(figures))
    cells = figures[-1]
    assert cells.case == "no Kafka: cells partitions (pairwise detectors)"
    messages = int(cells.note.split(" messages of notes", 1)[0].rsplit(" ", 1)[1].replace(",", ""))
    assert messages >= 8 * 8  # at least every cells partition's final progress from every position partition
    per_track = streaming.run(AIS_SAMPLE, limit=400, offline_only=True, pairwise=False)
    assert [f.case for f in per_track] == [f.case for f in figures[:-1]]


def test_each_record_goes_to_the_partition_and_frame_the_feed_gives_it(tmp_path: Path) -> None:
    settings = load_settings(write_settings(tmp_path, kafka={"frame_size": 3}, topics={"partitions": 2}))
    records = streaming.load_records(AIS_SAMPLE, 40)
    plan = streaming.frame_plan(records, settings)
    wheres = streaming.destinations(records, settings)
    seen = sorted(i for frames in plan.values() for frame in frames for i in frame)
    assert seen == list(range(len(records)))
    for where, frames in plan.items():
        assert all(len(f) == 3 for f in frames[:-1]) and 1 <= len(frames[-1]) <= 3
        assert all(wheres[i] == where for f in frames for i in f)
        assert [i for f in frames for i in f] == sorted(i for f in frames for i in f)  # input order


def test_the_run_ends_when_every_expected_revision_arrived() -> None:
    """With the cells stage on, the last checkpoints are not the end: pairwise alerts follow them."""
    watcher = object.__new__(streaming.Watcher)
    watcher.lock = threading.Lock()
    watcher.checkpoints = {("positions.vessel", 0): (9, 100.0)}
    watcher.arrivals = {("rendezvous-a", 1): 101.0}
    ends = {("positions.vessel", 0): 9}
    assert watcher.done_at(ends) == 100.0
    assert watcher.done_at(ends, {("rendezvous-a", 1), ("rendezvous-a", 2)}) is None
    watcher.arrivals[("rendezvous-a", 2)] = 103.5
    assert watcher.done_at(ends, {("rendezvous-a", 1), ("rendezvous-a", 2)}) == 103.5
    watcher.checkpoints[("positions.vessel", 0)] = (8, 104.0)  # a checkpoint short of the end offset
    assert watcher.done_at(ends, {("rendezvous-a", 1)}) is None
