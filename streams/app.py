"""The faust app of ``vigiamar worker``: topics, state tables and agents, built from Settings.

No module-level app and no autodiscovery: :func:`build_app` makes one from the validated
settings, so tests can run several (each with its own id) against their own broker.

Topology (names from ``[topics]``)::

    positions.vessel ─┐  per-partition engine (streams.partition_engine): the replay pipeline,
    positions.air ────┤  track state in tables ``tracks-vessel`` / ``tracks-air`` (changelogs)
                      ├─▶ cells (key: cell id; stage-1 notes of the pairwise detectors, and each
                      │     partition's watermark) ─▶ per-cell engine (streams.cell_partition),
                      │     state in table ``cells`` ─┐ (relays between cells partitions: cells)
                      ├─▶ alerts (key: alert id; CloudEvents headers) ◀─┘ ─▶ router ─▶ alerts.<agency>
                      └─▶ deadletter (raw bytes; reason and origin in headers)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import faust

from detectors.base import Environment, TrackDetector
from detectors.cell_engine import check_radii, engine_timing
from detectors.cell_timing import EngineTiming
from detectors.cells import AreaDetector, Grid, PairDetector
from detectors.registry import build_pair_detectors, build_track_detectors
from models.settings import Settings
from streams import fetch_wait
from streams.security import app_credentials
from streams.topics import StreamSettings

log = logging.getLogger("vigiamar.worker")


@dataclass
class FaustOptions:
    """Client settings that tests (and operators) tune; defaults come from ``[kafka]``."""

    app_id: str | None = None
    store: str = "memory://"
    extra: dict[str, Any] = field(default_factory=dict)


def broker_urls(brokers: str) -> list[str]:
    return [b if "://" in b else f"kafka://{b}" for b in (x.strip() for x in brokers.split(",")) if b]


def faust_app(stream: StreamSettings, brokers: str, options: FaustOptions) -> faust.App:
    k = stream.kafka
    t = stream.topics
    conf: dict[str, Any] = {
        "broker": broker_urls(brokers),
        "store": options.store,
        "autodiscover": False,
        "web_enabled": False,
        "topic_partitions": t.partitions,
        "topic_replication_factor": t.replication_factor,
        "topic_disable_leader": True,
        "table_standby_replicas": 0,
        "broker_session_timeout": k.session_timeout_s,
        "broker_heartbeat_interval": k.heartbeat_interval_s,
        "broker_request_timeout": k.request_timeout_s,
        # faust's default is 20 min: a produce request the broker never answers would hold
        # every flush that long; failed sends are sent again before state is written.
        "producer_request_timeout": k.request_timeout_s,
        "broker_commit_interval": k.commit_interval_s,
        # faust stops the worker when a table's local offset is past the changelog's end offset
        # as the broker reports it; brokers whose end-offset look-ups lag (Tansu lists the first
        # offset of the last record batch plus one) trip it after a rebalance. The checkpoint
        # scheme does not rely on it: each checkpoint opens a batch (streams/agents.py), and a
        # table read short is made up for by reading positions again from the checkpoint.
        "recovery_consistency_check": False,
        "stream_wait_empty": False,  # messages held in the reorder buffer stay unacked on purpose
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "worker_redirect_stdouts": False,
        **options.extra,
    }
    credentials = app_credentials()  # $VIGIAMAR_KAFKA_SECURITY (docs/security.md); None: PLAINTEXT
    if credentials is not None:
        conf.setdefault("broker_credentials", credentials)
    app = fetch_wait.App(options.app_id or k.app_id, **conf)
    app.fetch_max_wait_ms = k.fetch_max_wait_ms
    return app


def raw_topic(app: faust.App, name: str, partitions: int) -> Any:
    """A topic of raw bytes: vigiamar decodes values itself, so a bad one is a dead letter, not a crash."""
    return app.topic(name, partitions=partitions, key_type=bytes, value_type=bytes)


@dataclass
class Pairwise:
    """The pairwise detectors (rendezvous, …) and how the cell engine slots and partitions space."""

    pair: list[PairDetector]
    area: list[AreaDetector]
    timing: EngineTiming
    grid: Grid


@dataclass
class Topology:
    """The faust objects of one worker app."""

    app: faust.App
    brokers: str
    stream: StreamSettings
    settings: Settings
    env: Environment
    detectors: list[TrackDetector]
    positions: dict[str, Any]  # topic name -> faust topic
    entity_types: dict[str, tuple[str, ...]]  # topic name -> entity types it carries
    tables: dict[str, Any]  # position topic name -> faust Table of its tracks
    alerts: Any
    agencies: dict[str, Any]  # agency -> faust topic
    dead_letter: Any
    cells: Any = None  # faust topic of the per-cell stage (None: no pairwise detector enabled)
    cell_table: Any = None  # its state (one snapshot per partition)
    pairwise: Pairwise | None = None

    def agency_topic(self, agency: str) -> Any:
        topic = self.agencies.get(agency)
        if topic is None:
            topic = self.agencies[agency] = raw_topic(
                self.app, self.stream.topics.agency_topic(agency), self.stream.topics.alert_partitions
            )
        return topic


def build_topology(
    settings: Settings, stream: StreamSettings, brokers: str, env: Environment, options: FaustOptions | None = None
) -> Topology:
    options = options or FaustOptions()
    app = faust_app(stream, brokers, options)
    t = stream.topics
    positions = {name: raw_topic(app, name, t.partitions) for name in t.position_topics()}
    entity_types: dict[str, tuple[str, ...]] = {t.positions_vessel: ("vessel",), t.positions_air: ("aircraft",)}
    tables = {
        t.positions_vessel: app.Table("tracks-vessel", partitions=t.partitions, key_type=bytes, value_type=bytes),
        t.positions_air: app.Table("tracks-air", partitions=t.partitions, key_type=bytes, value_type=bytes),
    }
    alerts = raw_topic(app, t.alerts, t.alert_partitions)
    agencies = {a: raw_topic(app, name, t.alert_partitions) for a, name in stream.agency_topics().items()}
    dead_letter = raw_topic(app, t.dead_letter, 1)
    detectors = build_track_detectors(settings.detectors, env, str(settings.path))
    topo = Topology(
        app, brokers, stream, settings, env, detectors, positions, entity_types, tables, alerts, agencies, dead_letter
    )
    pair, area = build_pair_detectors(settings.detectors, env, str(settings.path))
    if (pair or area) and not stream.kafka.pairwise_stage:
        names = ", ".join([d.name for d in pair] + [a.name for a in area])
        log.warning("pairwise detectors (%s) are not run by this worker: [kafka] pairwise_stage is off", names)
    elif pair or area:
        grid = Grid()
        check_radii(pair, area, grid)
        topo.pairwise = Pairwise(pair, area, engine_timing(pair), grid)
        topo.cells = raw_topic(app, t.cells, t.partitions)
        topo.cell_table = app.Table("cells", partitions=t.partitions, key_type=bytes, value_type=bytes)
    return topo
