"""aerial: positions/s through the aerial detectors on the Paris-area ADS-B traffic file.

Cases, each reading the same file: the floor (gunzip + split lines), decode (aircraft
CSV → Position), clean (pipeline without detectors), each aircraft detector the registry
enables on its own (per-track ones, and cell-engine ones such as air_sea_rendezvous in a
cell engine of their own), the full default detector set without the cell-engine aircraft
detectors ("before") and the full default detector set. Detectors are picked up from the
registry when the benchmark runs, so new aerial detectors appear here by themselves.
The cheap cases keep the best of ``repeat`` runs; the detector cases run once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchmarks import SHARED_DATA, Figure, best_of, data_file
from benchmarks.replay_ais import (
    cell_detectors,
    decode_only,
    describe,
    read_floor,
    reference_environment,
    through_pipeline,
)
from detectors.base import Environment, TrackDetector
from detectors.cell_engine import CellEngine
from detectors.cells import PairDetector
from detectors.pipeline import Pipeline
from models.settings import Settings, load_settings

NAME = "aerial"


def default_input() -> Path:
    return data_file(SHARED_DATA / "air" / "paris_area_traffic_2021-10-07_1200-1500.csv.gz")


def aircraft_detectors(settings: Settings, env: Environment) -> list[TrackDetector]:
    """Every enabled registry detector that applies to aircraft."""
    from detectors.registry import build_track_detectors

    all_enabled = build_track_detectors(settings.detectors, env, str(settings.path))
    return [d for d in all_enabled if "aircraft" in d.entity_types]


def pairs_aircraft(det: PairDetector) -> bool:
    return any("aircraft" in pair for pair in det.entity_pairs)


def run(path: Path | None = None, *, limit: int | None = None, repeat: int = 2) -> list[Figure]:
    path = path or default_input()
    settings = load_settings()
    env = reference_environment(settings)

    def pipeline_with(names: tuple[str, ...]) -> Callable[[], Pipeline]:
        def make() -> Pipeline:  # fresh detectors for every run
            detectors = [d for d in aircraft_detectors(settings, env) if d.name in names]
            pipeline = Pipeline(settings, env, detectors=detectors)
            pipeline.cells = None
            return pipeline

        return make

    def cells_with(names: tuple[str, ...]) -> Callable[[], Pipeline]:
        def make() -> Pipeline:  # only these cell-engine detectors, no per-track ones
            pair, _ = cell_detectors(settings, env)
            return Pipeline(settings, env, detectors=[], cells=CellEngine([d for d in pair if d.name in names]))

        return make

    def full_without_aerial_pairs() -> Pipeline:
        pair, area = cell_detectors(settings, env)
        return Pipeline(settings, env, cells=CellEngine([d for d in pair if not pairs_aircraft(d)], area))

    def full() -> Pipeline:
        return Pipeline(settings, env)

    cases: list[tuple[str, Callable[[], int]]] = [
        ("floor: gunzip + split lines", partial(read_floor, path, limit)),
        ("decode (aircraft CSV → Position)", partial(decode_only, path, limit)),
        ("decode + clean (pipeline, no detectors)", partial(through_pipeline, path, pipeline_with(()), limit)),
    ]
    aerial = aircraft_detectors(settings, env)
    for det in aerial:
        only_this = pipeline_with((det.name,))
        cases.append((f"decode + clean + {det.name}", partial(through_pipeline, path, only_this, limit)))
    aerial_pairs = [d.name for d in cell_detectors(settings, env)[0] if pairs_aircraft(d)]
    for name in aerial_pairs:
        only_cells = cells_with((name,))
        cases.append((f"decode + clean + {name} (cell engine)", partial(through_pipeline, path, only_cells, limit)))
    if aerial_pairs:
        without = partial(through_pipeline, path, full_without_aerial_pairs, limit)
        cases.append((f"full default set without {', '.join(aerial_pairs)}", without))
    cases.append(("full default detector set", partial(through_pipeline, path, full, limit)))
    repeats = [repeat] * 3 + [1] * (len(cases) - 3)  # detector cases once each: they are the slow ones
    timings = best_of([fn for _, fn in cases], repeats)
    positions = timings[1][1]
    floor_rate = positions / timings[0][0] if timings[0][0] > 0 else None
    figures = [
        Figure(NAME, case, positions, seconds, floor_rate)
        for (case, _), (seconds, _) in zip(cases, timings, strict=True)
    ]
    figures[0].note = f"{path.name}; ratio = speed / floor speed"
    if not aerial:
        figures[2].note = "no aircraft detector registered yet: only cleaning runs on aircraft"
    figures[-1].note = describe(full())
    return figures
