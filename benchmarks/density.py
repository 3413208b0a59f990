"""density: the cost per position of pairwise (rendezvous) detection as vessel density grows.

Real tracks are cut into short segments (``per_vessel`` consecutive fixes) and overlaid,
shifted in time (by up to ``jitter_s``) and in space (each copy starts at a random point of
a 1° × 1° box of open sea off Virginia Beach), one copy per synthetic vessel: 1k, 10k and
50k vessels sailing in the same box in the same hour. Each density runs the pipeline with
the default track detectors, without and with pairwise detection (the cell engine), and
reports µs per position; the ratio compares each case with the same density without
pairwise detection (and, for those, with the lowest density).

A second set of cases holds the density fixed and grows the total: the smallest count of
vessels per box, in as many boxes of open sea side by side (:func:`tiles`) as the larger
counts need (10k vessels in 10 boxes, 50k in 50). Pairwise detection looks for partners
only in a vessel's own and neighbouring cells, so its cost per position must stay that of
one box while the total grows fifty-fold; these cases show whether it does.

The pairwise cases need ``detectors/cell_engine.py`` wired into the pipeline
(``Pipeline(settings, env).cells``) or a ``build_cell_engine(tables, env, source)`` in it; until
then they are skipped with a message and picked up by themselves once it exists. A case
that runs past ``budget_s`` stops early and reports the rate over what it processed, marked
STOPPED: every vessel is active from the first minutes, but the cell engine's cost per
position keeps growing as cells accumulate samples, so a stopped figure is a lower bound
on the cost (at 50k vessels: 83 µs/position over the first 30 % against 349 µs over the
whole hour). Each case runs after an untimed pass over its own rows (track detectors),
which warms the reference geography for the cells its vessels visit; pairwise detection is
warmed once on the smallest case.
"""

from __future__ import annotations

import importlib
import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import SAMPLES, SHARED_DATA, Figure, clock, data_file
from benchmarks.replay_ais import reference_environment
from detectors.base import CellEngineLike, Environment
from detectors.pipeline import Pipeline
from models.position import Position
from models.settings import Settings, load_settings
from models.units import M_PER_DEG_LAT
from streams.sources.marinecadastre import MarineCadastreDecoder

NAME = "density"
SIZES = (1_000, 10_000, 50_000)
BOX = (36.4, -75.2, 1.0)  # south-west corner (lat, lon) and side in degrees: open sea, 30–150 km offshore
# boxes for the fixed-density cases: BOX first, then eastwards, TILE_COLUMNS a row, rows southwards
# (every one more than 20 km from any shore: the Atlantic between Cape Hatteras and Bermuda)
TILE_COLUMNS = 25
TILE_ROWS = 4
START_TS = 1593561600.0  # 2020-07-01T00:00:00Z

# (dt_s, dlat, dlon, speed_kn, course_deg, heading_deg) relative to a segment's first fix
Segment = list[tuple[float, float, float, float | None, float | None, float | None]]
# (mmsi, ts, lat, lon, speed_kn, course_deg, heading_deg)
Row = tuple[str, float, float, float, float | None, float | None, float | None]


def box_area_km2() -> float:
    lat0, _, side = BOX
    mid = math.radians(lat0 + side / 2)
    return (side * M_PER_DEG_LAT / 1000) ** 2 * math.cos(mid)


def default_input() -> Path:
    return data_file(
        SHARED_DATA / "ais" / "us_coastal_2020-06-30.csv.gz",
        SAMPLES / "virginia_beach_2020-06-04_to_06.csv.gz",
    )


def track_segments(path: Path, per_vessel: int, max_span_s: float = 7200.0, limit: int | None = None) -> list[Segment]:
    """Runs of ``per_vessel`` consecutive fixes of one vessel spanning at most ``max_span_s``."""
    from benchmarks import input_lines

    tracks: dict[str, list[Position]] = defaultdict(list)
    with input_lines(path, limit) as lines:
        for item in MarineCadastreDecoder(str(path)).decode(lines):
            if isinstance(item, Position):
                tracks[item.entity_id].append(item)
    segments: list[Segment] = []
    for fixes in tracks.values():
        fixes.sort(key=lambda p: p.ts)
        for i in range(0, len(fixes) - per_vessel + 1, per_vessel):
            run = fixes[i : i + per_vessel]
            first = run[0]
            if run[-1].ts - first.ts > max_span_s or len({p.ts for p in run}) < per_vessel:
                continue
            segments.append(
                [
                    (p.ts - first.ts, p.lat - first.lat, p.lon - first.lon, p.speed_kn, p.course_deg, p.heading_deg)
                    for p in run
                ]
            )
    if not segments:
        raise ValueError(f"{path}: no track has {per_vessel} fixes within {max_span_s:.0f} s")
    return segments


def tiles(n: int) -> list[tuple[float, float]]:
    """South-west corners (lat, lon) of ``n`` boxes of BOX's size side by side, BOX first."""
    if not 1 <= n <= TILE_COLUMNS * TILE_ROWS:
        raise ValueError(f"between 1 and {TILE_COLUMNS * TILE_ROWS} boxes, not {n}")
    lat0, lon0, side = BOX
    return [(lat0 - (i // TILE_COLUMNS) * side, lon0 + (i % TILE_COLUMNS) * side) for i in range(n)]


def overlay(
    segments: Sequence[Segment], vessels: int, jitter_s: float = 600.0, seed: int = 7, boxes: int = 1
) -> list[Row]:
    """``vessels`` copies of real segments, time- and space-shifted into the box (or, one
    vessel in turn to each, into ``boxes`` boxes: :func:`tiles`), in event-time order."""
    rng = random.Random(seed)
    corners = tiles(boxes)
    side = BOX[2]
    rows: list[Row] = []
    for v in range(vessels):
        seg = segments[v % len(segments)]
        mmsi = str(300_000_000 + v)
        lat0, lon0 = corners[v % boxes]
        t0 = START_TS + rng.uniform(0.0, jitter_s)
        la, lo = lat0 + rng.random() * side, lon0 + rng.random() * side
        rows.extend((mmsi, t0 + dt, la + dlat, lo + dlon, sog, cog, hdg) for dt, dlat, dlon, sog, cog, hdg in seg)
    rows.sort(key=lambda r: r[1])
    return rows


def positions(rows: Sequence[Row]) -> list[Position]:
    """Fresh records for one run (cleaning fills in derived fields in place)."""
    return [
        Position("vessel", m, ts, lat, lon, sog, cog, hdg, source="density") for m, ts, lat, lon, sog, cog, hdg in rows
    ]


def feed(pipeline: Pipeline, records: Sequence[Position], budget_s: float) -> tuple[int, float, bool]:
    """Push records until done (then finish) or past the budget. (positions, seconds, finished)."""
    push = pipeline.push
    dropped = pipeline.dropped
    chunk = 2000
    started = clock()
    for lo in range(0, len(records), chunk):
        for rec in records[lo : lo + chunk]:
            push(rec)
        dropped.clear()
        elapsed = clock() - started
        if elapsed > budget_s and lo + chunk < len(records):
            return lo + chunk, elapsed, False
    pipeline.finish()
    return len(records), clock() - started, True


def _stopped(done: bool, n: int, total: int, seconds: float) -> str:
    if done:
        return ""
    return (
        f"STOPPED after {seconds:.0f} s at {n / total:.0%} of the positions: cost grows as cells fill, "
        "so this understates it (raise --budget); "
    )


def cell_engine_factory(settings: Settings, env: Environment) -> tuple[Callable[[], CellEngineLike] | None, str]:
    """A way to build the cell engine, or None and why not."""
    try:
        module = importlib.import_module("detectors.cell_engine")
    except ModuleNotFoundError as exc:
        if exc.name != "detectors.cell_engine":
            raise
        return None, "detectors/cell_engine.py is not there yet: pairwise cases skipped"
    if Pipeline(settings, env).cells is not None:

        def wired() -> CellEngineLike:
            cells = Pipeline(settings, env).cells
            assert cells is not None
            return cells

        return wired, "cell engine as the pipeline wires it"
    build = getattr(module, "build_cell_engine", None)
    if callable(build):
        return (lambda: build(settings.detectors, env, str(settings.path))), "detectors.cell_engine.build_cell_engine"
    return None, (
        "detectors/cell_engine.py exists but Pipeline(settings, env).cells is None and it has no "
        "build_cell_engine(detector_tables, env, source): pairwise cases skipped"
    )


def run(
    path: Path | None = None,
    *,
    sizes: Sequence[int] = SIZES,
    per_vessel: int = 8,
    budget_s: float = 10.0,
    limit: int | None = None,
) -> list[Figure]:
    path = path or default_input()
    settings = load_settings()
    env = reference_environment(settings)
    segments = track_segments(path, per_vessel, limit=limit)
    cells_factory, how = cell_engine_factory(settings, env)
    figures: list[Figure] = []
    base_rate: float | None = None
    # Warm-up, untimed, with pairwise detection: the sea checks of its thresholds build their
    # memos on first use (kept for the rest of the process), and the first case would pay alone.
    if cells_factory is not None:
        _timed(overlay(segments, min(sizes)), settings, env, cells_factory, budget_s)
    detectors = len(Pipeline(settings, env).detectors)
    for size in sizes:
        rows = overlay(segments, size)
        label = f"{size:,} vessels"
        density = f"{size / box_area_km2() * 100:.1f} vessels/100 km²"

        # untimed: the reference geography's memo for the cells these vessels visit (more
        # vessels in the box visit more of its cells; without this the case would pay for them)
        _timed(rows, settings, env, None, budget_s)
        n, seconds, done, _ = _timed(rows, settings, env, None, budget_s)
        without = Figure(NAME, f"{label}: track detectors, no pairwise", n, seconds, base_rate)
        without.note = _stopped(done, n, len(rows), seconds) + (
            f"{density}, {per_vessel} fixes each, {detectors} track detectors; ratio vs the lowest density"
        )
        if base_rate is None:
            base_rate = without.baseline_rate = without.rate
        figures.append(without)

        case = f"{label}: + pairwise (cell engine)"
        if cells_factory is None:
            figures.append(Figure(NAME, case, 0, 0.0, note=how))
            continue
        n, seconds, done, swept = _timed(rows, settings, env, cells_factory, budget_s)
        note = _stopped(done, n, len(rows), seconds) + f"{how}; {_work(swept)}ratio vs no pairwise"
        figures.append(Figure(NAME, case, n, seconds, without.rate, note))
    figures.extend(_fixed_density(segments, sizes, settings, env, cells_factory, budget_s))
    return figures


def _timed(
    rows: Sequence[Row],
    settings: Settings,
    env: Environment,
    cells_factory: Callable[[], CellEngineLike] | None,
    budget_s: float,
) -> tuple[int, float, bool, float | None]:
    """One pipeline over fresh records of ``rows``, with pairwise detection when given its
    engine: (positions, seconds, finished, samples swept for pairs per position). The
    pipeline is gone on return: a case never runs beside the last one's state (a larger heap
    makes every collection, and so every case after it, slower)."""
    pipeline = Pipeline(settings, env)
    pipeline.cells = None if cells_factory is None else cells_factory()
    n, seconds, done = feed(pipeline, positions(rows), budget_s)
    swept = getattr(getattr(pipeline.cells, "stage", None), "compared", None)
    return n, seconds, done, swept / n if swept is not None and done else None


def _work(swept: float | None) -> str:
    return "" if swept is None else f"{swept:.2f} samples swept for pairs a position; "


def _fixed_density(
    segments: Sequence[Segment],
    sizes: Sequence[int],
    settings: Settings,
    env: Environment,
    cells_factory: Callable[[], CellEngineLike] | None,
    budget_s: float,
) -> list[Figure]:
    """The larger counts at the smallest count's density (one box each per that many vessels):
    track detectors alone, then with pairwise detection; notes give pairwise detection's own
    cost per position next to its cost in one box (the first density case, the same rows)."""
    per_box = min(sizes)
    larger = sorted(s for s in sizes if s > per_box)
    if cells_factory is None or not larger:
        return []
    one_box = _pairwise_us(overlay(segments, per_box), settings, env, cells_factory, budget_s)
    figures: list[Figure] = []
    for size in larger:
        boxes = math.ceil(size / per_box)
        label = f"{size:,} vessels in {boxes} boxes ({per_box / box_area_km2() * 100:.1f} per 100 km²)"
        if boxes > TILE_COLUMNS * TILE_ROWS:
            note = f"skipped: more than {TILE_COLUMNS * TILE_ROWS} boxes (raise the smallest size)"
            figures.append(Figure(NAME, f"{label}: + pairwise (cell engine)", 0, 0.0, note=note))
            continue
        rows = overlay(segments, size, boxes=boxes)
        _timed(rows, settings, env, None, budget_s)  # untimed: the geography's memo for the new boxes
        plain, paired = _plain_and_paired(rows, settings, env, cells_factory, budget_s)
        without = Figure(NAME, f"{label}: track detectors, no pairwise", *plain[:2])
        without.note = _stopped(plain[2], plain[0], len(rows), plain[1]) + "same density as the first case"
        with_cells = Figure(NAME, f"{label}: + pairwise (cell engine)", *paired[:2], baseline_rate=without.rate)
        own = with_cells.us_per_position - without.us_per_position
        with_cells.note = _stopped(paired[2], paired[0], len(rows), paired[1]) + (
            f"pairwise +{own:.1f} us/pos (in one box, measured now: +{one_box:.1f}); "
            f"{_work(paired[3])}ratio vs no pairwise"
        )
        with_cells.extra = {"pairwise_us": round(own, 3), "pairwise_us_one_box": round(one_box, 3)}
        if paired[3] is not None:
            with_cells.extra["swept_per_position"] = round(paired[3], 4)
        figures += [without, with_cells]
    return figures


def _plain_and_paired(
    rows: Sequence[Row],
    settings: Settings,
    env: Environment,
    cells_factory: Callable[[], CellEngineLike],
    budget_s: float,
) -> tuple[tuple[int, float, bool, float | None], tuple[int, float, bool, float | None]]:
    """:func:`_timed` of the track detectors alone, then with pairwise detection."""
    return _timed(rows, settings, env, None, budget_s), _timed(rows, settings, env, cells_factory, budget_s)


def _pairwise_us(
    rows: Sequence[Row],
    settings: Settings,
    env: Environment,
    cells_factory: Callable[[], CellEngineLike],
    budget_s: float,
) -> float:
    """Pairwise detection's own cost, µs per position (with it less without it, same rows;
    the lower of two tries: the rows of one box are few, and one try is noisy)."""
    own = []
    for _ in range(2):
        (n0, s0, _, _), (n1, s1, _, _) = _plain_and_paired(rows, settings, env, cells_factory, budget_s)
        own.append((s1 / n1 - s0 / n0) * 1e6)
    return min(own)
