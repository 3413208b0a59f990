"""Liveness and readiness over HTTP: a stuck event loop fails liveness; readiness needs every check."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from streams.health import Health, HealthServer, serve_health
from streams.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(server: HealthServer, path: str) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read().decode()
            code = resp.status
    except urllib.error.HTTPError as exc:
        body, code = exc.read().decode(), exc.code
    return code, (json.loads(body) if body.startswith("{") else body)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health(clock: Clock) -> Health:
    return Health(stall_after_s=30, clock=clock)


@pytest.fixture
def server(health: Health) -> Iterator[HealthServer]:
    srv = serve_health(health, 0, "127.0.0.1", metrics=Metrics())
    yield srv
    srv.close()


def test_alive_while_the_loop_beats_and_dead_when_it_stalls(server: HealthServer, health: Health, clock: Clock) -> None:
    assert get(server, "/livez")[0] == 200  # starting: no heartbeat yet
    health.beat()
    clock.now += 29
    code, body = get(server, "/livez")
    assert code == 200 and body["status"] == "ok"
    clock.now += 2  # 31 s without a beat: the loop is stuck
    code, body = get(server, "/livez")
    assert code == 503 and body["status"] == "fail" and "31.0 s ago" in body["checks"]["heartbeat"]["detail"]
    health.beat()
    assert get(server, "/healthz")[0] == 200


def test_ready_only_when_started_and_every_check_passes(server: HealthServer, health: Health) -> None:
    code, body = get(server, "/readyz")
    assert code == 503 and body["checks"]["started"] == {"ok": False, "detail": "starting"}
    health.set_ready(True)
    assert get(server, "/readyz")[0] == 200
    assigned: list[int] = []
    health.add_check("assigned", lambda: (bool(assigned), f"{len(assigned)} partitions"))
    code, body = get(server, "/readyz")
    assert code == 503 and body["checks"]["assigned"] == {"ok": False, "detail": "0 partitions"}
    assigned.append(3)
    assert get(server, "/readyz")[0] == 200


def test_a_check_that_raises_means_not_ready_not_a_crash(server: HealthServer, health: Health) -> None:
    health.set_ready(True)

    def broken() -> bool:
        raise RuntimeError("broker unreachable")

    health.add_check("broker", broken)
    code, body = get(server, "/readyz")
    assert code == 503 and body["checks"]["broker"]["detail"] == "RuntimeError: broker unreachable"
    assert get(server, "/livez")[0] == 200


def test_same_port_serves_metrics_and_unknown_paths_are_404(server: HealthServer) -> None:
    code, text = get(server, "/metrics")
    assert code == 200 and "vigiamar_positions_in_total" in text
    assert get(server, "/nope")[0] == 404


def test_a_table_recovery_that_receives_nothing_for_minutes_stops_the_liveness_heartbeat() -> None:
    """faust's recovery can wait for ever for a changelog partition its consumer no longer
    fetches (seen after the whole process was frozen): /livez must fail so it is restarted."""
    from types import SimpleNamespace

    from streams.worker import RECOVERY_STUCK_S, beat_unless_stuck, recovery_silent_s

    recovery = SimpleNamespace(in_recovery=True, _recovery_started_at=1000.0, _last_active_event_processed_at=None)
    app = SimpleNamespace(tables=SimpleNamespace(recovery=recovery))
    now = [1000.0]
    health = Health(stall_after_s=60.0, clock=lambda: now[0])

    now[0] = 1000.0 + RECOVERY_STUCK_S - 1  # recovering, silent, not yet for long
    assert recovery_silent_s(app, now[0]) == RECOVERY_STUCK_S - 1
    assert beat_unless_stuck(health, app, now[0]) and health.live()[0]

    recovery._last_active_event_processed_at = 1000.0 + RECOVERY_STUCK_S  # events keep coming: a large table
    now[0] = 1000.0 + 2 * RECOVERY_STUCK_S - 1
    assert beat_unless_stuck(health, app, now[0])

    now[0] = 1000.0 + 2 * RECOVERY_STUCK_S + 61  # then nothing for longer than the limit
    assert not beat_unless_stuck(health, app, now[0])
    assert not health.live()[0]  # the last beat is older than stall_after_s: restart

    recovery.in_recovery = False  # not recovering: beats as before
    assert recovery_silent_s(app, now[0]) is None and beat_unless_stuck(health, app, now[0]) and health.live()[0]
    assert recovery_silent_s(SimpleNamespace(), now[0]) is None  # no tables (not a faust app)
