"""The streaming shell's settings: topic names, partitions, routing and Kafka client tuning.

Read from the ``[topics]`` and ``[kafka]`` sections of the settings file (kept verbatim by
:mod:`models.settings`) and validated here once, with the same rules and messages as every
other section (:func:`models.configuring.build_config`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from models.configuring import bounds, build_config
from models.errors import ConfigError
from models.settings import Settings

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


@dataclass(frozen=True)
class TopicsConfig:
    positions_vessel: str = "positions.vessel"  # key: MMSI
    positions_air: str = "positions.air"  # key: aircraft / drone id
    cells: str = "cells"  # key: spatial cell id
    alerts: str = "alerts"  # key: alert id
    agency_prefix: str = "alerts."  # alerts.<agency>, one topic per receiving agency
    dead_letter: str = "deadletter"
    # Position topics, cells and the state changelogs are co-partitioned: same count.
    partitions: int = field(default=8, metadata=bounds(1, 1024))
    alert_partitions: int = field(default=4, metadata=bounds(1, 1024))
    replication_factor: int = field(default=1, metadata=bounds(1, 7))

    def agency_topic(self, agency: str) -> str:
        return f"{self.agency_prefix}{agency}"

    def position_topics(self) -> tuple[str, str]:
        return (self.positions_vessel, self.positions_air)


@dataclass(frozen=True)
class KafkaConfig:
    app_id: str = "vigiamar"  # consumer group and prefix of the state changelog topics
    session_timeout_s: float = field(default=30.0, metadata=bounds(1, 300))
    heartbeat_interval_s: float = field(default=3.0, metadata=bounds(0.1, 60))
    request_timeout_s: float = field(default=40.0, metadata=bounds(5, 600))
    commit_interval_s: float = field(default=2.8, metadata=bounds(0.1, 60))
    frame_size: int = field(default=500, metadata=bounds(1, 100000))  # positions per message (feed)
    frame_linger_s: float = field(default=0.2, metadata=bounds(0, 60))  # live feeds: partial frames after this
    flush_interval_s: float = field(default=1.0, metadata=bounds(0, 600))  # worker: write changed state this often
    flush_records: int = field(default=50000, metadata=bounds(1, 10_000_000))  # … or after this many positions
    # cells stage: a position partition silent this long (activity time, streams/cell_partition.py) stops
    # holding the pairwise watermark back until it sends again (0: never; an unused partition then blocks
    # pairwise alerts)
    idle_source_s: float = field(default=300.0, metadata=bounds(0, 86400))
    # the per-cell stage of the pairwise detectors (rendezvous, dark and air–sea rendezvous) in
    # the worker (off: the worker runs the per-track detectors only, and says so at start)
    pairwise_stage: bool = True
    # worker: an input partition with messages fetched but none delivered this long, its
    # topic's agent idle as long, is read again from the first offset its engine needs (0: never)
    stall_reread_s: float = field(default=20.0, metadata=bounds(0, 3600))
    # worker: the longest a caught-up fetch waits at the broker (streams/fetch_wait.py); Tansu
    # holds a fetch that long even when data arrives meanwhile, so it adds up to this to latency
    fetch_max_wait_ms: int = field(default=100, metadata=bounds(1, 30000))


@dataclass(frozen=True)
class StreamSettings:
    topics: TopicsConfig
    kafka: KafkaConfig
    agencies: tuple[str, ...]  # every agency an alert can be routed to (zones, default, release labels)

    def agency_topics(self) -> dict[str, str]:
        return {a: self.topics.agency_topic(a) for a in self.agencies}


def stream_settings(settings: Settings) -> StreamSettings:
    """Validate ``[topics]`` and ``[kafka]``; every problem raises :class:`ConfigError`."""
    source = str(settings.path)
    extra = settings.extra
    topics = build_config(TopicsConfig, _section(extra.get("topics"), "topics", source), "topics", source)
    kafka = build_config(KafkaConfig, _section(extra.get("kafka"), "kafka", source), "kafka", source)
    for name in ("positions_vessel", "positions_air", "cells", "alerts", "dead_letter"):
        _check_topic(getattr(topics, name), f"topics.{name}", source)
    _check_topic(topics.agency_prefix + "x", "topics.agency_prefix", source)
    _check_topic(kafka.app_id, "kafka.app_id", source)
    if kafka.fetch_max_wait_ms >= kafka.request_timeout_s * 1000.0:  # a held fetch would time out
        raise ConfigError("kafka.fetch_max_wait_ms", "must be shorter than kafka.request_timeout_s", source)
    agencies = {z.agency for z in settings.zones.zones if z.role == "jurisdiction" and z.agency}
    agencies.add(settings.routing.default_agency)
    # an agency named only in a release label receives released alerts when no responsible
    # agency may (detectors/routing.py): it needs its topic too
    agencies.update(a for members in settings.routing.release_labels.values() for a in members)
    for agency in sorted(agencies):
        _check_topic(topics.agency_topic(agency), f"agency {agency!r} (topic name)", source)
    names = [*topics.position_topics(), topics.cells, topics.alerts, topics.dead_letter]
    names += [topics.agency_topic(a) for a in agencies]
    if len(set(names)) != len(names):
        raise ConfigError("topics", "two roles share one topic name", source)
    return StreamSettings(topics, kafka, tuple(sorted(agencies)))


def _section(value: object, name: str, source: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(name, "expected a table", source)
    return value


def _check_topic(name: str, key: str, source: str) -> None:
    if not _TOPIC_NAME.match(name) or name in (".", ".."):
        raise ConfigError(key, f"{name!r} is not a valid Kafka topic name (letters, digits, '.', '_', '-')", source)
