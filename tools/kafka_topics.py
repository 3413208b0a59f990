"""Create vigiamar's Kafka topics from the settings (docker-compose's ``topics`` service runs this).

Creates the topics ``vigiamar feed`` and ``vigiamar worker`` exchange data on, as
:func:`streams.admin.wanted_topics` lists them (position topics with ``topics.partitions``,
``alerts`` and one ``alerts.<agency>`` per agency with ``topics.alert_partitions``, the
dead-letter topic), plus the topics of agencies named only in release labels, all with
``topics.replication_factor``. Topics that exist are left as they are, so it is safe to run at
every start (``vigiamar feed`` also creates what is missing). faust creates its own internal topics.

Examples (from the repository root, with vigiamar installed)::

    python tools/kafka_topics.py --dry-run
    python tools/kafka_topics.py --brokers kafka:9092 --config /app/config/vigiamar.toml

The connection's security comes from ``streams.security`` (``$VIGIAMAR_KAFKA_SECURITY``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root holds the packages
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.errors import VigiamarError
from models.settings import load_settings


def plan_topics(config: str | None) -> list[tuple[str, int, int]]:
    """(name, partitions, replication factor) of every topic vigiamar exchanges data on: the
    topics ``vigiamar feed`` would create (:func:`streams.admin.wanted_topics`), which include
    the topic of every agency that only release labels name (it can receive released alerts).
    """
    from streams.admin import wanted_topics
    from streams.topics import stream_settings

    stream = stream_settings(load_settings(config))
    rf = stream.topics.replication_factor
    return [(name, partitions, rf) for name, partitions in wanted_topics(stream).items()]


def create(admin: Any, topics: list[tuple[str, int, int]]) -> tuple[list[str], list[str]]:
    """Create what is missing; returns (created, already there)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    existing = set(admin.list_topics())
    created: list[str] = []
    for name, partitions, rf in topics:
        if name in existing:
            continue
        try:
            admin.create_topics([NewTopic(name=name, num_partitions=partitions, replication_factor=rf)])
        except TopicAlreadyExistsError:  # another instance won the race
            existing.add(name)
            continue
        created.append(name)
    return created, sorted(existing & {n for n, _, _ in topics})


def connect(brokers: str, wait_s: float, security: dict[str, Any]) -> Any:
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=brokers, client_id="vigiamar-topics", **security)
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"kafka_topics: no broker at {brokers} after {wait_s:g} s: {exc}") from exc
            time.sleep(2)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kafka_topics.py", description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="settings file (default: the bundled config/vigiamar.toml)")
    p.add_argument("--brokers", default=os.environ.get("VIGIAMAR_BROKERS", "localhost:9092"))
    p.add_argument("--wait", type=float, default=60.0, metavar="S", help="wait this long for the broker")
    p.add_argument("--dry-run", action="store_true", help="print the topics, connect to nothing")
    args = p.parse_args(argv)
    try:
        topics = plan_topics(args.config)
        from streams.security import kafka_python_kwargs, load_security

        security = {} if args.dry_run else kafka_python_kwargs(load_security())
    except VigiamarError as exc:
        print(f"kafka_topics: error: {exc}", file=sys.stderr)
        return 2
    for name, partitions, rf in topics:
        print(f"{name:40} partitions={partitions:<4} replication={rf}")
    if args.dry_run:
        return 0
    admin = connect(args.brokers, args.wait, security)
    try:
        created, existing = create(admin, topics)
    finally:
        admin.close()
    print(f"# created {len(created)} topics, {len(existing)} already there", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
