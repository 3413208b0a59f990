"""``vigiamar worker`` with CPU counters, for the streaming benchmark: where a worker's CPU goes.

``VIGIAMAR_BENCH_PROBE=FILE python -m benchmarks._worker_probe worker --brokers … --config …``
runs the CLI's worker unchanged, with the thread CPU time of the partition engine's
``push_frame`` (reorder, cleaning, detectors, record decoding) and ``flush`` (state export),
and of the worker's frame decoding (orjson), counted. Every 0.2 s the counters, the process
CPU time and the main thread's CPU time go to FILE (JSON); what the engine does not account
for is faust, the Kafka client, asyncio and the worker's own glue.

With ``VIGIAMAR_BENCH_FETCH_WAIT_MS=N`` the worker's Kafka consumers wait at most N ms for
data in a fetch instead of faust's fixed 1,500 ms: Tansu answers a fetch only when that wait
expires, even when data arrives meanwhile (a Kafka broker answers as soon as data is there),
so on Tansu every caught-up fetch adds up to that wait to the latency.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ENV = "VIGIAMAR_BENCH_PROBE"
FETCH_WAIT_ENV = "VIGIAMAR_BENCH_FETCH_WAIT_MS"


def shorten_fetch_wait(wait_ms: int) -> None:
    """Every ``AIOKafkaConsumer`` made from now on in this process waits at most ``wait_ms`` a fetch."""
    import aiokafka  # type: ignore[import-untyped]

    original = aiokafka.AIOKafkaConsumer

    class Consumer(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["fetch_max_wait_ms"] = wait_ms
            super().__init__(*args, **kwargs)

    aiokafka.AIOKafkaConsumer = Consumer


def install(out: Path, interval_s: float = 0.2) -> dict[str, float]:
    from streams import agents
    from streams.partition_engine import PartitionEngine

    counters: dict[str, float] = {"push_s": 0.0, "flush_s": 0.0, "decode_s": 0.0, "frames": 0, "records": 0}
    decode = agents.decode_frame  # type: ignore[attr-defined]
    push, flush = PartitionEngine.push_frame, PartitionEngine.flush
    cpu = time.thread_time

    def push_frame(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = cpu()
        result = push(self, *args, **kwargs)
        counters["push_s"] += cpu() - started
        counters["frames"] += 1
        counters["records"] += result.records
        return result

    def flush_state(self: Any) -> Any:
        started = cpu()
        result = flush(self)
        counters["flush_s"] += cpu() - started
        return result

    def decode_frame(raw: bytes | None) -> Any:
        started = cpu()
        try:
            return decode(raw)
        finally:
            counters["decode_s"] += cpu() - started

    PartitionEngine.push_frame = push_frame  # type: ignore[method-assign]
    PartitionEngine.flush = flush_state  # type: ignore[method-assign]
    agents.decode_frame = decode_frame  # type: ignore[attr-defined]
    main_ident = threading.main_thread().ident
    main_clock = time.pthread_getcpuclockid(main_ident) if main_ident is not None else None

    def dump() -> None:
        while True:
            data = {**counters, "process_s": time.process_time()}
            if main_clock is not None:
                data["main_s"] = time.clock_gettime(main_clock)
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, out)
            time.sleep(interval_s)

    threading.Thread(target=dump, name="bench-probe", daemon=True).start()
    return counters


def read(path: Path) -> dict[str, float]:
    """The counters last written (empty before the first write)."""
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def main() -> int:
    if os.environ.get(FETCH_WAIT_ENV):
        shorten_fetch_wait(int(os.environ[FETCH_WAIT_ENV]))
    install(Path(os.environ[ENV]))
    from streams.cli import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
