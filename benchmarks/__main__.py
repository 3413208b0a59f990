"""``python -m benchmarks [NAME ...]``: run the benchmarks and print one table (``make bench``).

examples:
  python -m benchmarks                       # everything (a few minutes on two cores)
  python -m benchmarks replay_ais            # one benchmark
  python -m benchmarks replay_ais --profile  # where the time goes (cProfile, decode → loitering)
  python -m benchmarks density --sizes 1000,10000 --budget 5
  python -m benchmarks --limit 20000 --repeat 1 --json bench.json
  python -m benchmarks streaming --workers 1,2,4 --rate 5000   # faust worker on a local broker
  python -m benchmarks streaming --limit 236000 --kafka flush_interval_s=5
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import NAMES, Figure, format_table
from streams.runtime import GC_ENV, tune_gc


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
    parser.add_argument("--rate", type=float, default=None, help="streaming: positions/s of the latency run (10000)")
    parser.add_argument("--workers", default=None, help="streaming: worker counts, comma-separated (1,2)")
    parser.add_argument("--baseline-limit", type=int, default=None, help="streaming: positions for the faust baseline")
    parser.add_argument("--latency-s", type=float, default=None, help="streaming: seconds of the latency run, at most")
    parser.add_argument("--kafka", default=None, help="streaming: [kafka] overrides, e.g. flush_interval_s=5")
    parser.add_argument("--fetch-wait-ms", type=int, default=None, help="streaming: [kafka] fetch_max_wait_ms")
    parser.add_argument(
        "--no-pairwise", action="store_true", help="streaming: skip the as-shipped worker runs (cells stage on)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    return parser


def streaming_options(args: argparse.Namespace) -> dict[str, Any]:
    """The streaming benchmark's keyword arguments from the command line (its defaults otherwise)."""
    from benchmarks.streaming import parse_counts, parse_overrides

    out: dict[str, Any] = {}
    if args.rate is not None:
        out["rate"] = args.rate
    if args.workers:
        out["workers"] = parse_counts(args.workers)
    if args.baseline_limit is not None:
        out["baseline_limit"] = args.baseline_limit
    if args.latency_s is not None:
        out["latency_s"] = args.latency_s
    if args.kafka:
        out["kafka"] = parse_overrides(args.kafka)
    if args.fetch_wait_ms is not None:
        out["fetch_wait_ms"] = args.fetch_wait_ms
    if args.no_pairwise:
        out["pairwise"] = False
    return out


def run_one(name: str, args: argparse.Namespace) -> list[Figure]:
    module = importlib.import_module(f"benchmarks.{name}")
    kwargs: dict[str, Any] = {"limit": args.limit}
    if name == "density":
        kwargs["budget_s"] = args.budget
        if args.sizes:
            kwargs["sizes"] = tuple(int(s) for s in args.sizes.split(","))
    elif name == "streaming":
        kwargs.update(streaming_options(args))
    else:
        kwargs["repeat"] = args.repeat
    figures: list[Figure] = module.run(args.input, **kwargs)
    return figures


TARGET_RATE = 300_000  # issue 3: positions/s on one core, MarineCadastre CSV through loitering
FULL_SET_TARGET_RATE = 200_000  # issue 4: the full default detector set, positions/s on one core


STREAM_TARGET_RATIO = 10.0  # issue 6: the worker against a plain faust agent, same run
STREAM_TARGET_RATE = 50_000  # positions/s per worker
STREAM_TARGET_P99_S = 1.0


def streaming_headline(figures: Sequence[Figure]) -> list[str]:
    """Issue 6's figures against its targets: worker ÷ faust baseline, positions/s, p99 latency."""
    ran = [f for f in figures if f.bench == "streaming" and not f.skipped]
    base = next((f for f in ran if f.case.startswith("baseline")), None)
    one = next((f for f in ran if f.extra.get("workers") == 1 and not f.extra.get("shipped")), None)
    lats = [f for f in ran if "p99_s" in f.extra]
    out: list[str] = []
    if base is not None and one is not None and one.ratio is not None:
        verdict = "reached" if one.ratio >= STREAM_TARGET_RATIO and one.rate >= STREAM_TARGET_RATE else "not reached"
        line = f"streaming, 1 worker: {one.rate:,.0f} positions/s end to end, {one.ratio:.1f}x the faust baseline"
        cpu_w, cpu_b = one.extra.get("cpu_us_workers"), base.extra.get("cpu_us_workers")
        if cpu_w and cpu_b:
            line += f" ({cpu_b / cpu_w:.1f}x by CPU: {cpu_w:,.0f} against {cpu_b:,.0f} us a position)"
        out.append(f"{line} (target {STREAM_TARGET_RATIO:.0f}x and {STREAM_TARGET_RATE:,}/s: {verdict})")
    for lat in lats:
        p99 = lat.extra["p99_s"]
        verdict = "reached" if p99 < STREAM_TARGET_P99_S else "not reached"
        shipped = " (as shipped, cells stage on; per-track alerts)" if lat.extra.get("shipped") else ""
        out.append(
            f"streaming, event->alert at {lat.extra['rate']:,.0f} positions/s{shipped}: "
            f"p50 {lat.extra['p50_s'] * 1e3:,.0f} ms, p99 {p99 * 1e3:,.0f} ms "
            f"(target p99 < {STREAM_TARGET_P99_S:.0f} s: {verdict})"
        )
    return out


def density_headline(figures: Sequence[Figure]) -> list[str]:
    """Issue 4: pairwise detection's own cost at a fixed density as the total grows."""
    fixed = [f for f in figures if f.bench == "density" and "pairwise_us" in f.extra]
    if not fixed:
        return []
    one_box = fixed[0].extra["pairwise_us_one_box"]
    parts = ", ".join(f"+{f.extra['pairwise_us']:.1f} with {f.case.split(' (')[0]}" for f in fixed)
    return [f"pairwise detection at a fixed density: +{one_box:.1f} us/pos in one box, {parts}"]


def headline(figures: Sequence[Figure]) -> list[str]:
    """The figures the issues ask for, against their targets."""
    stream = [*density_headline(figures), *streaming_headline(figures)]
    if stream:
        stream = ["", *stream]
    lines: list[str] = []
    for f in figures:
        if f.bench != "replay_ais" or f.skipped:
            continue
        if f.case == "decode + clean + loitering":
            what, target = "MarineCadastre CSV through loitering", TARGET_RATE
        elif f.case == "full default detector set":
            what, target = "MarineCadastre CSV through the full default detector set", FULL_SET_TARGET_RATE
        else:
            continue
        verdict = "reached" if f.rate >= target else f"not reached: {f.rate / target:.0%} of it"
        ratio = f", {f.ratio:.3f} of the floor" if f.ratio else ""
        lines.append(f"{what}: {f.rate:,.0f} positions/s on one core{ratio} (target {target:,}: {verdict})")
    if lines:
        return ["", *lines, *stream[1:]]
    return stream


def modules_in_use() -> str:
    """Whether this process runs the compiled build of models and detectors (models.compiled)."""
    from models import compiled

    if compiled.active():
        return f"compiled ({compiled.BUILD.relative_to(compiled.ROOT)}/; {compiled.ENV}=0 runs the sources)"
    if not compiled.BUILD.is_dir():
        return "sources (no compiled build: `make compiled`)"
    return f"sources ({compiled.stale_reason() or f'{compiled.ENV}=0'})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (known: {', '.join(NAMES)})")
    names = args.names or list(NAMES)
    gen0 = tune_gc()[0], gc.get_threshold()[0]  # as every vigiamar command runs (streams.runtime)
    if args.profile:
        from benchmarks.replay_ais import profile

        profile(args.input, limit=args.limit)
        return 0
    print(
        f"vigiamar benchmarks — Python {platform.python_version()} on {platform.machine()}, {platform.node()}; "
        f"collector's young threshold {gen0[1]:,} (was {gen0[0]:,}; ${GC_ENV} sets it)"
    )
    print(f"models and detectors: {modules_in_use()}")
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
