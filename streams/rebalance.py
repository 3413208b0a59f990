"""What a worker does with its partitions' state when a rebalance starts and ends.

When a rebalance starts, each revoked partition's state is written at once and the
partition is *frozen*: nothing more is written for it until the assignment that ends the
rebalance says whether this worker keeps it (thawed, it goes on from memory) or not
(dropped; the new owner restores it from the tables). A write landing after the new
owner's restore would mix two owners' state.

A partition is kept only when the new assignment's generation follows the one the worker
held it in. A worker the group dropped meanwhile (a pause past the session timeout, a join
that came too late) may get a partition back after another member held it in the
generation it missed; its memory is then older than the tables, so it restores from them.
A worker that learns it was dropped (aiokafka resets its generation to -1) writes nothing
more when the rebalance starts: the partitions are likely someone else's already.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

log = logging.getLogger("vigiamar.worker")

NO_GENERATION = -1  # aiokafka's generation while the member is not in the group


async def freeze(
    slots: dict[Any, Any], revoked: Iterable[Any], flush: Callable[[Any, Any], Awaitable[None]], write: bool = True
) -> None:
    """``flush(tp, slot)`` each revoked partition under its lock (unless not ``write``), then mark it frozen."""
    for tp in revoked:
        slot = slots.get(tp)
        if slot is None or slot.frozen:
            continue
        if write:
            try:
                async with slot.lock:
                    await flush(tp, slot)
            except Exception:
                log.exception("flush of %s before the rebalance failed", tp)
        slot.frozen = True


def thaw(slots: dict[Any, Any], assigned: Iterable[Any], generation: int) -> list[tuple[Any, Any]]:
    """Thaw the partitions assigned again in the generation after their own; remove the others
    from ``slots`` and return them. Each slot has a ``generation``: the one it was last held in."""
    keep = set(assigned)
    dropped = []
    for tp, slot in list(slots.items()):
        if tp in keep and generation != NO_GENERATION and slot.generation == generation - 1:
            slot.frozen = False
            slot.generation = generation
            continue
        if tp in keep:
            log.warning(
                "%s: assigned again in generation %d, last held in %d: another member may have held it"
                " meanwhile, restoring it from the table", tp, generation, slot.generation,
            )  # fmt: skip
        dropped.append((tp, slots.pop(tp)))
    return dropped


def member_generation(app: Any) -> int | None:
    """The consumer group generation aiokafka holds now (None: no consumer to ask).

    faust's ``app.consumer_generation_id`` is set at each assignment; this one turns to -1 as
    soon as the coordinator answers that the member is no longer known.
    """
    thread = getattr(app.consumer, "_thread", None)
    coordinator = getattr(getattr(thread, "_consumer", None), "_coordinator", None)
    generation = getattr(coordinator, "generation", None)
    return generation if isinstance(generation, int) else None
