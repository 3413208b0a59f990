"""What a worker does with its partitions' state when a rebalance starts and ends.

When a rebalance starts, each revoked partition's state is written at once and the
partition is *frozen*: nothing more is written for it until the assignment that ends the
rebalance says whether this worker keeps it (thawed, it goes on from memory) or not
(dropped; the new owner restores it from the tables). A write landing after the new
owner's restore would mix two owners' state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

log = logging.getLogger("vigiamar.worker")


async def freeze(slots: dict[Any, Any], revoked: Iterable[Any], flush: Callable[[Any, Any], Awaitable[None]]) -> None:
    """``flush(tp, slot)`` each revoked partition under its lock, then mark it frozen."""
    for tp in revoked:
        slot = slots.get(tp)
        if slot is None or slot.frozen:
            continue
        try:
            async with slot.lock:
                await flush(tp, slot)
        except Exception:
            log.exception("flush of %s before the rebalance failed", tp)
        slot.frozen = True


def thaw(slots: dict[Any, Any], assigned: Iterable[Any]) -> list[tuple[Any, Any]]:
    """Thaw the partitions still assigned; remove the others from ``slots`` and return them."""
    keep = set(assigned)
    dropped = []
    for tp, slot in list(slots.items()):
        if tp in keep:
            slot.frozen = False
        else:
            dropped.append((tp, slots.pop(tp)))
    return dropped
