"""The streaming benchmark's baseline: a plain faust agent, one table update per position message.

``python -m benchmarks._faust_baseline --brokers HOST:PORT --config FILE --topic T --expect N --done FILE``
runs a faust worker with vigiamar's broker settings (:func:`streams.app.faust_app`) and one
agent that decodes each message (one position, JSON) and writes it to a table keyed by the
entity id: the per-event cost every faust app pays. When it has seen ``N`` messages it
writes the wall time (``time.time()``) to the done file; ``ready`` is written there first,
once the worker has its partitions.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._faust_baseline")
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True, help="messages to see before writing the done file")
    parser.add_argument("--done", type=Path, required=True)
    args = parser.parse_args(argv)

    import faust
    import orjson

    from models.settings import load_settings
    from streams.app import FaustOptions, faust_app, raw_topic
    from streams.topics import stream_settings

    stream = stream_settings(load_settings(args.config))
    partitions = stream.topics.partitions
    app = faust_app(stream, args.brokers, FaustOptions(app_id="bench-baseline"))
    topic = raw_topic(app, args.topic, partitions)
    table = app.Table("last-position", partitions=partitions, key_type=bytes, value_type=bytes)
    seen = 0

    @app.agent(topic, name="baseline")
    async def baseline(stream: Any) -> None:
        nonlocal seen
        async for event in stream.events():
            value = event.message.value
            record = orjson.loads(value)
            table[str(record["id"]).encode()] = value  # one table update per position
            seen += 1
            if seen == args.expect:
                args.done.write_text(f"{time.time():.6f}\n", encoding="utf-8")

    async def ready(*_: Any, **__: Any) -> None:
        if seen == 0:
            args.done.write_text("ready\n", encoding="utf-8")

    app.on_partitions_assigned.connect(ready)
    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
