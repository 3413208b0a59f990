"""Topic administration for the streaming shell: create what is missing, check partition counts."""

from __future__ import annotations

import contextlib
from typing import Any

from models.errors import ConfigError
from streams.security import client_kwargs
from streams.topics import StreamSettings


def wanted_topics(stream: StreamSettings) -> dict[str, int]:
    """Topic name -> partitions, for every topic ``feed`` and ``worker`` exchange data on."""
    t = stream.topics
    out = {name: t.partitions for name in t.position_topics()}
    out[t.cells] = t.partitions  # the pairwise detectors' per-cell stage, co-partitioned
    out[t.alerts] = t.alert_partitions
    out.update({name: t.alert_partitions for name in stream.agency_topics().values()})
    out[t.dead_letter] = 1
    return out


def ensure_topics(admin: Any, stream: StreamSettings, timeout_ms: int = 30000) -> list[str]:
    """Create missing topics (kafka-python admin client); returns the names created.

    Position topics must have exactly ``topics.partitions`` partitions: the feed and the
    worker both place entities by that count, so a mismatch would split tracks.
    """
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    wanted = wanted_topics(stream)
    existing = set(admin.list_topics())
    missing = [n for n in wanted if n not in existing]
    if missing:
        new = [NewTopic(n, wanted[n], stream.topics.replication_factor) for n in missing]
        with contextlib.suppress(TopicAlreadyExistsError):  # another client was faster
            admin.create_topics(new, timeout_ms=timeout_ms)
    described = {
        d.get("name", d.get("topic")): len(d["partitions"])
        for d in admin.describe_topics(list(stream.topics.position_topics()))
    }
    for name in stream.topics.position_topics():
        got = described.get(name)
        if got is not None and got != stream.topics.partitions:
            raise ConfigError(
                "topics.partitions",
                f"topic {name} has {got} partitions on the broker, the config says {stream.topics.partitions}",
            )
    return missing


def admin_client(brokers: str) -> Any:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=[b.strip() for b in brokers.split(",") if b.strip()],
        request_timeout_ms=15000,
        **client_kwargs(),
    )


def committed_offset(brokers: str, group: str, topic: str, partition: int) -> int | None:
    """The offset ``group`` committed for one partition (the next to read), or None when it
    committed none. An admin request: it neither joins the group nor disturbs its members."""
    admin = admin_client(brokers)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    for tp, meta in offsets.items():
        if tp.topic == topic and tp.partition == partition:
            return int(meta.offset) if meta.offset >= 0 else None
    return None
