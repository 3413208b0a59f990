"""The cell engine: pairwise detection over cleaned fixes re-keyed by spatial cell.

Three keyed stages, each holding small plain dataclasses (faust Table values):

1. **per entity** (key: entity): :class:`EntityState` turns irregular fixes into *slot
   samples*: the entity's position at each ``slot_s`` boundary, interpolated between two
   consecutive fixes when they are at most ``max_interp_gap_s`` apart (a fix after a longer
   gap is snapped to its nearest boundary instead). Vessels reporting every 2 s and every
   10 min are thus compared at the same instants, never only when both report in the same
   second. This stage also notices silences (an entity quiet for ``silence_s``) and
   reappearances, for area detectors.
2. **per cell** (key: cell id, :mod:`detectors.cells`): a cell receives the samples of its
   own area plus copies of those within a detector's radius of it (they wait in their
   slot's :class:`~detectors.cell_stage.SlotWork`), and holds the per-pair state of the
   pairs it *owns* (:class:`CellState`). Pairs are only ever looked for inside one cell's
   bucket for one slot: never all pairs of all tracks.
3. the **agenda**: work is done in event-time order once it is final. A sample for
   boundary ``t`` can only come from a fix at most ``max_interp_gap_s`` after ``t``, so
   slot ``t`` is compared when the watermark passes ``t + lag`` (``lag`` =
   ``max(max_interp_gap_s, slot_s)``); silences, reappearances and per-pair deadlines are
   processed in the same order. The result depends only on the input, not on how fixes
   were batched or reordered within the grace period, nor on which vessel reported first.

Pair ownership. A pair is owned by the home cell of its smaller key's sample (for a
vessel pair, the lexicographically smaller ``"vessel:<MMSI>"``). When that entity's next
accepted sample lies in another cell, its owned pair states move with it *before* that
slot is compared (a handoff: in a streaming shell, a message from the old cell to the new
one, keyed by the new cell). So exactly one cell holds a pair's state at any time, and a
pair drifting across cells continues the same episode. The larger entity moving changes
nothing: the owner's cell receives its copies as long as the two are within the radius.

The stages are separate classes exchanging plain records (:mod:`detectors.cell_records`):
stage 1 is :class:`~detectors.cell_slotting.EntityStage` (keyed by entity), stages 2 and 3
are :class:`~detectors.cell_stage.CellStage` (keyed by cell). On several workers stage 1
runs beside the track agents (``positions.*``); each sample, with its copies and handoffs,
goes to the ``cells`` topic keyed by cell id; each ``cells`` partition advances the agenda of
its own cells with the minimum watermark over all position partitions, and the two kinds
of work that touch two cells (a handoff, a reappearance elsewhere) go between partitions as
relays (:mod:`streams.cell_partition`). This class runs both stages in one process: every
note goes straight from stage 1 to stage 2, so the order is that of a single agenda.

Expiry is by watermark only. Aircraft are slotted like vessels but compared only by
detectors whose ``entity_pairs`` name them (air–sea rendezvous). A
:class:`~detectors.cells.SoloPairDetector` also sees each of its owner samples alone,
after the slot's pairs, with the count of partners near it: "nobody near" patterns
(an aircraft circling a spot where no vessel reports) keep per-owner state that moves with
the owner's pair states.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from detectors.base import Environment, TrackContext
from detectors.cell_slotting import INTERVALS, EntityStage, EntityState
from detectors.cell_stage import CellStage, CellState
from detectors.cell_timing import DEFAULT_MAX_INTERP_GAP_S, DEFAULT_SLOT_S, EngineTiming
from detectors.cells import AreaDetector, Grid, PairDetector
from models.alert import Alert
from models.position import Position

__all__ = [
    "DEFAULT_MAX_INTERP_GAP_S",
    "DEFAULT_SLOT_S",
    "INTERVALS",
    "CellEngine",
    "CellState",
    "EngineTiming",
    "EntityState",
    "build_cell_engine",
]


class CellEngine:
    """Implements :class:`detectors.base.CellEngineLike` for pair and area detectors.

    Stage 1 (:class:`EntityStage`) and stage 2 (:class:`CellStage`, holding every cell) in one
    process: each note of stage 1 goes straight to stage 2, and stage 2's horizon is stage 1's.
    """

    def __init__(
        self,
        pair_detectors: Sequence[PairDetector] = (),
        area_detectors: Sequence[AreaDetector] = (),
        timing: EngineTiming | None = None,
        grid: Grid | None = None,
    ) -> None:
        self.pair_detectors = list(pair_detectors)
        self.area_detectors = list(area_detectors)
        self.timing = timing or EngineTiming()
        self.grid = grid or Grid()
        check_radii(self.pair_detectors, self.area_detectors, self.grid)
        self.slot_s = self.timing.slot_s
        self.max_interp_gap_s = self.timing.max_interp_gap_s
        self.lag_s = self.timing.lag_s
        self.slotting = EntityStage(self.pair_detectors, self.area_detectors, self.timing, self.grid)
        self.stage = CellStage(self.pair_detectors, self.area_detectors, self.timing, self.grid)

    @property
    def entities(self) -> dict[str, EntityState]:
        return self.slotting.entities

    @property
    def cells(self) -> dict[int, CellState]:
        return self.stage.cells

    @property
    def horizon(self) -> float:
        return self.stage.horizon

    @property
    def counts(self) -> Counter[str]:
        """Work done: samples built, skipped as too fast, compared, late; handoffs; expiries."""
        out = Counter(self.slotting.counts)
        out.update(self.stage.counts)
        out.update(samples=self.slotting.samples, fast_samples=self.slotting.fast, compared_samples=self.stage.compared)
        return +out

    def process(self, fix: Position, ctx: TrackContext) -> list[Alert]:
        """Slot one cleaned fix; comparisons happen later, when the slot is final (see expire)."""
        slotting = self.slotting
        slotting.process(fix, ctx)
        if slotting.outbox:
            take = self.stage.take
            for note in slotting.drain():
                take(note)
        return []

    def expire(self, watermark: float) -> list[Alert]:
        """Everything that became final: slots up to ``watermark - lag``, silences, deadlines."""
        slotting, stage = self.slotting, self.stage
        slotting.expire(watermark)
        for note in slotting.drain():
            stage.take(note)
        alerts = stage.advance(watermark)
        slotting.horizon = stage.horizon
        return alerts

    def finish(self, end: float) -> list[Alert]:
        """End of input: every slot up to ``end`` is final (no fix can add a sample to it), so
        it is compared now instead of ``lag`` later. Silences still count only up to ``end``."""
        alerts = self.expire(end)
        alerts += self.stage.advance(end, final=True)
        self.slotting.horizon = self.stage.horizon
        return alerts

    def pair_states(self, i: int = 0) -> dict[tuple[str, str], tuple[int, Any]]:
        """(owner key, other key) -> (cell id, state) for pair detector ``i`` (tests, debugging)."""
        return self.stage.pair_states(i)


def check_radii(pair: Sequence[PairDetector], area: Sequence[AreaDetector], grid: Grid) -> None:
    """Everything within a detector's radius must lie in a cell or its neighbours."""
    radii = [(d.name, d.radius_m) for d in pair] + [(d.name, d.radius_m) for d in area]
    for name, radius in radii:
        if radius > grid.min_cell_m:
            raise ValueError(f"{name}: radius {radius} m exceeds the cell size {grid.min_cell_m:.0f} m")


def engine_timing(pair: Sequence[PairDetector]) -> EngineTiming:
    """The slot of the finest pair detector, the interpolation gap of the most patient one."""
    return EngineTiming(
        slot_s=min((d.slot_s for d in pair), default=DEFAULT_SLOT_S),
        max_interp_gap_s=max((d.max_interp_gap_s for d in pair), default=DEFAULT_MAX_INTERP_GAP_S),
    )


def build_cell_engine(
    tables: Mapping[str, Mapping[str, Any]], env: Environment, source: str | None = None
) -> CellEngine | None:
    """The engine for the enabled pairwise detectors of ``[detectors.*]``; None when none is."""
    from detectors.registry import build_pair_detectors

    pair, area = build_pair_detectors(tables, env, source)
    if not pair and not area:
        return None
    return CellEngine(pair, area, engine_timing(pair))
