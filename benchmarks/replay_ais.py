"""replay_ais: positions/s of decode → clean → detect on the larger AIS file, against a floor.

Every case reads the same gzip file from disk, so the floor (gunzip + split into lines,
no processing) is the ceiling any stage can reach; each stage adds one step:

    floor        read the file's lines
    decode       + MarineCadastre CSV → Position records
    clean        + pipeline: reorder buffer, per-track cleaning, track engine (no detectors)
    loitering    + the loitering detector (reference geography, as `vigiamar replay` loads it)
    loitering, no geography   the same without ports/shoreline look-ups
    per-track set   + every per-track detector the registry enables, no pairwise detection
    per-track set + X   the same and one cell-engine detector X alone (rendezvous, dark_rendezvous,
                 air_sea_rendezvous): what each pairwise detector costs a position, shown apart
    full default + every detector the registry enables (and the cell engine when the pipeline wires one)
                 the detector sets run once each (they are the slow ones), the others keep the best
                 of ``repeat``
    columnar sketch   not the pipeline: numpy decode (``np.loadtxt``) of the four core columns,
                 per-track sort and vectorised distance / implied speed / slow mask, i.e. the
                 kernels a columnar path would run; it shows the ceiling such a path could reach

``python -m benchmarks replay_ais --profile`` profiles the loitering stage instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchmarks import SAMPLES, SHARED_DATA, Figure, best_of, data_file, input_lines
from detectors.base import Environment
from detectors.cells import AreaDetector, PairDetector
from detectors.pipeline import NoCells, Pipeline
from models.position import Reject
from models.settings import Settings, load_settings

NAME = "replay_ais"
TRACK_SET = "per-track set (no pairwise)"


def default_input() -> Path:
    return data_file(
        SHARED_DATA / "ais" / "us_coastal_2020-06-30.csv.gz",
        SAMPLES / "virginia_beach_2020-06-04_to_06.csv.gz",
    )


def read_floor(path: Path, limit: int | None = None) -> int:
    """Gunzip and split into lines, nothing else. Returns the number of data rows."""
    rows = -1
    with input_lines(path, limit) as lines:
        for _ in lines:
            rows += 1
    return max(rows, 0)


def decode_only(path: Path, limit: int | None = None) -> int:
    """Lines → records with the format's decoder. Returns the number of positions."""
    from streams.sources.registry import detect_format, make_decoder

    with input_lines(path, limit) as lines:
        head = list(itertools.islice(lines, 5))
        decoder = make_decoder(detect_format(head, str(path)), str(path))
        for _ in decoder.decode(itertools.chain(head, lines)):
            pass
    return decoder.stats.positions


def through_pipeline(path: Path, make: Callable[[], Pipeline], limit: int | None = None) -> int:
    """Lines → records → the pipeline (end of input included). Returns the number of positions."""
    from streams.sources.registry import detect_format, make_decoder

    pipeline = make()
    with input_lines(path, limit) as lines:
        head = list(itertools.islice(lines, 5))
        decoder = make_decoder(detect_format(head, str(path)), str(path))
        push = pipeline.push
        dropped = pipeline.dropped
        for item in decoder.decode(itertools.chain(head, lines)):
            if isinstance(item, Reject):
                continue
            push(item)
            if dropped:
                dropped.clear()
        pipeline.finish()
    return decoder.stats.positions


def columnar_sketch(path: Path, limit: int | None = None) -> int:
    """The kernels of a columnar path (see the module docstring). Returns the rows, 0 when
    the file is not a plain MarineCadastre CSV that numpy's reader takes as is."""
    import gzip
    import io

    import numpy as np

    from models.units import DEG_TO_RAD, EARTH_RADIUS_M, KN_PER_MPS

    with path.open("rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if not raw.startswith(b"MMSI,BaseDateTime,LAT,LON"):
        return 0
    dtype = np.dtype([("mmsi", "i8"), ("ts", "M8[s]"), ("lat", "f8"), ("lon", "f8")])
    try:
        cols = np.loadtxt(io.BytesIO(raw), delimiter=",", skiprows=1, usecols=(0, 1, 2, 3), dtype=dtype, max_rows=limit)
    except ValueError:
        return 0  # a row numpy will not take: the per-row decoder is the only way
    ts = cols["ts"].astype("i8").astype("f8")
    order = np.lexsort((ts, cols["mmsi"]))
    mmsi, ts = cols["mmsi"][order], ts[order]
    lat, lon = cols["lat"][order] * DEG_TO_RAD, cols["lon"][order] * DEG_TO_RAD
    same_track = mmsi[1:] == mmsi[:-1]
    a = np.sin(np.diff(lat) * 0.5) ** 2 + np.cos(lat[:-1]) * np.cos(lat[1:]) * np.sin(np.diff(lon) * 0.5) ** 2
    dist = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    speed_kn = np.where(same_track, dist / np.maximum(np.diff(ts), 1.0) * KN_PER_MPS, np.nan)
    slow = speed_kn <= 2.0
    # start of every slow run (what loitering episodes are made of)
    _ = np.flatnonzero(slow[1:] & ~slow[:-1])
    return len(cols)


def reference_environment(settings: Settings) -> Environment:
    """The detector environment `vigiamar replay` builds (zones, ports, shoreline)."""
    from streams.cli import load_environment

    return load_environment(settings)


def cell_detectors(settings: Settings, env: Environment) -> tuple[list[PairDetector], list[AreaDetector]]:
    """The enabled cell-engine detectors: (pair detectors, area detectors)."""
    from detectors.registry import build_pair_detectors

    return build_pair_detectors(settings.detectors, env, str(settings.path))


def pipeline_factories(settings: Settings, env: Environment) -> list[tuple[str, Callable[[], Pipeline]]]:
    """(case, factory) for every pipeline stage, cheapest first."""
    from detectors.cell_engine import CellEngine, engine_timing
    from detectors.registry import TRACK_DETECTORS, detector_configs

    configs = detector_configs(settings.detectors, str(settings.path))
    bare_env = Environment(zones=settings.zones)

    def only(names: tuple[str, ...], environment: Environment) -> Callable[[], Pipeline]:
        def make() -> Pipeline:
            dets = [TRACK_DETECTORS[n].factory(configs[n], environment) for n in names]
            pipeline = Pipeline(settings, environment, detectors=dets)
            pipeline.cells = None  # track stages only: pairwise detection is the full case's
            return pipeline

        return make

    def full() -> Pipeline:
        return Pipeline(settings, env)

    def track_and(pairwise: str | None) -> Callable[[], Pipeline]:
        def make() -> Pipeline:  # every enabled per-track detector, and one cell-engine detector
            if pairwise is None:
                return Pipeline(settings, env, cells=NoCells())
            pair, area = cell_detectors(settings, env)
            pair = [d for d in pair if d.name == pairwise]
            area = [a for a in area if a.name == pairwise]
            return Pipeline(settings, env, cells=CellEngine(pair, area, engine_timing(pair)))

        return make

    pairwise = [d.name for group in cell_detectors(settings, env) for d in group]
    return [
        ("decode + clean (pipeline, no detectors)", only((), env)),
        ("decode + clean + loitering", only(("loitering",), env)),
        ("decode + clean + loitering, no geography", only(("loitering",), bare_env)),
        (TRACK_SET, track_and(None)),
        *[(f"per-track set + {name}", track_and(name)) for name in pairwise],
        ("full default detector set", full),
    ]


def describe(pipeline: Pipeline) -> str:
    names = [d.name for d in pipeline.detectors]
    if pipeline.cells is not None and not isinstance(pipeline.cells, NoCells):
        names.append(type(pipeline.cells).__name__)
    return "detectors: " + (", ".join(names) or "none")


def run(path: Path | None = None, *, limit: int | None = None, repeat: int = 2) -> list[Figure]:
    path = path or default_input()
    settings = load_settings()
    env = reference_environment(settings)
    stages = pipeline_factories(settings, env)
    cases: list[tuple[str, Callable[[], int]]] = [
        ("floor: gunzip + split lines", partial(read_floor, path, limit)),
        ("decode (MarineCadastre CSV → Position)", partial(decode_only, path, limit)),
    ]
    for case, make in stages:
        cases.append((case, partial(through_pipeline, path, make, limit)))
    cases.append(("columnar sketch: numpy decode + track kinematics", partial(columnar_sketch, path, limit)))
    slow = next(i for i, (case, _) in enumerate(cases) if case == TRACK_SET)
    repeats = [repeat] * slow + [1] * (len(cases) - slow)  # every detector set: by far the slowest
    repeats[-1] = repeat  # the columnar sketch
    first: list[float] = []
    timings = best_of([fn for _, fn in cases], repeats, first)
    positions = timings[1][1]
    floor_rate = positions / timings[0][0] if timings[0][0] > 0 else None
    figures: list[Figure] = []
    previous_us: float | None = None
    track_us: float | None = None
    for (case, _), (seconds, _count) in zip(cases, timings, strict=True):
        fig = Figure(NAME, case, positions, seconds, floor_rate)
        if case == TRACK_SET:
            track_us = fig.us_per_position
        elif track_us is not None and case.startswith("per-track set + "):
            fig.note = f"+{fig.us_per_position - track_us:.2f} us/pos over the per-track set alone"
        elif previous_us is not None and case.startswith("decode"):
            if not case.endswith("no geography"):
                fig.note = f"+{fig.us_per_position - previous_us:.2f} us/pos over the previous stage"
                previous_us = fig.us_per_position
        else:
            previous_us = fig.us_per_position
        figures.append(fig)
    figures[0].note = f"{path.name}; ratio = speed / floor speed"
    loitering = figures[3]
    if repeat > 1 and positions:
        # the first run also builds the reference geography's cell memo, as `vigiamar replay` does
        loitering.note += f"; first run (cold geography) {positions / first[3]:,.0f} pos/s"
    full = figures[-2]
    full.note = describe(stages[-1][1]())
    if track_us is not None:
        full.note = f"+{full.us_per_position - track_us:.2f} us/pos over the per-track set alone; {full.note}"
        figures[slow].note = describe(dict(stages)[TRACK_SET]())
    sketch = figures[-1]
    if timings[-1][1] == 0:
        sketch.positions, sketch.seconds, sketch.note = 0, 0.0, "the input is not a plain 4-column CSV numpy reads"
    else:
        sketch.note = "not the detectors: the kernels a columnar path would run"
    return figures


def profile(path: Path | None = None, *, limit: int | None = None, top: int = 25) -> None:
    """cProfile of decode + clean + loitering, top functions by own time. One unprofiled run
    first warms the reference geography's cell memo, as the best-of-N figures are warm."""
    import cProfile
    import pstats

    path = path or default_input()
    settings = load_settings()
    env = reference_environment(settings)
    make = dict(pipeline_factories(settings, env))["decode + clean + loitering"]
    through_pipeline(path, make, limit)
    prof = cProfile.Profile()
    prof.runcall(through_pipeline, path, make, limit)
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)
