"""The streaming subcommands of the CLI: ``worker``, ``feed``, ``alerts``.

``--brokers`` defaults to ``$VIGIAMAR_BROKERS``, then ``localhost:9092``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from models.errors import InputError
from models.settings import DEFAULT_CONFIG, load_settings
from streams.security import client_kwargs

DEFAULT_BROKERS = "localhost:9092"
STREAMING_COMMANDS = ("worker", "feed", "alerts")

WORKER_EXAMPLES = """\
examples:
  vigiamar worker                                   # brokers from $VIGIAMAR_BROKERS or localhost:9092
  vigiamar worker --brokers kafka1:9092,kafka2:9092 --config /etc/vigiamar/vigiamar.toml
  VIGIAMAR_BROKERS=127.0.0.1:9092 vigiamar worker --loglevel warning
"""

FEED_EXAMPLES = """\
examples:
  vigiamar feed data/samples/virginia_beach_2020-06-04_to_06.csv.gz
  vigiamar feed --rate 500 ../shared/data/ais/nyharbor_2020-06-30_first_hour.csv.gz   # 500 positions/s
  vigiamar feed --brokers kafka:9092 ais.nmea.gz flights.csv.gz                          # merged by event time
  vigiamar feed tcp://192.168.1.20:10110           # live NMEA receiver; untimed sentences get the receive time
"""

ALERTS_EXAMPLES = """\
examples:
  vigiamar alerts --from-beginning                  # every agency, JSON Lines
  vigiamar alerts --agency uscg-d5 --format table
  vigiamar alerts --agency uscg-d1 --format cap > uscg-d1.cap.xml
  vigiamar alerts --from-beginning --idle-exit 10 --format jsonl > alerts.jsonl
"""


def _brokers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--brokers",
        default=os.environ.get("VIGIAMAR_BROKERS") or DEFAULT_BROKERS,
        metavar="H:P[,H:P]",
        help="Kafka bootstrap servers (default: $VIGIAMAR_BROKERS, then localhost:9092)",
    )
    parser.add_argument("--config", type=Path, default=None, help=f"settings file (default {DEFAULT_CONFIG.name})")


def add_streaming_parsers(sub: Any) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    wp = sub.add_parser(
        "worker", help="run the streaming shell (faust worker on Kafka)", epilog=WORKER_EXAMPLES, formatter_class=raw,
        description="Consume the position topics, run every detector, publish alerts; stops on SIGTERM/SIGINT.",
    )  # fmt: skip
    _brokers(wp)
    wp.add_argument("--loglevel", default="info", choices=("debug", "info", "warning", "error"))

    fp = sub.add_parser(
        "feed", help="publish position files or a TCP NMEA feed to the position topics", epilog=FEED_EXAMPLES,
        formatter_class=raw, description="Decode inputs like replay does and publish them in vigiamar's wire format.",
    )  # fmt: skip
    fp.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="position files (gzip read transparently) or tcp://HOST:PORT"
    )
    _brokers(fp)
    fp.add_argument("--rate", type=float, default=None, metavar="N", help="publish at most N positions per second")
    fp.add_argument("--input-format", default=None, help="skip format detection (as in replay)")
    fp.add_argument(
        "--no-end-marker", action="store_true",
        help="do not tell the workers the input ended (they keep the last grace period buffered)",
    )  # fmt: skip

    ap = sub.add_parser(
        "alerts", help="follow the alert topics", epilog=ALERTS_EXAMPLES, formatter_class=raw,
        description="Print each new alert revision (the highest revision per id wins; duplicates are dropped).",
    )  # fmt: skip
    _brokers(ap)
    ap.add_argument("--agency", default=None, help="one agency's topic (default: every configured agency)")
    ap.add_argument("--from-beginning", action="store_true", help="start at the oldest retained alert")
    ap.add_argument("--format", choices=("jsonl", "table", "cap"), default="jsonl")
    ap.add_argument("--idle-exit", type=float, default=None, metavar="S", help="exit after S seconds without alerts")


def cmd_streaming(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    from streams.topics import stream_settings

    stream = stream_settings(settings)
    if args.command == "worker":
        from streams.cli import load_environment
        from streams.worker import run

        run(settings, args.brokers, load_environment(settings), args.loglevel)
        return 0
    if args.command == "feed":
        return _feed(args, stream)
    return _alerts(args, stream)


def _feed(args: argparse.Namespace, stream: Any) -> int:
    from streams.admin import admin_client, ensure_topics
    from streams.feed import TCP_PREFIX, publish

    for name in args.inputs:
        if not name.startswith(TCP_PREFIX) and not Path(name).is_file():
            raise InputError(name, "no such file")
    if args.rate is not None and args.rate <= 0:
        raise InputError("--rate", "must be a positive number of positions per second")
    admin = _connect(args.brokers, admin_client)
    try:
        ensure_topics(admin, stream)
    finally:
        admin.close()
    producer = _connect(args.brokers, _producer)
    try:
        report = publish(
            args.inputs, stream, producer, rate=args.rate, input_format=args.input_format,
            end_marker=not args.no_end_marker,
        )  # fmt: skip
    finally:
        producer.close(timeout=30)
    rate = report.records / report.seconds if report.seconds > 0 else 0.0
    topics = ", ".join(f"{t}: {n:,}" for t, n in sorted(report.by_topic.items()))
    print(
        f"published {report.records:,} records in {report.messages:,} messages ({topics}); "
        f"{report.rejects:,} rejects to {stream.topics.dead_letter}; {report.seconds:.1f} s ({rate:,.0f} records/s)",
        file=sys.stderr,
    )
    if report.failed_messages:
        print(
            f"error: the broker did not accept {report.failed_messages:,} messages "
            f"({report.failed_records:,} records); first error: {report.first_error}",
            file=sys.stderr,
        )
        return 1
    return 0


def _alerts(args: argparse.Namespace, stream: Any) -> int:
    from streams.follow import Follower, alert_topics, follow, make_consumer

    if args.agency is not None and args.agency not in stream.agencies:
        known = ", ".join(stream.agencies)
        raise InputError("--agency", f"unknown agency {args.agency!r} (configured: {known})")
    topics, wait_ms = alert_topics(stream, args.agency), stream.kafka.fetch_max_wait_ms
    consumer = _connect(args.brokers, lambda b: make_consumer(b, topics, args.from_beginning, wait_ms))
    try:
        follow(consumer, Follower(args.format), sys.stdout, idle_exit_s=args.idle_exit)
    finally:
        consumer.close()
    return 0


def _producer(brokers: str) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=[b.strip() for b in brokers.split(",") if b.strip()],
        acks="all", linger_ms=20, max_request_size=8 * 1024 * 1024, retries=10, max_block_ms=30000,
        **client_kwargs(),
    )  # fmt: skip


def _connect(brokers: str, factory: Any) -> Any:
    from kafka.errors import KafkaError

    try:
        return factory(brokers)
    except (KafkaError, OSError, ValueError) as exc:
        raise InputError(brokers, f"cannot reach Kafka: {exc}") from exc
