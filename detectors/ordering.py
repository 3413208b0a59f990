"""Event-time ordering: a reorder buffer released by the watermark (max event time − grace)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class ReorderBuffer(Generic[T]):
    """Holds items until the watermark passes their event time, then releases them in order.

    Ties keep arrival order, so the same input always gives the same sequence.
    """

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.max_ts = float("-inf")
        self._heap: list[tuple[float, int, T]] = []
        self._seq = 0

    @property
    def watermark(self) -> float:
        return self.max_ts - self.grace_s

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, ts: float, item: T) -> None:
        if ts > self.max_ts:
            self.max_ts = ts
        heapq.heappush(self._heap, (ts, self._seq, item))
        self._seq += 1

    def release(self, until: float | None = None) -> Iterator[tuple[float, T]]:
        """Items with event time ≤ ``until`` (default: the watermark), oldest first."""
        limit = self.watermark if until is None else until
        heap = self._heap
        while heap and heap[0][0] <= limit:
            ts, _, item = heapq.heappop(heap)
            yield ts, item

    def drain(self) -> Iterator[tuple[float, T]]:
        """Everything still held, oldest first (end of input)."""
        return self.release(float("inf"))
