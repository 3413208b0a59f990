"""``python -m benchmarks [NAME ...]``: run the benchmarks and print one table (``make bench``).

examples:
  python -m benchmarks                       # everything (a few minutes on two cores)
  python -m benchmarks replay_ais            # one benchmark
  python -m benchmarks replay_ais --profile  # where the time goes (cProfile, decode → loitering)
  python -m benchmarks density --sizes 1000,10000 --budget 5
  python -m benchmarks --limit 20000 --repeat 1 --json bench.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import NAMES, Figure, format_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Throughput benchmarks of the vigiamar pipeline, with ratios to a floor measured in the same run.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)} (default: all)")
    parser.add_argument("--input", type=Path, default=None, help="input file (default: each benchmark's own)")
    parser.add_argument("--limit", type=int, default=None, help="read at most this many data rows of the input")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case, best kept (default 2)")
    parser.add_argument("--sizes", default=None, help="density: vessel counts, comma-separated")
    parser.add_argument("--budget", type=float, default=10.0, help="density: CPU seconds per case, then stop early")
    parser.add_argument("--profile", action="store_true", help="replay_ais: print a cProfile of decode → loitering")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    return parser


def run_one(name: str, args: argparse.Namespace) -> list[Figure]:
    module = importlib.import_module(f"benchmarks.{name}")
    kwargs: dict[str, Any] = {"limit": args.limit}
    if name == "density":
        kwargs["budget_s"] = args.budget
        if args.sizes:
            kwargs["sizes"] = tuple(int(s) for s in args.sizes.split(","))
    else:
        kwargs["repeat"] = args.repeat
    figures: list[Figure] = module.run(args.input, **kwargs)
    return figures


TARGET_RATE = 300_000  # issue 3: positions/s on one core, MarineCadastre CSV through loitering


def headline(figures: Sequence[Figure]) -> list[str]:
    """The figure the issue asks for, against its target."""
    for f in figures:
        if f.bench == "replay_ais" and f.case == "decode + clean + loitering" and not f.skipped:
            verdict = "reached" if f.rate >= TARGET_RATE else f"not reached: {f.rate / TARGET_RATE:.0%} of it"
            ratio = f", {f.ratio:.3f} of the floor" if f.ratio else ""
            return [
                "",
                f"MarineCadastre CSV through loitering: {f.rate:,.0f} positions/s on one core{ratio} "
                f"(target {TARGET_RATE:,}: {verdict})",
            ]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (known: {', '.join(NAMES)})")
    names = args.names or list(NAMES)
    if args.profile:
        from benchmarks.replay_ais import profile

        profile(args.input, limit=args.limit)
        return 0
    print(f"vigiamar benchmarks — Python {platform.python_version()} on {platform.machine()}, {platform.node()}")
    all_figures: list[Figure] = []
    for name in names:
        started = time.perf_counter()
        try:
            figures = run_one(name, args)
        except FileNotFoundError as exc:
            print(f"\n## {name}: skipped ({exc})")
            continue
        print(f"\n## {name}  ({time.perf_counter() - started:.0f} s)")
        for line in format_table(figures):
            print(line)
        sys.stdout.flush()
        all_figures.extend(figures)
    for line in headline(all_figures):
        print(line)
    if args.json:
        args.json.write_text(json.dumps([f.to_dict() for f in all_figures], indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
