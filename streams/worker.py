"""``vigiamar worker``: run the streaming shell (a faust worker) until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
from typing import Any

from detectors.base import Environment
from models.settings import Settings
from streams.app import FaustOptions, Topology, build_topology
from streams.topics import StreamSettings, stream_settings


def prepare(
    settings: Settings, brokers: str, env: Environment, options: FaustOptions | None = None, metrics: Any = None
) -> tuple[Topology, Any]:
    """The app with its agents installed (no I/O yet)."""
    from streams.agents import Worker

    stream: StreamSettings = stream_settings(settings)
    topo = build_topology(settings, stream, brokers, env, options)
    worker = Worker(topo, metrics)
    worker.install()
    return topo, worker


def run(settings: Settings, brokers: str, env: Environment, loglevel: str = "info") -> None:
    """Start the worker in this process; returns when it is told to stop (SIGTERM, SIGINT)."""
    import faust

    from streams.health import Health, serve_health
    from streams.metrics import Metrics, metrics_config

    cfg = metrics_config(settings)
    metrics = Metrics() if cfg.enabled else None
    topo, _ = prepare(settings, brokers, env, metrics=metrics)
    server = None
    if metrics is not None:
        health = Health(stall_after_s=60.0)
        server = serve_health(health, cfg.port, cfg.addr, metrics=metrics)
        app = topo.app

        async def heartbeat() -> None:
            health.beat()

        async def ready() -> None:
            health.set_ready(True)

        app.timer(interval=5.0)(heartbeat)
        app.task(ready)

    logging.getLogger("vigiamar").setLevel(loglevel.upper())
    _dump_tasks_on_sigusr1(topo.app)
    try:
        worker = faust.Worker(topo.app, loglevel=loglevel, quiet=True)
        worker.spinner = None  # its log handler makes every debug call of the Kafka client build a record
        worker.execute_from_commandline()
    finally:
        if server is not None:
            server.close()


def _dump_tasks_on_sigusr1(app: Any) -> None:
    """``kill -USR1 <worker>`` logs every asyncio task's stack: what a stalled worker awaits."""
    import asyncio
    import io
    import signal

    log = logging.getLogger("vigiamar.worker")

    def dump() -> None:
        out = io.StringIO()
        for task in asyncio.all_tasks():
            out.write(f"--- {task.get_name()}\n")
            coro: Any = task.get_coro()
            while coro is not None:  # the chain of awaits, outermost first
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
                if frame is not None:
                    out.write(f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}\n")
                coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        log.warning("asyncio tasks:\n%s", out.getvalue())

    async def install() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)

    app.task(install)
