"""Liveness and readiness over HTTP, for Docker/Kubernetes health checks and load balancers.

The state lives in :class:`Health`; a tiny ``http.server`` in a daemon thread answers:

* ``GET /livez``   200 while the process makes progress: the event loop has called
  :meth:`Health.beat` within ``stall_after_s`` (before the first beat: alive, starting).
  503 when the loop is stuck: restart the worker.
* ``GET /readyz``  200 once :meth:`Health.set_ready` was called with True and every
  registered check passes (e.g. "partitions assigned"); 503 otherwise, with the reasons.
* ``GET /metrics`` the Prometheus text format, when a :class:`streams.metrics.Metrics` is given,
  so one port can serve both.

Bodies are JSON: ``{"status": "ok"|"fail", "checks": {name: {"ok": bool, "detail": str}}}``.

The server runs in its own thread so it answers even when the asyncio loop is blocked;
that is why liveness is a heartbeat *from* the loop, not "the server answered". In a faust
app (the worker)::

    health = Health(stall_after_s=60)
    server = serve_health(health, port=9101, metrics=metrics)

    @app.timer(interval=5.0)
    async def heartbeat() -> None:
        health.beat()

    @app.task
    async def on_started() -> None:
        health.set_ready(True)

    health.add_check("assigned", lambda: (bool(app.assignor.assigned_actives()), "partitions"))
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.metrics import Metrics

Check = Callable[[], "bool | tuple[bool, str]"]


class Health:
    """Liveness heartbeat, a readiness flag and named readiness checks. Thread-safe."""

    def __init__(self, stall_after_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self._clock = clock
        self._last_beat: float | None = None
        self._ready = False
        self._ready_detail = "starting"
        self._checks: dict[str, Check] = {}
        self._lock = threading.Lock()

    def beat(self) -> None:
        """Called from the event loop regularly: proves the loop still runs."""
        self._last_beat = self._clock()

    def set_ready(self, ready: bool = True, detail: str = "") -> None:
        with self._lock:
            self._ready = ready
            self._ready_detail = detail or ("ready" if ready else "not ready")

    def add_check(self, name: str, check: Check) -> None:
        """A readiness check: returns ok, or (ok, detail). An exception counts as failed."""
        with self._lock:
            self._checks[name] = check

    def live(self) -> tuple[bool, dict[str, Any]]:
        last = self._last_beat
        if last is None:
            return True, {"heartbeat": {"ok": True, "detail": "starting (no heartbeat yet)"}}
        age = self._clock() - last
        ok = age <= self.stall_after_s
        return ok, {"heartbeat": {"ok": ok, "detail": f"last beat {age:.1f} s ago (limit {self.stall_after_s:g} s)"}}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            checks = dict(self._checks)
            results: dict[str, Any] = {"started": {"ok": self._ready, "detail": self._ready_detail}}
        _, live = self.live()
        results.update(live)
        for name, check in checks.items():
            results[name] = _run_check(check)
        return all(r["ok"] for r in results.values()), results


def _run_check(check: Check) -> dict[str, Any]:
    try:
        got = check()
    except Exception as exc:  # a failing check is "not ready", never a crash of the server
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    if isinstance(got, tuple):
        return {"ok": bool(got[0]), "detail": str(got[1])}
    return {"ok": bool(got), "detail": ""}


class HealthServer:
    """The HTTP server of :func:`serve_health`; ``close()`` stops it."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_health(
    health: Health, port: int, host: str = "0.0.0.0", metrics: Metrics | None = None
) -> HealthServer:
    """Answer /livez, /readyz (and /metrics when given) on ``host:port`` (0: any free port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/livez", "/healthz"):
                self._json(*health.live())
            elif path == "/readyz":
                self._json(*health.ready())
            elif path == "/metrics" and metrics is not None:
                body, ctype = metrics.exposition()
                self._send(200, body, ctype)
            else:
                self._send(404, b'{"status": "not found"}\n', "application/json")

        def _json(self, ok: bool, checks: dict[str, Any]) -> None:
            body = json.dumps({"status": "ok" if ok else "fail", "checks": checks}).encode() + b"\n"
            self._send(200 if ok else 503, body, "application/json")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no access log
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="vigiamar-health", daemon=True
    )
    thread.start()
    return HealthServer(server, thread)
