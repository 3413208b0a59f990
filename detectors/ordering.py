"""Event-time ordering: a reorder buffer released by the watermark (max event time − grace)."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class ReorderBuffer(Generic[T]):
    """Holds items until the watermark passes their event time, then releases them in order.

    Ties keep arrival order, so the same input always gives the same sequence.

    Release order is that of one heap of ``(ts, arrival sequence)``; most items arrive in
    event-time order, so those go to a FIFO (already sorted, O(1) each) and only items that
    arrive behind the FIFO's newest go to a heap. Releasing merges the two by the same key.
    """

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.max_ts = float("-inf")
        self._fifo: deque[tuple[float, int, T]] = deque()  # sorted by (ts, seq): in-order arrivals
        self._heap: list[tuple[float, int, T]] = []  # out-of-order arrivals
        self._seq = 0

    @property
    def watermark(self) -> float:
        return self.max_ts - self.grace_s

    def __len__(self) -> int:
        return len(self._fifo) + len(self._heap)

    def push(self, ts: float, item: T) -> None:
        if ts > self.max_ts:
            self.max_ts = ts
        fifo = self._fifo
        if not fifo or ts >= fifo[-1][0]:
            fifo.append((ts, self._seq, item))
        else:
            heapq.heappush(self._heap, (ts, self._seq, item))
        self._seq += 1

    def pop_until(self, limit: float) -> list[T]:
        """Remove and return the items with event time ≤ ``limit``, oldest first (the hot path)."""
        fifo = self._fifo
        out: list[T] = []
        if not self._heap:
            while fifo and fifo[0][0] <= limit:
                out.append(fifo.popleft()[2])
            return out
        entry = self._pop_first(limit)
        while entry is not None:
            out.append(entry[2])
            entry = self._pop_first(limit)
        return out

    def _pop_first(self, limit: float) -> tuple[float, int, T] | None:
        """The oldest item of both queues if its event time is ≤ ``limit``."""
        fifo = self._fifo
        heap = self._heap
        if fifo and (not heap or fifo[0] < heap[0]):
            return fifo.popleft() if fifo[0][0] <= limit else None
        if heap and heap[0][0] <= limit:
            return heapq.heappop(heap)
        return None

    def release(self, until: float | None = None) -> Iterator[tuple[float, T]]:
        """Items with event time ≤ ``until`` (default: the watermark), oldest first."""
        limit = self.watermark if until is None else until
        entry = self._pop_first(limit)
        while entry is not None:
            yield entry[0], entry[2]
            entry = self._pop_first(limit)

    def drain(self) -> Iterator[tuple[float, T]]:
        """Everything still held, oldest first (end of input)."""
        return self.release(float("inf"))
