"""``vigiamar worker`` with CPU counters, for the streaming benchmark: where a worker's CPU goes.

``VIGIAMAR_BENCH_PROBE=FILE python -m benchmarks._worker_probe worker --brokers … --config …``
runs the CLI's worker unchanged, with the thread CPU time of the partition engine's
``push_frame`` (reorder, cleaning, detectors, record decoding) and ``flush`` (state export),
of the worker's frame decoding (orjson), and of the cells stage (its partition engines'
``deliver``, the cells topic's JSON codec, the snapshots), counted. Every 0.2 s the counters, the process
CPU time and the main thread's CPU time go to FILE (JSON); what the engine does not account
for is faust, the Kafka client, asyncio and the worker's own glue.
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


def install(out: Path, interval_s: float = 0.2) -> dict[str, float]:
    import orjson

    from streams import agents, cell_agent
    from streams.cell_partition import CellPartitionEngine
    from streams.partition_engine import PartitionEngine

    counters: dict[str, float] = {
        "push_s": 0.0, "flush_s": 0.0, "decode_s": 0.0, "frames": 0, "records": 0,
        "cells_s": 0.0, "cells_json_s": 0.0, "cells_snapshot_s": 0.0, "cells_sent": 0, "cells_read": 0,
    }  # fmt: skip
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

    deliver, snapshot = CellPartitionEngine.deliver, CellPartitionEngine.snapshot
    encode_snap, decode_snap = cell_agent.encode_snapshot, cell_agent.decode_snapshot

    active = [False]  # a timed call inside another (the snapshot's codec) counts in the outer one only

    def timed(name: str, fn: Any, count: str | None = None) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if active[0]:
                return fn(*args, **kwargs)
            if count is not None:
                counters[count] += 1
            active[0] = True
            started = cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                counters[name] += cpu() - started
                active[0] = False

        return call

    class TimedJson:  # the cells agent's codec: notes out, messages in
        loads = staticmethod(timed("cells_json_s", orjson.loads, "cells_read"))
        dumps = staticmethod(timed("cells_json_s", orjson.dumps, "cells_sent"))
        JSONDecodeError = orjson.JSONDecodeError

    CellPartitionEngine.deliver = timed("cells_s", deliver)  # type: ignore[method-assign]
    CellPartitionEngine.snapshot = timed("cells_snapshot_s", snapshot)  # type: ignore[method-assign]
    cell_agent.encode_snapshot = timed("cells_snapshot_s", encode_snap)
    cell_agent.decode_snapshot = timed("cells_snapshot_s", decode_snap)  # restores: not cells messages read
    cell_agent.orjson = TimedJson  # type: ignore[attr-defined,assignment]
    PartitionEngine.push_frame = push_frame  # type: ignore[method-assign]
    PartitionEngine.flush = timed("flush_s", flush)  # type: ignore[method-assign]
    agents.decode_frame = timed("decode_s", decode)  # type: ignore[attr-defined]
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
    install(Path(os.environ[ENV]))
    from streams.cli import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
