"""tools/chaos_workers.py: its arguments (the runs themselves need a broker and minutes: not in the suite)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from typing import Any

from tests.conftest import REPO

TOOL = REPO / "tools" / "chaos_workers.py"


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("chaos_workers", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_lists() -> None:
    seeds = _tool().seeds
    assert seeds("3") == [3]
    assert seeds("1-4") == [1, 2, 3, 4]
    assert seeds("1,4-5,9") == [1, 4, 5, 9]


def test_help_names_the_schedule_options() -> None:
    out = subprocess.run([sys.executable, str(TOOL), "--help"], capture_output=True, text=True, check=True, cwd=REPO)
    for option in ("--seeds", "--parts", "--workers", "--timeout-s", "--out", "--pauses"):
        assert option in out.stdout


def test_state_writes_are_summarised_by_flush_offset_and_last_fix() -> None:
    summary = _tool()._summary
    assert summary(b'{"o":39,"last_ts":1591418698.0,"clean":{},"det":{}}') == "o=39 last_ts=1591418698.0"
    assert summary(b'{"o":31,"r":1.0,"resume":31,"end":false}') == "o=31 resume=31"
    assert summary(b'{"o":47,"deleted":true}') == "o=47 deleted=True"
    assert summary(None) == "(deleted)"
    assert summary(b"z\x01\x02") == "(3 bytes)"  # a compressed cells snapshot
