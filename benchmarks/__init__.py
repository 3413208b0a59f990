"""vigiamar benchmarks: throughput of the detection pipeline, measured against a floor in the same run.

``make bench`` (``python -m benchmarks``) runs every benchmark and prints a table;
``python -m benchmarks NAME`` runs one (see ``--help``). Machines are noisy (two shared
cores here), so every figure comes with a ratio to a baseline measured in the same run
(the floor: reading the same file with no processing), stages are timed round-robin and
the best of ``--repeat`` runs is kept. Times are the CPU time of this process
(``time.process_time``), which is what "positions/s on one core" means and what other
processes on the machine disturb least; wall time would count their turns too.
Speed is proved here, never by timed tests.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLES = REPO / "data" / "samples"

clock = time.process_time  # CPU seconds of this process: see the module docstring

# One module per benchmark, in the order `python -m benchmarks` runs them.
NAMES = ("replay_ais", "density", "aerial", "streaming")


@dataclass
class Figure:
    """One measured case: how many positions went through in how long, next to its baseline."""

    bench: str
    case: str
    positions: int
    seconds: float
    baseline_rate: float | None = None  # positions/s of the baseline measured in the same run
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)  # figures that are not a rate (latency, CPU)

    @property
    def skipped(self) -> bool:
        """A case that could not run (the note says why)."""
        return self.positions == 0

    @property
    def rate(self) -> float:
        return self.positions / self.seconds if self.seconds > 0 else float("inf")

    @property
    def us_per_position(self) -> float:
        return self.seconds / self.positions * 1e6 if self.positions else float("nan")

    @property
    def ratio(self) -> float | None:
        """Speed as a fraction of the baseline's (1.0 = as fast as the baseline)."""
        return self.rate / self.baseline_rate if self.baseline_rate else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "case": self.case,
            "positions": self.positions,
            "seconds": round(self.seconds, 4),
            "positions_per_s": None if self.skipped else round(self.rate),
            "us_per_position": None if self.skipped else round(self.us_per_position, 3),
            "ratio_to_baseline": None if self.ratio is None else round(self.ratio, 4),
            "note": self.note,
            **({"extra": self.extra} if self.extra else {}),
        }


def data_file(*candidates: Path) -> Path:
    """The first candidate that exists (shared data first, bundled samples as the fallback)."""
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"none of these benchmark inputs exists: {', '.join(map(str, candidates))}")


@contextmanager
def input_lines(path: Path, limit: int | None = None) -> Iterator[Iterator[str]]:
    """Text lines of an input as the embedded shell reads them (gunzip included); the header
    plus at most ``limit`` data rows."""
    from streams.sources.registry import open_text

    with open_text(path) as text:
        yield itertools.islice(text, None if limit is None else limit + 1)


def best_of(
    fns: Sequence[Callable[[], int]], repeat: int | Sequence[int], first: list[float] | None = None
) -> list[tuple[float, int]]:
    """Run each function ``repeat`` times (or ``repeat[i]`` times for the i-th), round-robin
    so that drift hits every case alike; keep the best time of each, with the count it returned.
    ``first``, when given, receives each function's first (cold-cache) time."""
    repeats = [repeat] * len(fns) if isinstance(repeat, int) else list(repeat)
    best: list[tuple[float, int]] = [(float("inf"), 0)] * len(fns)
    for rnd in range(max([1, *repeats])):
        for i, fn in enumerate(fns):
            if rnd >= max(1, repeats[i]):
                continue
            started = clock()
            count = fn()
            elapsed = clock() - started
            if first is not None and rnd == 0:
                first.append(elapsed)
            if elapsed < best[i][0]:
                best[i] = (elapsed, count)
    return best


def format_table(figures: Sequence[Figure]) -> list[str]:
    """Fixed-width table lines: case, positions, seconds, positions/s, µs/position, ratio."""
    head = f"{'case':52} {'positions':>10} {'seconds':>8} {'pos/s':>10} {'us/pos':>8} {'ratio':>7}  note"
    out = [head, "-" * len(head)]
    for f in figures:
        if f.skipped:
            out.append(f"{f.case[:52]:52} {'skipped':>10}  {f.note}")
            continue
        ratio = "" if f.ratio is None else f"{f.ratio:.3f}"
        out.append(
            f"{f.case[:52]:52} {f.positions:>10,} {f.seconds:>8.3f} {f.rate:>10,.0f} "
            f"{f.us_per_position:>8.2f} {ratio:>7}  {f.note}"
        )
    return out
