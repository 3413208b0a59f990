"""The vigiamar command line: one entry point, subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import orjson

from detectors.base import Environment
from detectors.registry import detector_configs
from models.alert import Alert
from models.errors import VigiamarError
from models.position import Reject
from models.settings import DEFAULT_CONFIG, Settings, load_settings
from streams.runtime import tune_gc
from streams.sources.registry import FORMATS

EXIT_USAGE = 2

REPLAY_EXAMPLES = """\
examples:
  vigiamar replay data/samples/virginia_beach_2020-06-04_to_06.csv.gz
  vigiamar replay --format jsonl --out alerts.jsonl --rejects rejects.jsonl ais.nmea.gz flights.csv.gz
  vigiamar replay --config my.toml --input-format nmea receiver.log
  vigiamar replay --metrics-port 9108 ../shared/data/ais/*.csv.gz      # Prometheus scrapes the run
"""

CONFIG_EXAMPLES = """\
examples:
  vigiamar config check config/vigiamar.toml
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigiamar",
        description="Maritime and aerial interdiction pipeline: position feeds in, alerts out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run 'vigiamar <command> --help' for examples",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    rp = sub.add_parser(
        "replay",
        help="run the detectors over files (embedded shell, no broker)",
        description="Replay position files through every detector and print the alerts.",
        epilog=REPLAY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument("inputs", nargs="+", metavar="INPUT", help="position files (gzip read transparently)")
    rp.add_argument("--config", type=Path, default=None, help=f"settings file (default {DEFAULT_CONFIG.name})")
    rp.add_argument("--format", choices=("table", "jsonl"), default="table", help="alert output format")
    rp.add_argument("--out", type=Path, default=None, help="write alerts here instead of stdout")
    rp.add_argument("--rejects", type=Path, default=None, help="write rejected input (JSON Lines) here")
    rp.add_argument("--input-format", choices=sorted(FORMATS), default=None, help="skip format detection")
    rp.add_argument("--no-summary", action="store_true", help="do not print the closing summary")
    rp.add_argument(
        "--metrics-port", type=int, default=None, metavar="PORT",
        help="serve Prometheus /metrics on this port while the replay runs ([metrics] addr; 0: any free port)",
    )  # fmt: skip
    rp.add_argument("--map", type=Path, default=None, metavar="HTML", help="also write a self-contained HTML map")

    cp = sub.add_parser(
        "config",
        help="check a settings file",
        epilog=CONFIG_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cp_sub = cp.add_subparsers(dest="config_command", required=True)
    check = cp_sub.add_parser("check", help="validate a settings file without running anything")
    check.add_argument("file", type=Path, nargs="?", default=None)
    _add_workbench_parsers(sub)
    from streams.cli_streaming import add_streaming_parsers

    add_streaming_parsers(sub)  # worker, feed, alerts
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        tune_gc()
        if args.command == "replay":
            return cmd_replay(args)
        if args.command == "config":
            return cmd_config_check(args)
        if args.command in ("backtest", "sweep", "explain"):
            return cmd_workbench(args)
        if args.command in ("worker", "feed", "alerts"):
            from streams.cli_streaming import cmd_streaming

            return cmd_streaming(args)
    except VigiamarError as exc:
        print(f"vigiamar: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


def load_environment(settings: Settings) -> Environment:
    """Detector environment: zones and reference geography (ports, shore) when configured."""
    try:
        from models.reference import load_geography
    except ImportError:  # reference data not installed in this build
        return Environment(zones=settings.zones)
    return Environment(zones=settings.zones, geography=load_geography(settings))


def cmd_config_check(args: argparse.Namespace) -> int:
    """Everything a command would refuse at start: detectors, routing and release labels, the
    streaming sections ([topics], [kafka]), [metrics], and the reference data."""
    from detectors.routing import Router
    from streams.metrics import metrics_config
    from streams.topics import stream_settings

    settings = load_settings(args.file)
    configs = detector_configs(settings.detectors, str(settings.path))
    Router.from_settings(settings)
    stream_settings(settings)
    metrics_config(settings)
    load_environment(settings)
    print(f"{settings.path}: ok ({len(configs)} detectors, {len(settings.zones)} zones)")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from streams.embedded import replay
    from streams.render import alert_table, summary, write_lines

    settings = load_settings(args.config)
    detector_configs(settings.detectors, str(settings.path))  # every threshold checked before any work
    env = load_environment(settings)
    paths = [Path(p) for p in args.inputs]
    for path in paths:
        if not path.is_file():
            raise _input_error(path, "no such file")
    with ExitStack() as stack:
        out: TextIO = stack.enter_context(args.out.open("w", encoding="utf-8")) if args.out else sys.stdout
        rejects: TextIO | None = (
            stack.enter_context(args.rejects.open("w", encoding="utf-8")) if args.rejects else None
        )

        def on_alert(alert: Alert) -> None:
            if args.format == "jsonl":
                out.write(orjson.dumps(alert.to_wire()).decode() + "\n")

        def on_reject(reject: Reject) -> None:
            if rejects is not None:
                rejects.write(orjson.dumps(reject.to_wire()).decode() + "\n")

        metrics = _serve_metrics(settings, args.metrics_port, stack) if args.metrics_port is not None else None
        if metrics is not None:
            metrics.watch_reference(env.geography)
        bar = _progress_bar()
        try:
            report, pipeline = replay(
                paths,
                settings,
                on_alert=on_alert,
                on_reject=on_reject,
                input_format=args.input_format,
                env=env,
                progress=bar.update if bar is not None else None,
                metrics=metrics,
            )
        finally:
            if bar is not None:
                bar.close()
        if args.format == "table":
            write_lines(out, alert_table(report.alerts_final.values()))
        if not args.no_summary:
            # jsonl output stays pure records; the summary then goes to stderr.
            target = sys.stderr if args.format == "jsonl" else out
            if target is out:
                out.write("\n")
            write_lines(target, summary(report, pipeline))
    if args.map is not None:
        from streams.maps import map_for_run

        drawn = map_for_run(args.map, report.alerts_final.values(), paths, settings, input_format=args.input_format)
        print(f"map: {drawn.path} ({drawn.alerts} alerts)", file=sys.stderr)
    return 0


def _serve_metrics(settings: Settings, port: int, stack: ExitStack) -> Any:
    """A Metrics object served on ``port`` until the command ends (address from ``[metrics]``)."""
    from streams.metrics import Metrics, metrics_config

    cfg = metrics_config(settings)
    metrics = Metrics()
    try:
        server = metrics.serve(port, cfg.addr)
    except OSError as exc:
        raise _input_error(Path(f"{cfg.addr}:{port}"), f"cannot serve metrics: {exc}") from exc
    stack.callback(server.close)
    print(f"vigiamar: metrics on http://{cfg.addr}:{server.port}/metrics", file=sys.stderr)
    return metrics


def _input_error(path: Path, problem: str) -> VigiamarError:
    from models.errors import InputError

    return InputError(str(path), problem)


def _progress_bar() -> Any:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(unit=" pos", unit_scale=True, file=sys.stderr, leave=False, desc="replay")


# --- analyst workbench (issue 8): backtest, sweep, explain; the work is in their modules -----------
BACKTEST_EXAMPLES = """\
examples:
  vigiamar backtest --labels data/labels/virginia_beach_2020-06-04_to_06_nearshore.csv \\
      data/samples/virginia_beach_2020-06-04_to_06.csv.gz
  vigiamar backtest --labels L.csv --format json --tolerance-min 15 --map backtest.html INPUT.csv.gz
"""
SWEEP_EXAMPLES = """\
examples:
  vigiamar sweep --labels data/labels/virginia_beach_2020-06-04_to_06_gfw.csv \\
      --param loitering.min_shore_distance_m=1852,18520,37040 --param loitering.max_speed_kn=1,2 \\
      --plot sweep.png data/samples/virginia_beach_2020-06-04_to_06.csv.gz
  vigiamar sweep --labels L.csv --param rendezvous.max_distance_m=200,500,1000 --jobs 4 INPUT.csv.gz
"""
EXPLAIN_EXAMPLES = """\
examples:
  vigiamar explain loitering-3f1c0a --input data/samples/virginia_beach_2020-06-04_to_06.csv.gz
  vigiamar explain <id from 'vigiamar replay --format jsonl'> --input a.csv.gz b.nmea --context-min 60
"""


def _add_workbench_parsers(sub: Any) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, default=None, help=f"settings file (default {DEFAULT_CONFIG.name})")
        p.add_argument("--input-format", choices=sorted(FORMATS), default=None, help="skip format detection")

    def scoring(p: argparse.ArgumentParser) -> None:
        p.add_argument("inputs", nargs="+", metavar="INPUT", help="position files (gzip read transparently)")
        p.add_argument("--labels", type=Path, required=True, help="labelled events, CSV or JSON (docs/workbench.md)")
        p.add_argument("--tolerance-min", type=float, default=30.0, help="time tolerance of a match (default 30)")
        p.add_argument("--kinds", default=None, help="score these kinds (comma-separated; default: the labels')")
        p.add_argument("--json", type=Path, default=None, metavar="F", help="also write the JSON result here")
        common(p)

    fmt = argparse.RawDescriptionHelpFormatter
    bt = sub.add_parser("backtest", help="score alerts against labelled events", epilog=BACKTEST_EXAMPLES,
                        description="Replay the inputs and match alerts to labels: precision, recall, F1 per kind, "
                        "timing errors, fragmented events, misses and false alarms.", formatter_class=fmt)  # fmt: skip
    scoring(bt)
    bt.add_argument("--format", choices=("table", "json"), default="table", help="stdout format")
    bt.add_argument("--map", type=Path, default=None, metavar="HTML", help="HTML map with misses and false alarms")
    sw = sub.add_parser("sweep", help="backtest over a grid of thresholds", epilog=SWEEP_EXAMPLES,
                        description="Run the backtest for every combination of --param values, in parallel "
                        "processes; print the table, optionally plot precision/recall per setting.",
                        formatter_class=fmt)  # fmt: skip
    scoring(sw)
    sw.add_argument("--param", action="append", required=True, metavar="DETECTOR.KEY=V1,V2,...",
                    help="a threshold and its values (repeat for a grid)")  # fmt: skip
    sw.add_argument("--jobs", type=int, default=None, help="worker processes (default: the cores available)")
    sw.add_argument("--plot", type=Path, default=None, metavar="PNG", help="write a precision/recall plot")
    ex = sub.add_parser("explain", help="why an alert fired: thresholds and the track behind it",
                        epilog=EXPLAIN_EXAMPLES, formatter_class=fmt)  # fmt: skip
    ex.add_argument("alert_id", metavar="ALERT_ID", help="an alert id (or a unique prefix of one)")
    ex.add_argument("--input", nargs="+", action="extend", required=True, metavar="INPUT", help="position files")
    ex.add_argument("--context-min", type=float, default=30.0, help="track shown before/after the span (default 30)")
    common(ex)


def cmd_workbench(args: argparse.Namespace) -> int:
    if args.command == "backtest":
        from streams.sweep import backtest_command

        return backtest_command(args)
    if args.command == "sweep":
        from streams.sweep import sweep_command

        return sweep_command(args)
    from streams.explain import explain_command

    return explain_command(args)


if __name__ == "__main__":
    sys.exit(main())
