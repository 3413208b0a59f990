"""Threshold sweeps: parameters validated like the settings file, a grid run in processes, a plot."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from models.errors import ConfigError
from models.settings import Settings
from streams.cli import main
from streams.sweep import apply_overrides, grid, parse_param, parse_value
from tests.conftest import REPO, TEST_DATA

SLICE = TEST_DATA / "vb_367584050_2020-06-04.csv.gz"
GFW = REPO / "data" / "labels" / "virginia_beach_2020-06-04_to_06_gfw.csv"


def test_params_and_grid() -> None:
    assert [parse_value(v) for v in ("2", "2.5", "true", '"high"', "high")] == [2, 2.5, True, "high", "high"]
    a = parse_param("loitering.max_speed_kn=1.5, 2,3")
    b = parse_param("detectors.loitering.severity=low,high")
    assert a.values == (1.5, 2, 3) and b.key == "detectors.loitering.severity"
    points = grid([a, b])
    assert len(points) == 6 and points[1] == (("loitering.max_speed_kn", 1.5), ("detectors.loitering.severity", "high"))
    for bad in ("loitering.max_speed_kn", "max_speed_kn=1", "loitering.max_speed_kn="):
        with pytest.raises(ConfigError):
            parse_param(bad)
    with pytest.raises(ConfigError, match="given twice"):
        grid([a, a])


def test_overrides_are_validated_and_leave_the_base_settings_alone(settings: Settings) -> None:
    tuned = apply_overrides(settings, [("loitering.max_speed_kn", 1), ("cleaning.min_jump_m", 800)])
    assert tuned.detectors["loitering"]["max_speed_kn"] == 1 and tuned.cleaning.min_jump_m == 800.0
    assert settings.detectors["loitering"]["max_speed_kn"] == 2.0 and settings.cleaning.min_jump_m == 500.0
    with pytest.raises(ConfigError) as err:
        apply_overrides(settings, [("loitering.max_speed_kn", 50)])
    assert "detectors.loitering.max_speed_kn: 50.0 is outside the allowed range [0.1, 20]" in str(err.value)
    with pytest.raises(ConfigError, match="unknown detector"):
        apply_overrides(settings, [("fishing.max_speed_kn", 1)])
    with pytest.raises(ConfigError, match=r"loitering\.max_sped_kn: unknown key"):
        apply_overrides(settings, [("loitering.max_sped_kn", 1)])
    with pytest.raises(ConfigError, match=r"cleaning\.reanchor_after: expected an integer"):
        apply_overrides(settings, [("cleaning.reanchor_after", 1.5)])


def test_sweep_command_runs_the_grid_in_processes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png, out = tmp_path / "sweep.png", tmp_path / "sweep.json"
    # Both stops of the slice last under 3 h: a 3.3 h minimum finds neither.
    args = ["sweep", "--labels", str(GFW), "--kinds", "loitering", "--param", "loitering.min_duration_s=3600,12000",
            "--jobs", "2", "--plot", str(png), "--json", str(out), str(SLICE)]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "2 settings, 2 worker process(es)" in captured.err
    rows = [line.split() for line in captured.out.splitlines() if line.startswith(("3600 ", "12000 "))]
    assert [r[:7] for r in rows] == [
        ["3600", "loitering", "2", "2", "1.00", "1.00", "1.00"],
        ["12000", "loitering", "2", "0", "n/a", "0.00", "0.00"],
    ]
    points = orjson.loads(out.read_bytes())
    assert [p["params"] for p in points] == [{"loitering.min_duration_s": 3600}, {"loitering.min_duration_s": 12000}]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_sweep_command_rejects_a_bad_value_before_running(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sweep", "--labels", str(GFW), "--param", "loitering.max_speed_kn=2,99", str(SLICE)]
    assert main(args) == 2
    assert "loitering.max_speed_kn: 99.0 is outside the allowed range" in capsys.readouterr().err
