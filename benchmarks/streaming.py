"""streaming: ``vigiamar worker`` on a local broker against a plain faust agent, and event→alert latency.

One run starts its own Tansu broker (a fresh one per phase, as the Kafka tests do, see
:mod:`benchmarks._broker`) and measures, on the same positions (the first ``--limit`` of
the input, decoded before any clock starts):

    no Kafka     CPU time of the worker's parts without faust or a broker: the feed's
                 encoding, the worker's codec (orjson frame → records), the partition
                 engine (reorder, cleaning, track state) without and with the worker's
                 track detectors, and the state flushes. Their sum is what one core could do.
    baseline     a plain faust agent (vigiamar's broker settings) doing one table update
                 per position, one position per message (``benchmarks._faust_baseline``):
                 positions/s from the first produce to the last message processed.
    worker ×k    ``vigiamar worker`` subprocesses (k = each of ``--workers``) fed by the
                 feed's :class:`streams.feed.FramePublisher` (frames of ``kafka.frame_size``
                 positions) at full speed, then the end-of-input markers: positions/s from
                 the first produce to the last partition's final checkpoint on the state
                 changelog (written after every alert of that partition went out).
    latency      one worker fed at a steady ``--rate``: for each alert revision, its
                 arrival on the ``alerts`` topic minus the time the feed took the position
                 whose push emitted it (found by running the same partition engines without
                 Kafka first); p50 / p99, and the part spent waiting in the feed's frame.

Times here are wall-clock seconds (the pipeline spans processes), except the no-Kafka
rows, which are CPU seconds of this process. ``ratio`` is a row's speed over the baseline's,
measured in the same run. Worker settings are the shipped ones (``config/vigiamar.toml``),
except a 6 s group session timeout (a group's first assignment on Tansu waits about half of
it; no timed window contains a group join) and the pairwise detectors (the worker's cells
stage), left out so the figures measure the per-track path; ``density`` measures their cost.
More rows run the same worker counts as shipped, cells stage on, until every alert revision
``vigiamar replay`` gives for the same positions has arrived, and a second latency run
(``pairwise=False`` skips them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks import REPO, SAMPLES, SHARED_DATA, Figure, clock, data_file
from benchmarks._broker import stop, tansu_broker, write_settings
from models.position import Reject
from models.settings import Settings, load_settings
from streams.wire import Partitioner, Record, encode_frame, entity_key, entity_type, record_to_wire

NAME = "streaming"
DEFAULT_LIMIT = 60_000  # positions
DEFAULT_RATE = 10_000.0  # positions/s of the latency run
DEFAULT_WORKERS = (1, 2)
DEFAULT_BASELINE_LIMIT = 10_000  # positions through the baseline agent (about 10 s at its speed here)
DEFAULT_LATENCY_S = 15.0  # length of the steady-rate run, at most (the input may end first)
FLUSH_EVERY_FRAMES = 4  # no-Kafka flushes: about what the worker's 1 s interval gives at ~15k positions/s
BENCH_KAFKA = {"session_timeout_s": 6.0, "heartbeat_interval_s": 1.0}
READY_TIMEOUT_S = 90.0
PROBE_ENV = "VIGIAMAR_BENCH_PROBE"  # benchmarks._worker_probe.ENV
LATENCY_SHIPPED = "latency as shipped"  # cells stage on


def default_input() -> Path:
    return data_file(
        SHARED_DATA / "ais" / "us_coastal_2020-06-30.csv.gz",
        SAMPLES / "virginia_beach_2020-06-04_to_06.csv.gz",
    )


def parse_counts(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` → ``(1, 2, 4)``: worker counts, each at least 1."""
    counts = tuple(int(x) for x in text.split(",") if x.strip())
    if not counts or min(counts) < 1:
        raise ValueError(f"worker counts must be positive integers: {text!r}")
    return counts


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def load_records(path: Path, limit: int | None) -> list[Record]:
    """The first ``limit`` records of the input (rejects left out), decoded as the feed decodes them."""
    from streams.embedded import RunReport, merged_items

    out: list[Record] = []
    with contextlib.ExitStack() as stack:
        for item in merged_items([path], None, stack, RunReport()):
            if not isinstance(item, Reject):
                out.append(item)
                if limit is not None and len(out) >= limit:
                    break
    return out


# --- the partitions and frames the feed writes ------------------------------------------------
Where = tuple[str, int]  # (topic, partition)


def destinations(records: Sequence[Record], settings: Settings) -> list[Where]:
    """The (topic, partition) each record goes to, as :class:`FramePublisher` places it."""
    from streams.topics import stream_settings

    topics = stream_settings(settings).topics
    partitioner = Partitioner(topics.partitions)
    return [
        (topics.positions_air if entity_type(r) == "aircraft" else topics.positions_vessel, partitioner(entity_key(r)))
        for r in records
    ]


def frame_plan(records: Sequence[Record], settings: Settings) -> dict[Where, list[list[int]]]:
    """Per (topic, partition), the record indices of each full-speed frame, as :class:`FramePublisher` packs them."""
    from streams.topics import stream_settings

    size = stream_settings(settings).kafka.frame_size
    frames: dict[Where, list[list[int]]] = defaultdict(list)
    open_: dict[Where, list[int]] = {}
    for i, where in enumerate(destinations(records, settings)):
        frame = open_.setdefault(where, [])
        frame.append(i)
        if len(frame) >= size:
            frames[where].append(open_.pop(where))
    for where, frame in open_.items():
        frames[where].append(frame)
    return dict(frames)


# --- no Kafka: the same engines, timed, and which position emitted each alert revision ---------
END = -1  # trigger of revisions emitted by the end-of-input marker


@dataclass
class Offline:
    figures: list[Figure]
    triggers: dict[tuple[str, int], int]  # (alert id, revision) -> index of the record whose push emitted it


def run_offline(records: Sequence[Record], settings: Settings, env: Any) -> Offline:
    from detectors.registry import build_track_detectors
    from streams.partition_engine import PartitionEngine
    from streams.topics import stream_settings
    from streams.wire import decode_frame, record_from_wire

    stream = stream_settings(settings)
    plan = frame_plan(records, settings)
    n = len(records)
    entity_types = {stream.topics.positions_vessel: ("vessel",), stream.topics.positions_air: ("aircraft",)}

    started = clock()
    encoded = {
        where: [encode_frame([record_to_wire(records[i]) for i in f]) for f in frames] for where, frames in plan.items()
    }
    feed_s = clock() - started
    started = clock()
    decoded = {where: [decode_frame(raw) for raw in frames] for where, frames in encoded.items()}
    for frames in decoded.values():
        for elements in frames:
            for element in elements:
                record_from_wire(element)
    codec_s = clock() - started

    def engines(detectors: list[Any], triggers: dict[tuple[str, int], int] | None) -> tuple[float, float]:
        """CPU seconds of push_frame (codec's record_from_wire included) and of flushes."""
        push_s = flush_s = 0.0
        for (topic, partition), frames in sorted(decoded.items()):
            engine = PartitionEngine(settings, partition, stream.topics.partitions, entity_types[topic], detectors, env)
            current = [END]
            if triggers is not None:
                index = {(entity_key(records[i]), records[i].ts): i for f in plan[(topic, partition)] for i in f}
                inner = engine.push_record

                def push(record: Record, inner: Any = inner, index: Any = index, current: list[int] = current) -> Any:
                    alerts = inner(record)
                    current[0] = index.get((entity_key(record), record.ts), END)
                    for alert in alerts:
                        triggers.setdefault((alert.id, alert.revision), current[0])
                    return alerts

                engine.push_record = push
            for offset, elements in enumerate(frames):
                t = clock()
                out = engine.push_frame(offset, elements, None)
                push_s += clock() - t
                if triggers is not None and out.alerts:  # revisions the wrapper did not see come from expiry
                    for alert in out.alerts:
                        triggers.setdefault((alert.id, alert.revision), current[0])
                if (offset + 1) % FLUSH_EVERY_FRAMES == 0:
                    t = clock()
                    engine.flush()
                    flush_s += clock() - t
            t = clock()
            out = engine.push_frame(len(frames), [], None, end_of_input=True)
            push_s += clock() - t
            if triggers is not None:
                for alert in out.alerts:
                    triggers.setdefault((alert.id, alert.revision), END)
            t = clock()
            engine.flush()
            flush_s += clock() - t
        return push_s, flush_s

    bare_s, _ = engines([], None)
    triggers: dict[tuple[str, int], int] = {}
    detectors = build_track_detectors(settings.detectors, env, str(settings.path))
    full_s, flush_s = engines(detectors, triggers)  # cold, as a fresh worker: geography memos fill up
    warm_s, _ = engines(detectors, None)
    names = ", ".join(d.name for d in detectors)
    figures = [
        Figure(NAME, "no Kafka: feed encode (to_wire + orjson frames)", n, feed_s, note="CPU s; feed side"),
        Figure(NAME, "no Kafka: worker decode (orjson + from_wire)", n, codec_s, note="CPU s; from_wire also below"),
        Figure(NAME, "no Kafka: partition engine, no detectors", n, bare_s, note="CPU s; reorder, clean, track state"),
        Figure(
            NAME,
            "no Kafka: partition engine + track detectors",
            n,
            full_s,
            note=f"CPU s; first pass (cold, as a fresh worker), second {warm_s / n * 1e6:,.1f} us/pos; {names}",
        ),
        Figure(
            NAME,
            "no Kafka: state flushes",
            n,
            flush_s,
            note=f"CPU s; every {FLUSH_EVERY_FRAMES} frames a partition; {len(triggers)} alert revisions",
        ),
    ]
    return Offline(figures, triggers)


def cells_offline(
    records: Sequence[Record], settings: Settings, env: Any, plan: dict[Where, list[list[int]]]
) -> Figure | None:
    """The cells partitions alone, as the as-shipped worker runs them (None without pairwise
    detectors): stage 1 in each position partition (a pipeline with no track detectors) holds
    its notes and sends them with its progress every :data:`FLUSH_EVERY_FRAMES` frames, the
    partitions taking turns frame by frame; then each ``cells`` partition's engine reads its
    log in turns (``orjson.loads``, relays written back as JSON). Only the cells side is timed.
    Snapshots (every :data:`FLUSH_EVERY_FRAMES` messages a partition) are timed apart: each
    is the partition's whole state, so its cost depends on how often the worker takes one
    (each ``flush_interval_s``), not on the positions. The sources are the position
    partitions that hold records (no idle ones to wait for)."""
    from detectors.cell_engine import build_cell_engine
    from detectors.cell_slotting import EntityStage, SlottingOnly
    from detectors.pipeline import Pipeline
    from detectors.routing import Router
    from streams.cell_partition import CellPartitionEngine, CellRouter, source_id
    from streams.topics import stream_settings

    probe = build_cell_engine(settings.detectors, env)
    if probe is None:
        return None
    ncells = stream_settings(settings).topics.partitions
    logs: list[list[bytes]] = [[] for _ in range(ncells)]

    def send(messages: list[Any]) -> None:
        for partition, _, value in messages:
            logs[partition].append(orjson.dumps(value))

    wheres = sorted(plan)
    sources = [source_id(topic, partition) for topic, partition in wheres]
    sides = []
    for where, source in zip(wheres, sources, strict=True):
        stage = EntityStage(probe.pair_detectors, probe.area_detectors, probe.timing, probe.grid)
        sides.append(
            (where, stage, Pipeline(settings, env, detectors=[], cells=SlottingOnly(stage)), CellRouter(source, ncells))
        )
    for k in range(max(len(frames) for frames in plan.values())):
        for where, stage, pipeline, router in sides:
            if k < len(plan[where]):
                for i in plan[where][k]:
                    pipeline.push(records[i])
                router.hold(stage.drain())
                if (k + 1) % FLUSH_EVERY_FRAMES == 0:
                    send(router.progress(pipeline.watermark, False))
    for _, stage, pipeline, router in sides:
        pipeline.finish()
        router.hold(stage.drain())
        send(router.progress(pipeline.buffer.max_ts, True))

    route = Router.from_settings(settings).route
    engines = [
        CellPartitionEngine(
            probe.pair_detectors, probe.area_detectors, probe.timing, probe.grid, k, ncells, sources, route
        )
        for k in range(ncells)
    ]
    read = [0] * ncells
    revisions = 0
    written = sum(len(log) for log in logs)
    work_s = snapshot_s = 0.0
    sizes: list[int] = []
    while any(read[k] < len(logs[k]) for k in range(ncells)):
        for k, engine in enumerate(engines):
            log = logs[k]
            while read[k] < len(log):
                offset = read[k]
                read[k] += 1
                started = clock()
                alerts, relays = engine.push(offset, orjson.loads(log[offset]))
                revisions += len(alerts)
                for partition, _, value in relays:
                    logs[partition].append(orjson.dumps(value))
                work_s += clock() - started
                if read[k] % FLUSH_EVERY_FRAMES == 0:
                    started = clock()
                    sizes.append(len(orjson.dumps(engine.snapshot())))
                    snapshot_s += clock() - started
    relayed = sum(len(log) for log in logs) - written
    snaps = (
        f"{len(sizes)} snapshots, not in the time (every {FLUSH_EVERY_FRAMES} messages a partition): "
        f"{snapshot_s / len(sizes) * 1e3:,.1f} ms and {sum(sizes) / len(sizes) / 1e3:,.0f} kB each on average"
        if sizes
        else "no snapshots"
    )
    return Figure(
        NAME,
        "no Kafka: cells partitions (pairwise detectors)",
        len(records),
        work_s,
        note=f"CPU s; JSON in and out included; {written:,} messages of notes and progress, {relayed:,} relays, "
        f"{revisions} alert revisions; {snaps}",
    )


# --- processes -----------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux ``/proc``), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Proc:
    """A subprocess with its log; stopped (SIGTERM, then SIGKILL) by :meth:`stop`."""

    def __init__(self, cmd: list[str], log: Path, probe: Path | None = None) -> None:
        self.log = log
        self.probe = probe
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if probe is not None:
            env[PROBE_ENV] = str(probe)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def cpu(self) -> float | None:
        return cpu_seconds(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop(self.proc, 10.0)


def worker_cmd(brokers: str, config: Path) -> list[str]:
    """``vigiamar worker`` (the CLI's own code, with CPU counters: :mod:`benchmarks._worker_probe`)."""
    return [sys.executable, "-m", "benchmarks._worker_probe", "worker", "--brokers", brokers, "--config", str(config),
            "--loglevel", "info"]  # fmt: skip


def _generation(text: str) -> int | None:
    """The generation of the last group join in a worker log, once its recovery completed after it."""
    joined = text.rfind("Joined group")
    if joined < 0 or "Recovery complete" not in text[joined:]:
        return None
    tail = text[joined : joined + 200]
    try:
        return int(tail.split("(generation ", 1)[1].split(")", 1)[0])
    except (IndexError, ValueError):
        return None


def wait_group_ready(procs: Sequence[Proc], timeout_s: float = READY_TIMEOUT_S, settle_s: float = 2.0) -> float:
    """Wait until every worker finished its last rebalance, all in one generation, for ``settle_s``."""
    started = time.monotonic()
    deadline = started + timeout_s
    stable_since: float | None = None
    last: tuple[int | None, ...] = ()
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"worker exited early:\n{p.text()[-2000:]}")
        gens = tuple(_generation(p.text()) for p in procs)
        ok = all(g is not None for g in gens) and len(set(gens)) == 1 and "Worker ready" in procs[0].text()
        if ok and gens == last:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= settle_s:
                return time.monotonic() - started
        else:
            stable_since = None
        last = gens
        time.sleep(0.2)
    raise TimeoutError(f"the worker group did not settle in {timeout_s} s")


def producer(brokers: str) -> Any:
    """The feed's producer settings (``streams.cli_streaming``)."""
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=brokers, acks="all", linger_ms=20, max_request_size=8 * 1024 * 1024, retries=10,
        max_block_ms=30000,
    )  # fmt: skip


class Watcher:
    """Reads the alerts topic and the state changelogs in a thread (aiokafka, whose record parsing
    is compiled: the changelogs carry every track write): when each alert revision and each
    partition's checkpoint arrived (wall time)."""

    def __init__(self, brokers: str, alerts: str, changelogs: dict[str, str]) -> None:
        self.brokers = brokers
        self.alerts = alerts
        self.changelogs = changelogs  # changelog topic -> position topic
        self.arrivals: dict[tuple[str, int], float] = {}
        self.produced: dict[tuple[str, int], float] = {}  # the alert message's timestamp (the worker's send)
        self.checkpoints: dict[Where, tuple[int, float]] = {}  # (position topic, partition) -> (o, arrival)
        self.state_writes = 0  # changelog messages (track values, markers, checkpoints)
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self.error is not None:
            raise RuntimeError(f"the alert/changelog reader did not start: {self.error!r}")

    async def _main(self) -> None:
        from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

        consumer = AIOKafkaConsumer(
            self.alerts, *self.changelogs, bootstrap_servers=self.brokers, group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=50,
        )  # fmt: skip
        try:
            await consumer.start()
        except BaseException as exc:
            self.error = exc
            self._ready.set()
            raise
        self._ready.set()
        try:
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                now = time.time()
                with self.lock:
                    for tp, messages in batch.items():
                        self._take(tp, messages, now)
        finally:
            await consumer.stop()

    def _take(self, tp: Any, messages: list[Any], now: float) -> None:
        if tp.topic == self.alerts:
            for m in messages:
                ce_id = dict(m.headers or ()).get("ce_id", b"").decode()
                ident, _, revision = ce_id.rpartition(":")
                if ident:
                    self.arrivals.setdefault((ident, int(revision)), now)
                    self.produced.setdefault((ident, int(revision)), m.timestamp / 1000.0)
            return
        self.state_writes += len(messages)
        for m in messages:
            if m.key is not None and m.key.endswith(b"#checkpoint") and m.value is not None:
                where = (self.changelogs[tp.topic], tp.partition)
                self.checkpoints[where] = (int(orjson.loads(m.value)["o"]), now)

    def done_at(self, ends: dict[Where, int], revisions: set[tuple[str, int]] | None = None) -> float | None:
        """Arrival of the last checkpoint covering each partition's end offset (and of the last
        of ``revisions``), once all have."""
        with self.lock:
            got = [self.checkpoints.get(w) for w in ends]
            if any(c is None or c[0] < ends[w] for c, w in zip(got, ends, strict=True)):
                return None
            if revisions and not revisions <= self.arrivals.keys():
                return None
            return max([c[1] for c in got if c is not None] + [self.arrivals[r] for r in revisions or ()])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def end_offsets(brokers: str, topics: Sequence[str], partitions: int, timeout_s: float = 30.0) -> dict[Where, int]:
    """Offset of the last message of every partition (the end-of-input marker).

    From the high watermark fetches report: Tansu lists the first offset of a partition's
    last record batch plus one, which can fall short of the marker.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=brokers, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        listed = consumer.end_offsets(tps)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(listed[tp] - 1, 0))
        deadline = time.monotonic() + timeout_s
        while any(consumer.highwater(tp) is None for tp in tps) and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        ends = {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in tps}
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): int(off) - 1 for tp, off in ends.items()}


class TimedProducer:
    """The feed's producer, noting when each frame left (per partition, in order)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: dict[Where, list[float]] = defaultdict(list)

    def send(self, topic: str, value: bytes | None = None, partition: int | None = None, **kw: Any) -> Any:
        if partition is not None and not kw.get("headers"):
            self.sent[(topic, partition)].append(time.time())
        return self.inner.send(topic, value=value, partition=partition, **kw)

    def flush(self, timeout: float | None = None) -> None:
        self.inner.flush(timeout=timeout)


@dataclass
class Phase:
    """One broker with topics created and a settled worker group."""

    brokers: str
    settings: Settings
    folder: Path
    broker: subprocess.Popen[bytes] | None = None
    workers: list[Proc] = field(default_factory=list)
    arrivals: dict[tuple[str, int], float] = field(default_factory=dict)  # alert revision -> arrival
    produced: dict[tuple[str, int], float] = field(default_factory=dict)  # alert revision -> worker's send
    state_writes: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds in the timed window: workers, broker, feed
    probe: dict[str, float] = field(default_factory=dict)  # the workers' counters over the timed window, summed


@contextlib.contextmanager
def worker_phase(folder: Path, count: int, config: Path) -> Iterator[Phase]:
    from streams.admin import admin_client, ensure_topics
    from streams.topics import stream_settings

    settings = load_settings(config)
    stream = stream_settings(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with tansu_broker(folder / "tansu.log") as (brokers, broker):
        admin = admin_client(brokers)
        try:
            ensure_topics(admin, stream)
        finally:
            admin.close()
        phase = Phase(brokers, settings, folder, broker)
        try:
            for i in range(count):
                phase.workers.append(
                    Proc(worker_cmd(brokers, config), folder / f"worker{i}.log", folder / f"worker{i}.probe")
                )
            wait_group_ready(phase.workers)
            yield phase
        finally:
            for w in phase.workers:
                w.stop()


def _cpu(phase: Phase) -> dict[str, float]:
    """CPU seconds so far: the workers together, the broker, this process (feed and reader)."""
    out = {"feed": time.process_time()}
    workers = [w.cpu() for w in phase.workers]
    if all(c is not None for c in workers):
        out["workers"] = sum(c for c in workers if c is not None)
    broker = cpu_seconds(phase.broker.pid) if phase.broker is not None else None
    if broker is not None:
        out["broker"] = broker
    return out


def _probes(phase: Phase) -> dict[str, float]:
    """The workers' probe counters, summed over workers."""
    from benchmarks._worker_probe import read

    out: dict[str, float] = defaultdict(float)
    for w in phase.workers:
        if w.probe is not None:
            for k, v in read(w.probe).items():
                out[k] += v
    return dict(out)


def split_note(probe: dict[str, float], n: int) -> str:
    """Where the workers' CPU went, µs a position: engine, state export, frame parse, the rest."""
    if not n or "process_s" not in probe:
        return ""
    keys = ("process_s", "main_s", "push_s", "flush_s", "decode_s", "cells_s", "cells_json_s", "cells_snapshot_s")
    us = {k: probe.get(k, 0.0) / n * 1e6 for k in keys}
    rest = us["process_s"] - sum(us[k] for k in keys[2:])
    threads = us["process_s"] - us["main_s"] if "main_s" in probe else float("nan")
    cells = (
        f"cells stage {us['cells_s']:,.0f}, cells codec {us['cells_json_s']:,.0f}, "
        f"cells snapshots {us['cells_snapshot_s']:,.0f} "
        f"({probe.get('cells_sent', 0):,.0f} cells messages sent, {probe.get('cells_read', 0):,.0f} read), "
        if any(probe.get(k) for k in keys[5:])
        else ""
    )
    return (
        f"worker CPU us/pos: engine+detectors {us['push_s']:,.0f}, state export {us['flush_s']:,.0f}, "
        f"frame parse {us['decode_s']:,.0f}, {cells}faust+Kafka client+glue {rest:,.0f} "
        f"(of which client threads {threads:,.0f})"
    )


def cpu_note(cpu: dict[str, float], n: int) -> str:
    """``workers 105 CPU us/pos (9,500 pos/s a core), broker 40, feed 30``."""
    if not n:
        return ""
    parts = []
    if "workers" in cpu:
        us = cpu["workers"] / n * 1e6
        parts.append(f"workers {us:,.0f} CPU us/pos ({1e6 / us:,.0f} pos/s a core)" if us > 0 else "workers ?")
    parts += [f"{k} {cpu[k] / n * 1e6:,.0f}" for k in ("broker", "feed") if k in cpu]
    return ", ".join(parts)


@dataclass
class FeedTimes:
    first: float  # first record handed to the feed
    done: float  # last partition's final checkpoint arrived
    sent_at: list[float]  # per record: handed to the feed
    frame_left: list[float]  # per record: its frame went to the producer
    frames: int


def feed_and_wait(
    phase: Phase,
    records: Sequence[Record],
    rate: float | None,
    timeout_s: float,
    revisions: set[tuple[str, int]] | None = None,
) -> FeedTimes:
    """Publish ``records`` (at ``rate``/s, or as fast as the feed goes), then the end markers;
    wait for every partition's final checkpoint (and, given ``revisions``, for every one of
    those alert revisions: the cells stage's come after the position partitions are done)."""
    from streams.feed import FeedReport, FramePublisher
    from streams.topics import stream_settings

    stream = stream_settings(phase.settings)
    t = stream.topics
    changelogs = {f"{stream.kafka.app_id}-tracks-vessel-changelog": t.positions_vessel,
                  f"{stream.kafka.app_id}-tracks-air-changelog": t.positions_air}  # fmt: skip
    watcher = Watcher(phase.brokers, t.alerts, changelogs)
    kafka = producer(phase.brokers)
    timed = TimedProducer(kafka)
    publisher = FramePublisher(timed, stream, FeedReport())
    n = len(records)
    sent_at = [0.0] * n
    wheres = destinations(records, phase.settings)
    frame_no = [0] * n  # the record goes out in this frame of its partition (0, 1, …)
    sent = timed.sent
    cpu0 = _cpu(phase)
    probe0 = _probes(phase)
    try:
        first = time.time()
        i = 0
        while i < n:
            now = time.time()
            due = n if rate is None else min(n, int((now - first) * rate) + 1)
            while i < due:
                sent_at[i] = now
                frame_no[i] = len(sent[wheres[i]])
                publisher.add(records[i])
                i += 1
            if rate is not None:
                publisher.tick()
                time.sleep(0.002)
        publisher.end_of_input()
        kafka.flush(timeout=60)
        ends = end_offsets(phase.brokers, t.position_topics(), t.partitions)
        deadline = time.monotonic() + timeout_s
        while (done := watcher.done_at(ends, revisions)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the workers did not finish in {timeout_s} s")
            time.sleep(0.05)
        cpu1 = _cpu(phase)
        phase.cpu = {k: cpu1[k] - cpu0[k] for k in cpu0 if k in cpu1}
        time.sleep(0.3)  # alerts still on their way (none expected: they go out before the checkpoint)
        probe1 = _probes(phase)
        phase.probe = {k: probe1[k] - probe0.get(k, 0.0) for k in probe1}
        phase.arrivals = dict(watcher.arrivals)
        phase.produced = dict(watcher.produced)
        phase.state_writes = watcher.state_writes
    finally:
        kafka.close(10)
        watcher.close()
    frame_left = [sent[w][k] if k < len(sent[w]) else float("nan") for w, k in zip(wheres, frame_no, strict=True)]
    return FeedTimes(first, done, sent_at, frame_left, sum(len(v) for v in sent.values()))


def replay_revisions(records: Sequence[Record], settings: Settings) -> set[tuple[str, int]]:
    """Every (alert id, revision) ``vigiamar replay`` gives for these records and settings."""
    from detectors.pipeline import Pipeline
    from streams.cli import load_environment

    pipeline = Pipeline(settings, load_environment(settings))
    alerts = [a for r in records for a in pipeline.push(r)] + pipeline.finish()
    return {(a.id, a.revision) for a in alerts}


# --- the phases ----------------------------------------------------------------------------------
def run_baseline(folder: Path, records: Sequence[Record], config: Path) -> Figure:
    from kafka.admin import NewTopic

    from streams.admin import admin_client
    from streams.topics import stream_settings

    settings = load_settings(config)
    partitions = stream_settings(settings).topics.partitions
    topic = "bench.positions"
    values = [(str(entity_key(r)).encode(), orjson.dumps(record_to_wire(r))) for r in records]
    done = folder / "baseline.done"
    folder.mkdir(parents=True, exist_ok=True)
    with tansu_broker(folder / "tansu.log") as (brokers, broker):
        admin = admin_client(brokers)
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=30000)
        finally:
            admin.close()
        cmd = [sys.executable, "-m", "benchmarks._faust_baseline", "--brokers", brokers, "--config", str(config),
               "--topic", topic, "--expect", str(len(values)), "--done", str(done)]  # fmt: skip
        proc = Proc(cmd, folder / "baseline.log")
        phase = Phase(brokers, settings, folder, broker, [proc])
        kafka = producer(brokers)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not (done.exists() and done.read_text().startswith("ready")):
                if not proc.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the baseline agent did not start:\n{proc.text()[-2000:]}")
                time.sleep(0.1)
            time.sleep(2.0)  # its table's recovery (empty changelog) finishes
            cpu0 = _cpu(phase)
            first = time.time()
            for key, value in values:
                kafka.send(topic, key=key, value=value)
            kafka.flush(timeout=60)
            deadline = time.monotonic() + 300
            while True:
                text = done.read_text() if done.exists() else ""
                if text and not text.startswith("ready"):
                    finished = float(text)
                    break
                if not proc.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the baseline agent did not finish:\n{proc.text()[-2000:]}")
                time.sleep(0.05)
            cpu1 = _cpu(phase)
        finally:
            kafka.close(10)
            proc.stop()
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu0 if k in cpu1}
    fig = Figure(NAME, "baseline: faust agent, 1 table update per position", len(values), finished - first)
    fig.baseline_rate = fig.rate
    fig.extra = {f"cpu_us_{k}": v / len(values) * 1e6 for k, v in cpu.items()}
    fig.note = f"wall s; {cpu_note(cpu, len(values)).replace('workers', 'agent', 1)}; 1 position a message"
    return fig


def run_workers(
    folder: Path,
    records: Sequence[Record],
    config: Path,
    count: int,
    baseline: float | None,
    revisions: set[tuple[str, int]] | None = None,
) -> Figure:
    """``revisions``: the replay's alert revisions, with the pairwise detectors on (the worker's
    cells stage runs them as shipped): the run ends when the last of them arrived."""
    with worker_phase(folder, count, config) as phase:
        times = feed_and_wait(phase, records, None, timeout_s=600, revisions=revisions)
    n = len(records)
    what = "feed -> alerts + state" if revisions is None else "as shipped, cells stage on: feed -> every alert"
    fig = Figure(NAME, f"vigiamar worker x{count}: {what}", n, times.done - times.first, baseline)
    fig.extra = {"workers": count, **{f"cpu_us_{k}": v / n * 1e6 for k, v in phase.cpu.items()}}
    fig.extra.update({f"probe_us_{k}": v / n * 1e6 for k, v in phase.probe.items() if k.endswith("_s")})
    fig.note = (
        f"wall s; {cpu_note(phase.cpu, n)}; {times.frames:,} frames, {phase.state_writes:,} state writes, "
        f"{len(phase.arrivals):,} alert revisions; {split_note(phase.probe, n)}"
    )
    return fig


@dataclass
class Latency:
    figure: Figure
    p50: float
    p99: float
    frame_p50: float
    frame_p99: float
    lag_s: float  # last alert/checkpoint after the last send


def _cores_note(fig: Figure, workers: int) -> Figure:
    if workers > (os.cpu_count() or 1):
        fig.note += f"; more workers than the {os.cpu_count()} cores"
    return fig


def run_latency(
    folder: Path,
    records: Sequence[Record],
    config: Path,
    rate: float,
    triggers: dict[tuple[str, int], int],
    baseline: float | None,
    label: str = "latency run",
) -> Latency:
    with worker_phase(folder, 1, config) as phase:
        times = feed_and_wait(phase, records, rate, timeout_s=600)
    first, done, sent_at, frame_left = times.first, times.done, times.sent_at, times.frame_left
    total: list[float] = []
    waited: list[float] = []
    worker: list[float] = []  # frame sent → alert sent by the worker (broker, fetch, queue, processing)
    for key, arrived in phase.arrivals.items():
        i = triggers.get(key)
        if i is None or i == END or i >= len(records):
            continue  # emitted by the end-of-input marker (of this run or of the whole input)
        total.append(arrived - sent_at[i])
        waited.append(frame_left[i] - sent_at[i])
        if key in phase.produced:
            worker.append(phase.produced[key] - frame_left[i])
    last_send = max(sent_at) if sent_at else first
    fig = Figure(NAME, f"{label}: 1 worker at {rate:,.0f} pos/s offered", len(records), last_send - first, baseline)
    lat = Latency(
        fig,
        percentile(total, 0.5),
        percentile(total, 0.99),
        percentile(waited, 0.5),
        percentile(waited, 0.99),
        done - last_send,
    )
    fig.extra = {"rate": rate, "p50_s": lat.p50, "p99_s": lat.p99, "frame_wait_p50_s": lat.frame_p50,
                 "frame_wait_p99_s": lat.frame_p99, "revisions": len(total), "drain_s": lat.lag_s}  # fmt: skip
    fig.note = (
        f"wall s; event->alert p50 {lat.p50 * 1e3:,.0f} ms, p99 {lat.p99 * 1e3:,.0f} ms over {len(total)} revisions "
        f"(of which waiting in the feed's frame p50 {lat.frame_p50 * 1e3:,.0f}, p99 {lat.frame_p99 * 1e3:,.0f} ms; "
        f"frame sent -> alert sent by the worker p50 {percentile(worker, 0.5) * 1e3:,.0f}, "
        f"p99 {percentile(worker, 0.99) * 1e3:,.0f} ms); "
        f"done {lat.lag_s:.2f} s after the last send"
    )
    return lat


def parse_overrides(text: str) -> dict[str, float]:
    """``"flush_interval_s=5,frame_size=1000"`` → ``[kafka]`` overrides (numbers)."""
    out: dict[str, float] = {}
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        number = float(value)
        out[key.strip()] = int(number) if number.is_integer() and "." not in value else number
    return out


def latency_rate(requested: float, sustained: float | None) -> tuple[float, str]:
    """The rate of the latency run: the requested one, or 70 % of what one worker sustained end to
    end when that is less (a rate above it only measures a growing backlog)."""
    if sustained is None or sustained >= requested:
        return requested, ""
    rate = max(100.0, round(0.7 * sustained, -2))
    return rate, f"{requested:,.0f} pos/s is above what 1 worker sustained ({sustained:,.0f}): ran at {rate:,.0f}"


def run(
    path: Path | None = None,
    *,
    limit: int | None = None,
    repeat: int = 1,
    rate: float = DEFAULT_RATE,
    workers: Sequence[int] = DEFAULT_WORKERS,
    baseline_limit: int = DEFAULT_BASELINE_LIMIT,
    latency_s: float = DEFAULT_LATENCY_S,
    kafka: dict[str, float] | None = None,
    fetch_wait_ms: int | None = None,
    offline_only: bool = False,
    pairwise: bool = True,
) -> list[Figure]:
    """Every phase once (``repeat`` is not used: each phase takes tens of seconds of wall time)."""
    from streams.cli import load_environment

    path = path or default_input()
    records = load_records(path, limit or DEFAULT_LIMIT)
    with tempfile.TemporaryDirectory(prefix="vigiamar-bench-") as tmp:
        folder = Path(tmp)
        kafka = {**(kafka or {}), **({} if fetch_wait_ms is None else {"fetch_max_wait_ms": fetch_wait_ms})}
        bench_kafka = {**BENCH_KAFKA, **kafka}
        config = write_settings(folder / "config", kafka=bench_kafka)
        settings = load_settings(config)
        env = load_environment(settings)
        offline = run_offline(records, settings, env)
        figures = list(offline.figures)
        overrides = f"; [kafka] {kafka}" if kafka else ""
        figures[0].note += f"; {path.name}, {len(records):,} positions, {os.cpu_count()} cores{overrides}"
        if pairwise:
            shipped = write_settings(folder / "config-shipped", kafka=bench_kafka, pairwise=True)
            shipped_settings = load_settings(shipped)
            cells = cells_offline(records, shipped_settings, env, frame_plan(records, shipped_settings))
            if cells is not None:
                figures.append(cells)
        if offline_only:
            return figures
        base = run_baseline(folder / "baseline", records[: min(baseline_limit, len(records))], config)
        figures.append(base)
        sustained: float | None = None
        shipped_rate: float | None = None
        for count in workers:
            fig = run_workers(folder / f"workers{count}", records, config, count, base.rate)
            if count == 1:
                sustained = fig.rate
            figures.append(_cores_note(fig, count))
        if pairwise:
            revisions = replay_revisions(records, shipped_settings)
            rendezvous = sum(k.startswith("rendezvous") for k, _ in revisions)
            for count in workers:
                fig = run_workers(folder / f"shipped{count}", records, shipped, count, base.rate, revisions)
                fig.extra["shipped"] = True
                fig.note += f"; {rendezvous} rendezvous revisions"
                figures.append(_cores_note(fig, count))
                if count == 1:
                    shipped_rate = fig.rate  # a lower bound: it includes the pairwise work after the feed
        if rate > 0:
            runs = [("latency", config, sustained, "latency run")]
            if pairwise:  # the per-track alerts' latency with the cells stage sharing the worker's core
                runs.append(("latency-shipped", shipped, shipped_rate, LATENCY_SHIPPED))
            for name, cfg, most, label in runs:
                chosen, why = latency_rate(rate, most)
                subset = records[: max(1, min(len(records), int(chosen * latency_s)))]
                lat = run_latency(folder / name, subset, cfg, chosen, offline.triggers, base.rate, label)
                lat.figure.extra["shipped"] = cfg is not config
                if why:
                    lat.figure.note += f"; {why}"
                figures.append(lat.figure)
    return figures
