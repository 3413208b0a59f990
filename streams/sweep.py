"""Backtests over a grid of thresholds (``vigiamar sweep``), in parallel processes.

``--param loitering.max_speed_kn=1.5,2,3 --param loitering.min_duration_s=1800,3600`` gives
the 3 × 2 grid; every point replays the input with those values on top of the settings file
and scores the alerts against the labels. A parameter is ``<detector>.<key>`` (a
``[detectors.<detector>]`` key), ``detectors.<detector>.<key>``, or ``cleaning.<key>`` /
``pipeline.<key>``; every value is validated like the settings file (the error names the key
and the allowed range) before any work starts.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
import tomllib
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from models.configuring import build_config
from models.errors import ConfigError
from models.settings import ReferenceConfig, Settings, load_settings
from streams.backtest import BacktestResult, backtest, result_wire
from streams.labels import load_labels

_TYPED_SECTIONS = ("cleaning", "pipeline")


@dataclass(frozen=True)
class Param:
    key: str  # as given, e.g. "loitering.max_speed_kn"
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Job:
    inputs: tuple[str, ...]
    config: str | None
    overrides: tuple[tuple[str, Any], ...]
    labels: str
    tolerance_s: float
    kinds: tuple[str, ...] | None
    input_format: str | None


@dataclass(frozen=True)
class PointResult:
    overrides: tuple[tuple[str, Any], ...]
    result: dict[str, Any]  # streams.backtest.result_wire
    alerts: int
    seconds: float

    @property
    def setting(self) -> str:
        return " ".join(f"{k}={_fmt_value(v)}" for k, v in self.overrides)


def parse_value(text: str) -> Any:
    """A TOML value (1, 2.5, true, "x"), or the bare text as a string."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_param(spec: str) -> Param:
    key, sep, values = spec.partition("=")
    key = key.strip()
    if not sep or not key or "." not in key:
        raise ConfigError(spec, "expected <detector>.<key>=v1,v2,... (e.g. loitering.max_speed_kn=1.5,2,3)", "--param")
    items = [v for v in values.split(",") if v.strip()]
    if not items:
        raise ConfigError(key, "no values given", "--param")
    return Param(key, tuple(parse_value(v) for v in items))


def grid(params: Sequence[Param]) -> list[tuple[tuple[str, Any], ...]]:
    keys = [p.key for p in params]
    if len(set(keys)) != len(keys):
        raise ConfigError(next(k for k in keys if keys.count(k) > 1), "given twice", "--param")
    return [tuple(zip(keys, combo, strict=True)) for combo in itertools.product(*(p.values for p in params))]


def apply_overrides(settings: Settings, overrides: Sequence[tuple[str, Any]]) -> Settings:
    """Settings with the overridden values, validated (errors name the key and the allowed range)."""
    from detectors.registry import detector_configs

    detectors = {k: dict(v) for k, v in settings.detectors.items()}
    typed: dict[str, Any] = {}
    for key, value in overrides:
        parts = key.split(".")
        if parts[0] == "detectors":
            parts = parts[1:]
        if len(parts) != 2:
            raise ConfigError(key, "expected <detector>.<key> or cleaning.<key> / pipeline.<key>", "--param")
        section, name = parts
        if section in _TYPED_SECTIONS:
            current = typed.get(section) or getattr(settings, section)
            table = {**dataclasses.asdict(current), name: value}
            typed[section] = build_config(type(current), table, section, "--param")
        else:
            detectors.setdefault(section, {})[name] = value
    detector_configs(detectors, "--param")  # unknown detector, unknown key, out of range: named
    frozen = MappingProxyType({k: MappingProxyType(v) for k, v in detectors.items()})
    return dataclasses.replace(settings, detectors=frozen, **typed)


# --- running ------------------------------------------------------------------------------------
_ENV_CACHE: dict[tuple[str, ReferenceConfig], Any] = {}


def environment(settings: Settings) -> Any:
    """The detector environment (zones, ports, shoreline), loaded once per process and settings file.

    It depends only on the settings file and its reference data, never on detector
    thresholds, so every grid point of a sweep (and every command run in one process) shares
    it; sweep workers forked after the first load inherit it.
    """
    from streams.cli import load_environment

    key = (str(settings.path), settings.reference)
    if key not in _ENV_CACHE:
        _ENV_CACHE.clear()  # one settings file at a time: bounded memory
        _ENV_CACHE[key] = load_environment(settings)
    return _ENV_CACHE[key]


def run_job(job: Job) -> PointResult:
    """One grid point: replay with the overrides, score against the labels (runs in a worker)."""
    from streams.embedded import replay

    started = time.perf_counter()
    base = load_settings(job.config)
    settings = apply_overrides(base, job.overrides)
    env = environment(base)
    labels = load_labels(job.labels)
    report, _ = replay(
        [Path(p) for p in job.inputs],
        settings,
        on_alert=lambda _a: None,
        on_reject=lambda _r: None,
        input_format=job.input_format,
        env=env,
    )
    result: BacktestResult = backtest(labels, report.alerts_final.values(), job.tolerance_s, job.kinds)
    return PointResult(job.overrides, result_wire(result), len(report.alerts_final), time.perf_counter() - started)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_sweep(jobs: Sequence[Job], workers: int | None = None) -> list[PointResult]:
    """Every job, in parallel processes when there are several cores and several jobs."""
    workers = min(workers or default_jobs(), len(jobs))
    if workers <= 1:
        return [run_job(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run_job, jobs))


# --- views ----------------------------------------------------------------------------------------
def _fmt_value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _r(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def sweep_table(points: Sequence[PointResult]) -> list[str]:
    """One row per grid point and scored kind."""
    keys = [k for k, _ in points[0].overrides] if points else []
    header = [
        *keys,
        "kind",
        "labels",
        "alerts",
        "precision",
        "recall",
        "F1",
        "fragmented",
        "start err min",
        "end err min",
        "seconds",
    ]
    rows: list[list[str]] = []
    for pt in points:
        scores = pt.result["scores"]
        if len(scores) > 1:
            scores = [*scores, pt.result["total"]]
        for s in scores:
            rows.append(
                [
                    *(_fmt_value(v) for _, v in pt.overrides),
                    s["kind"],
                    str(s["labels"]),
                    str(s["alerts"]),
                    _r(s["precision"]),
                    _r(s["recall"]),
                    _r(s["f1"]),
                    str(s["fragmented"]),
                    _median(s["start_error_min"]),
                    _median(s["end_error_min"]),
                    f"{pt.seconds:.1f}",
                ]
            )
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def _median(err: Mapping[str, float | None]) -> str:
    v = err.get("median")
    return "-" if v is None else f"{v:+.1f}"


def sweep_wire(points: Sequence[PointResult]) -> list[dict[str, Any]]:
    return [
        {"params": dict(pt.overrides), "alerts": pt.alerts, "seconds": round(pt.seconds, 2), **pt.result}
        for pt in points
    ]


def plot(points: Sequence[PointResult], path: Path, title: str = "") -> Path:
    """Precision, recall and F1 per setting, one row of panels per scored kind (PNG)."""
    try:
        import matplotlib
    except ImportError as exc:  # a minimal install without the plotting dependency
        raise ConfigError("--plot", "needs matplotlib (pip install 'matplotlib>=3.8')") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [s["kind"] for s in points[0].result["scores"]] if points else []
    nrows = max(1, len(kinds))
    fig, axes = plt.subplots(nrows, 2, figsize=(12, 3.6 * nrows), squeeze=False, gridspec_kw={"width_ratios": [2.2, 1]})
    keys = [k for k, _ in points[0].overrides] if points else []
    labels = [f"#{i + 1}\n" + "\n".join(_fmt_value(v) for _, v in pt.overrides) for i, pt in enumerate(points)]
    xs = list(range(len(points)))
    for row, kind in enumerate(kinds):
        ax, pr = axes[row]
        series = {m: [_score(pt, kind).get(m) for pt in points] for m in ("precision", "recall", "f1")}
        for metric, style in (("precision", "o-"), ("recall", "s-"), ("f1", "^--")):
            ys = [float("nan") if v is None else v for v in series[metric]]
            ax.plot(xs, ys, style, label=metric)
        ax.set_xticks(xs, labels, fontsize=8)
        ax.set_xlabel("setting: " + " / ".join(keys), fontsize=8)
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel(kind)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        ax.set_title(f"{kind}: precision / recall / F1 per setting", fontsize=10)
        same: dict[tuple[float, float], list[str]] = {}
        for i, pt in enumerate(points):
            p, r = _score(pt, kind).get("precision"), _score(pt, kind).get("recall")
            if p is not None and r is not None:
                same.setdefault((r, p), []).append(str(i + 1))
        for (r, p), names in same.items():
            pr.plot(r, p, "o", color="C0")
            pr.annotate(
                "#" + ",".join(names),
                (r, p),
                textcoords="offset points",
                xytext=(-4, 5),
                fontsize=8,
                ha="right" if r > 0.8 else "left",
            )
        pr.set_xlim(-0.03, 1.03)
        pr.set_ylim(-0.03, 1.1)
        pr.set_xlabel("recall")
        pr.set_ylabel("precision")
        pr.grid(alpha=0.3)
        pr.set_title("precision vs recall (point = setting #)", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _score(pt: PointResult, kind: str) -> dict[str, Any]:
    return next((s for s in pt.result["scores"] if s["kind"] == kind), {})


# --- commands (called by streams/cli.py) -------------------------------------------------------------
def existing_paths(inputs: Sequence[str | Path]) -> list[Path]:
    from models.errors import InputError

    paths = [Path(p) for p in inputs]
    for path in paths:
        if not path.is_file():
            raise InputError(str(path), "no such file")
    return paths


def _kinds_arg(text: str | None) -> tuple[str, ...] | None:
    from models.alert import ALERT_KINDS

    if not text:
        return None
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    for k in kinds:
        if k not in ALERT_KINDS:
            raise ConfigError("--kinds", f"{k!r} is not an alert kind ({', '.join(ALERT_KINDS)})")
    return kinds


def _tolerance_s(minutes: float) -> float:
    if not 0 <= minutes <= 7 * 24 * 60:
        raise ConfigError("--tolerance-min", f"{minutes} is outside the allowed range [0, 10080]")
    return minutes * 60.0


def backtest_command(args: Any) -> int:
    """``vigiamar backtest --labels L INPUT...``: replay, match, print the table (or JSON)."""
    import sys

    import orjson

    from detectors.registry import detector_configs
    from streams.backtest import report_lines
    from streams.embedded import replay

    settings = load_settings(args.config)
    detector_configs(settings.detectors, str(settings.path))
    labels = load_labels(args.labels)
    kinds = _kinds_arg(args.kinds)
    tolerance_s = _tolerance_s(args.tolerance_min)
    paths = existing_paths(args.inputs)
    env = environment(settings)
    report, _ = replay(
        paths, settings, on_alert=lambda _a: None, on_reject=lambda _r: None, input_format=args.input_format, env=env
    )
    result = backtest(labels, report.alerts_final.values(), tolerance_s, kinds)
    wire = {
        "labels": str(args.labels),
        "inputs": [p for p, _ in report.inputs],
        "config": str(settings.path),
        "positions": report.sources.positions,
        **result_wire(result),
    }
    if args.format == "json":
        sys.stdout.write(orjson.dumps(wire, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        head = [
            f"labels: {args.labels} ({len(labels.labels)} events; covers {', '.join(labels.kinds) or 'nothing'})",
            "inputs: "
            + ", ".join(f"{p} ({f})" for p, f in report.inputs)
            + f"; {report.sources.positions:,} positions, {len(report.alerts_final)} alerts in {report.seconds:.1f} s",
            f"config: {settings.path}",
        ]
        for line in head + report_lines(result):
            sys.stdout.write(line + "\n")
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(wire, option=orjson.OPT_INDENT_2) + b"\n")
    if args.map is not None:
        from streams.maps import map_for_run

        t = result.total
        subtitle = (
            f"{', '.join(result.kinds)} vs {Path(args.labels).name}: precision {_r(t.precision)}, recall"
            f" {_r(t.recall)}, F1 {_r(t.f1)}; {len(result.false_alarms)} false alarms, {len(result.misses)} misses"
        )
        shown = [a for a in report.alerts_final.values() if a.kind in result.kinds]
        summary = map_for_run(
            args.map,
            shown,
            paths,
            settings,
            input_format=args.input_format,
            outcomes=result.outcome_of_alert(),
            misses=result.misses,
            title="vigiamar backtest",
            subtitle=subtitle,
        )
        print(f"map: {summary.path} ({summary.alerts} alerts, {summary.misses} missed labels)", file=sys.stderr)
    return 0


def sweep_command(args: Any) -> int:
    """``vigiamar sweep --labels L --param k=v1,v2 ... INPUT...``: the grid, the table, the plot."""
    import sys

    import orjson

    params = [parse_param(p) for p in args.param]
    points = grid(params)
    base = load_settings(args.config)
    for overrides in points:  # every value checked before any replay starts
        apply_overrides(base, overrides)
    load_labels(args.labels)
    kinds = _kinds_arg(args.kinds)
    paths = existing_paths(args.inputs)
    tolerance_s = _tolerance_s(args.tolerance_min)
    config = None if args.config is None else str(args.config)
    jobs = [
        Job(tuple(str(p) for p in paths), config, overrides, str(args.labels), tolerance_s, kinds, args.input_format)
        for overrides in points
    ]
    workers = min(args.jobs or default_jobs(), len(jobs))
    environment(base)  # loaded once here; forked workers inherit it
    print(f"sweep: {len(jobs)} settings, {workers} worker process(es)", file=sys.stderr, flush=True)
    started = time.perf_counter()
    results = run_sweep(jobs, workers)
    for line in sweep_table(results):
        sys.stdout.write(line + "\n")
    sys.stdout.write(f"\n{len(results)} settings in {time.perf_counter() - started:.1f} s\n")
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(sweep_wire(results), option=orjson.OPT_INDENT_2) + b"\n")
    if args.plot is not None:
        plot(results, args.plot, title=f"vigiamar sweep vs {Path(args.labels).name}")
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0
