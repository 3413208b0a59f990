"""Process-wide settings every vigiamar command starts with.

**Garbage collector.** CPython's cyclic collector runs a young collection after every 700
net allocations of container objects (dicts, lists, dataclass instances), and every tenth
and hundredth of those also walks older generations: the reference geography, the per-track
state and, in the cells stage, up to an hour of pending samples (``sparse_interp_gap_s``).
A worker decodes every message into fresh dicts and lists, so those walks came thousands of
times a minute over a heap that barely changes. Nearly everything vigiamar allocates is freed
by reference counting (records, notes, samples hold no cycles), so the young generation may
grow to :data:`GC_GEN0_THRESHOLD` objects first; the older thresholds are kept. Cyclic garbage
(rare: exception tracebacks, faust's internals) waits a little longer, a few MB at most.
``python -m benchmarks streaming`` and ``replay_ais`` measure the effect (docs/performance.md).
``VIGIAMAR_GC_GEN0`` sets another threshold (``700``, CPython's own, turns the tuning off).
"""

from __future__ import annotations

import gc
import os

from models.errors import ConfigError

GC_GEN0_THRESHOLD = 50_000
GC_ENV = "VIGIAMAR_GC_GEN0"


def tune_gc(gen0: int | None = None) -> tuple[int, int, int]:
    """Set the young generation's threshold to ``gen0`` (default: ``$VIGIAMAR_GC_GEN0``, else
    :data:`GC_GEN0_THRESHOLD`); the older generations' stay. Returns the thresholds before."""
    if gen0 is None:
        raw = os.environ.get(GC_ENV, "").strip()
        try:
            gen0 = int(raw) if raw else GC_GEN0_THRESHOLD
        except ValueError:
            raise ConfigError(GC_ENV, f"expected a whole number of objects, got {raw!r}", "environment") from None
        if gen0 < 1:
            raise ConfigError(GC_ENV, f"{gen0} is outside the allowed range [1, inf]", "environment")
    before = gc.get_threshold()
    gc.set_threshold(gen0, before[1], before[2])
    return before
