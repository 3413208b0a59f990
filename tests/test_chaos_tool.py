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
    for option in ("--seeds", "--parts", "--workers", "--timeout-s", "--out"):
        assert option in out.stdout
