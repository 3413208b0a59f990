"""Reading a stretch of one partition again, outside the consumer group (restored state)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from streams.security import client_kwargs


class BackfillError(Exception):
    """Messages a restored partition needs could not be read (the broker did not serve them)."""


async def read_range(brokers: str, tp: Any, start: int, stop: int, timeout_s: float = 60.0) -> AsyncIterator[Any]:
    """The aiokafka records ``start`` … ``stop - 1`` of one partition, read with a plain consumer.

    No group and nothing committed. A position the broker calls out of range resets to the
    earliest (earlier is safe: records before ``start`` are skipped). Raises
    :class:`BackfillError` when they cannot be read in ``timeout_s``.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

    consumer = AIOKafkaConsumer(
        bootstrap_servers=brokers.split(","),
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        **client_kwargs(),
    )
    deadline = time.monotonic() + timeout_s
    try:  # connecting is bounded too: a broker that never answers must not hold the partition
        await asyncio.wait_for(consumer.start(), timeout_s)
    except Exception as exc:  # timeout, or the client's connection errors
        await consumer.stop()
        raise BackfillError(f"{tp}: no connection to read offsets {start}-{stop - 1} ({exc!r})") from exc
    try:
        part = TopicPartition(tp.topic, tp.partition)
        consumer.assign([part])
        consumer.seek(part, start)
        offset = start
        while offset < stop:
            if time.monotonic() > deadline:
                raise BackfillError(f"{tp}: offsets {offset}-{stop - 1} not readable in {timeout_s} s")
            batch = await consumer.getmany(part, timeout_ms=500)
            for message in batch.get(part, []):
                if message.offset >= stop:
                    return
                if message.offset >= start:
                    yield message
                offset = max(offset, message.offset + 1)
    finally:
        await consumer.stop()
