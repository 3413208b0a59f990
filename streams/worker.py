"""``vigiamar worker``: run the streaming shell (a faust worker) until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import time
from typing import Any

from detectors.base import Environment
from models.settings import Settings
from streams.app import FaustOptions, Topology, build_topology
from streams.topics import StreamSettings, stream_settings

log = logging.getLogger("vigiamar.worker")

# faust's table recovery with no changelog event for this long is stuck (seen after the whole
# process was frozen: its consumer thread never fetched the partition again); the worker stops
# beating, so /livez fails and the orchestrator restarts it. Recovery of a large table that
# still receives events is never cut short.
RECOVERY_STUCK_S = 300.0


def recovery_silent_s(app: Any, now: float) -> float | None:
    """Seconds faust's table recovery has run without a changelog event (None: not recovering)."""
    recovery = getattr(getattr(app, "tables", None), "recovery", None)
    if recovery is None or not getattr(recovery, "in_recovery", False):
        return None
    marks = (getattr(recovery, name, None) for name in ("_recovery_started_at", "_last_active_event_processed_at"))
    known = [m for m in marks if isinstance(m, int | float)]
    return now - max(known) if known else None


def beat_unless_stuck(health: Any, app: Any, now: float, stuck_s: float = RECOVERY_STUCK_S) -> bool:
    """The liveness heartbeat, withheld while the table recovery is stuck. Returns whether it beat."""
    silent = recovery_silent_s(app, now)
    if silent is not None and silent > stuck_s:
        log.error("table recovery has had no changelog event for %.0f s: no liveness heartbeat, so /livez "
                  "fails and the worker is restarted", silent)  # fmt: skip
        return False
    health.beat()
    return True


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
            beat_unless_stuck(health, app, time.monotonic())

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
