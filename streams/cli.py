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
from streams.sources.registry import FORMATS

EXIT_USAGE = 2

REPLAY_EXAMPLES = """\
examples:
  vigiamar replay data/samples/virginia_beach_2020-06-04_to_06.csv.gz
  vigiamar replay --format jsonl --out alerts.jsonl --rejects rejects.jsonl ais.nmea.gz flights.csv.gz
  vigiamar replay --config my.toml --input-format nmea receiver.log
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

    cp = sub.add_parser(
        "config",
        help="check a settings file",
        epilog=CONFIG_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cp_sub = cp.add_subparsers(dest="config_command", required=True)
    check = cp_sub.add_parser("check", help="validate a settings file without running anything")
    check.add_argument("file", type=Path, nargs="?", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "replay":
            return cmd_replay(args)
        if args.command == "config":
            return cmd_config_check(args)
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
    settings = load_settings(args.file)
    configs = detector_configs(settings.detectors, str(settings.path))
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
    return 0


def _input_error(path: Path, problem: str) -> VigiamarError:
    from models.errors import InputError

    return InputError(str(path), problem)


def _progress_bar() -> Any:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(unit=" pos", unit_scale=True, file=sys.stderr, leave=False, desc="replay")


if __name__ == "__main__":
    sys.exit(main())
