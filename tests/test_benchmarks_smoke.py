"""The benchmark harness runs end to end on tiny inputs and returns positive figures.

No timing thresholds: speed is measured by ``make bench``, never asserted by tests.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest

from benchmarks import Figure, aerial, best_of, density, format_table, replay_ais
from benchmarks import __main__ as bench_main
from tests.conftest import REPO

AIS_SAMPLE = REPO / "data" / "samples" / "virginia_beach_2020-06-04_to_06.csv.gz"


def _check(figures: list[Figure], expect_positions: bool = True) -> None:
    assert figures
    ran = [f for f in figures if not f.skipped]
    assert ran
    for f in ran:
        assert f.positions > 0 and f.seconds > 0 and f.rate > 0, f
        assert f.ratio is None or f.ratio > 0, f
    assert all(line for line in format_table(figures))
    for f in figures:
        f.to_dict()


def test_replay_ais_on_a_few_hundred_rows() -> None:
    figures = replay_ais.run(AIS_SAMPLE, limit=300, repeat=1)
    _check(figures)
    cases = [f.case for f in figures]
    assert cases[0].startswith("floor") and any("loitering" in c for c in cases) and any("full" in c for c in cases)
    # the cost of each pairwise detector shows apart: the per-track set alone, then with each one
    assert replay_ais.TRACK_SET in cases and "per-track set + rendezvous" in cases
    assert "over the per-track set alone" in figures[cases.index("per-track set + rendezvous")].note
    assert {f.positions for f in figures if not f.skipped} == {300}
    assert figures[0].ratio == pytest.approx(1.0)


def test_density_on_a_few_dozen_vessels() -> None:
    figures = density.run(AIS_SAMPLE, sizes=(20, 60), per_vessel=4, budget_s=30.0, limit=3000)
    _check(figures)
    fixed = "60 vessels in 3 boxes (0.2 per 100 km²)"
    assert [f.case.split(":")[0] for f in figures] == ["20 vessels"] * 2 + ["60 vessels"] * 2 + [fixed] * 2
    assert figures[0].positions == 80 and figures[2].positions == 240 and figures[4].positions == 240
    assert set(figures[5].extra) == {"pairwise_us", "pairwise_us_one_box", "swept_per_position"}
    assert "samples swept for pairs a position" in figures[1].note and "swept for pairs" in figures[5].note


def test_fixed_density_cases_beyond_the_boxes_there_are_say_so() -> None:
    figures = density.run(AIS_SAMPLE, sizes=(2, 6, 202), per_vessel=4, budget_s=30.0, limit=3000)
    fixed = [f for f in figures if "boxes" in f.case]
    assert [f.case.split(":")[0] for f in fixed] == ["6 vessels in 3 boxes (0.0 per 100 km²)"] * 2 + [
        "202 vessels in 101 boxes (0.0 per 100 km²)"
    ]
    assert fixed[-1].skipped and "more than 100 boxes" in fixed[-1].note


def test_the_headline_gives_pairwise_cost_at_fixed_density() -> None:
    def fixed(case: str, own: float) -> Figure:
        return Figure("density", case, 100, 0.01, extra={"pairwise_us": own, "pairwise_us_one_box": 8.7})

    figures = [
        Figure("density", "1,000 vessels: + pairwise (cell engine)", 100, 0.01),
        fixed("10,000 vessels in 10 boxes (10.1 per 100 km²): + pairwise (cell engine)", 17.1),
        fixed("50,000 vessels in 50 boxes (10.1 per 100 km²): + pairwise (cell engine)", 19.8),
    ]
    assert bench_main.headline(figures) == [
        "",
        "pairwise detection at a fixed density: +8.7 us/pos in one box, "
        "+17.1 with 10,000 vessels in 10 boxes, +19.8 with 50,000 vessels in 50 boxes",
    ]
    assert bench_main.headline(figures[:1]) == []


def test_fixed_density_boxes_lie_side_by_side_in_open_sea() -> None:
    from benchmarks.replay_ais import reference_environment
    from models.settings import load_settings

    corners = density.tiles(density.TILE_COLUMNS * density.TILE_ROWS)
    assert corners[0] == density.BOX[:2] and len(set(corners)) == len(corners)
    side = density.BOX[2]
    geo = reference_environment(load_settings()).geography
    for lat0, lon0 in corners:  # every box: more than 20 km from any shore, 5 x 5 points each
        points = [(lat0 + side * i / 4, lon0 + side * j / 4) for i in range(5) for j in range(5)]
        assert min(geo.distance_to_shore_m(lat, lon) for lat, lon in points) > 20_000.0, (lat0, lon0)
    with pytest.raises(ValueError):
        density.tiles(len(corners) + 1)


def test_overlay_over_several_boxes_deals_vessels_out_in_turn() -> None:
    segments: list[density.Segment] = [[(0.0, 0.0, 0.0, None, None, None), (60.0, 0.001, 0.001, 3.0, 10.0, None)]]
    rows = density.overlay(segments, 90, boxes=30)
    corners = density.tiles(30)
    side = density.BOX[2]
    for mmsi, _, lat, lon, *_ in rows:
        lat0, lon0 = corners[(int(mmsi) - 300_000_000) % 30]
        assert lat0 <= lat <= lat0 + side + 0.01 and lon0 <= lon <= lon0 + side + 0.01
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)
    assert density.overlay(segments, 50, boxes=1) == density.overlay(segments, 50)


def test_density_overlay_keeps_every_copy_in_the_box_and_in_time_order() -> None:
    segments: list[density.Segment] = [[(0.0, 0.0, 0.0, None, None, None), (60.0, 0.001, 0.001, 3.0, 10.0, None)]]
    rows = density.overlay(segments, 50)
    assert len(rows) == 100 and len({r[0] for r in rows}) == 50
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)
    lat0, lon0, side = density.BOX
    assert all(lat0 <= r[2] <= lat0 + side + 0.01 and lon0 <= r[3] <= lon0 + side + 0.01 for r in rows)


def _aircraft_csv(path: Path, rows: int = 300) -> Path:
    """A synthetic circling aircraft: enough rows for the harness (no detector is being tested)."""
    lines = ["timestamp,icao24,latitude,longitude,altitude,groundspeed,track,vertical_rate,callsign\n"]
    for i in range(rows):
        angle = i * 6.0
        lat = 48.8 + 0.02 * math.cos(math.radians(angle))
        lon = 2.3 + 0.03 * math.sin(math.radians(angle))
        ts = f"2021-10-07T12:{i // 60:02d}:{i % 60:02d}Z"
        lines.append(f"{ts},39b002,{lat:.5f},{lon:.5f},1500,90,{(angle + 90) % 360:.1f},0,FHMAC\n")
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(lines)
    return path


def test_aerial_on_a_few_hundred_rows(tmp_path: Path) -> None:
    figures = aerial.run(_aircraft_csv(tmp_path / "air.csv.gz"), repeat=1)
    _check(figures)
    assert {f.positions for f in figures} == {300}


def test_columnar_sketch_counts_rows_or_declines() -> None:
    assert replay_ais.columnar_sketch(AIS_SAMPLE, limit=200) == 200


def test_best_of_keeps_the_fastest_and_honours_per_case_repeats() -> None:
    calls = {"a": 0, "b": 0}

    def a() -> int:
        calls["a"] += 1
        return 7

    def b() -> int:
        calls["b"] += 1
        return 9

    result = best_of([a, b], [3, 1])
    assert calls == {"a": 3, "b": 1}
    assert [count for _, count in result] == [7, 9]


def test_command_line_runs_one_benchmark_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figures.json"
    argv = ["replay_ais", "--input", str(AIS_SAMPLE), "--limit", "200", "--repeat", "1", "--json", str(out)]
    code = bench_main.main(argv)
    assert code == 0
    assert "floor: gunzip + split lines" in capsys.readouterr().out
    assert '"positions_per_s"' in out.read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        bench_main.main(["no_such_benchmark"])
