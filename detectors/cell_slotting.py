"""Stage 1 of the cell engine, per entity: fixes → slot samples, silences and handoffs (notes).

:class:`EntityStage` keeps one :class:`EntityState` per entity and turns its cleaned fixes
into *notes* for the per-cell stage (:mod:`detectors.cell_records`): a :class:`SampleNote`
for each slot boundary it passes (interpolated between two fixes at most
``max_interp_gap_s`` apart, else the fix snapped to its nearest boundary), naming the cells
it goes to and the handoffs it causes, and a :class:`SilenceNote` when the entity goes dark
or reappears. Everything here is keyed by entity, so in a streaming shell it runs beside the
per-track detectors, in each position partition. Notes collect in :attr:`EntityStage.outbox`.

``horizon`` is the time up to which the per-cell stage may already have done its work: a
sample or silence at or before it is late (counted, not sent). The in-process engine sets it
from its per-cell stage; a streaming shell from its own watermark less the engine's lag.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from detectors import state_codec
from detectors.base import TrackContext
from detectors.cell_records import DARK, REAPPEAR, Note, SampleNote, SilenceNote
from detectors.cell_timing import EngineTiming
from detectors.cells import AreaDetector, Grid, PairDetector, Sample, Silence, sample_key, split_sample_key
from models.alert import Alert
from models.position import FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, EntityType, Position

INTERVALS: Final = 7  # an entity's usual reporting interval: the median of its last few


@dataclass(slots=True)
class EntityState:
    """Stage 1 state of one entity: its last fix, the last boundary sampled, where it lives."""

    key: str
    ts: float
    lat: float
    lon: float
    speed_kn: float | None
    last_slot: float
    homes: list[int]  # per pair detector: home cell of the last sample it accepted (-1: none)
    log_ts: list[float]  # per area detector: time of the last sample offered to its log
    name: str | None = None
    ship_type: int | None = None
    nav_status: int | None = None
    dark: bool = False  # the current silence was already reported
    scheduled: float | None = None
    fixes: int = 1  # fixes seen (counted only when area detectors run)
    intervals: list[float] = field(default_factory=list)  # the last INTERVALS times between fixes
    home_ts: list[float] = field(default_factory=list)  # per pair detector: slot of the last sample it accepted


class EntityStage:
    def __init__(
        self,
        pair_detectors: Sequence[PairDetector],
        area_detectors: Sequence[AreaDetector],
        timing: EngineTiming,
        grid: Grid,
    ) -> None:
        self.pair_detectors = list(pair_detectors)
        self.area_detectors = list(area_detectors)
        self.grid = grid
        self.slot_s = timing.slot_s
        self.max_interp_gap_s = timing.max_interp_gap_s
        self.lag_s = timing.lag_s
        self.entities: dict[str, EntityState] = {}
        self.dirty: set[str] = set()  # entities changed (or removed) since take_dirty
        self.horizon = -math.inf
        self.outbox: list[Note] = []
        self.counts: Counter[str] = Counter()
        self.samples = self.fast = 0
        types = {t for d in self.pair_detectors for pair in d.entity_pairs for t in pair}
        types.update(t for d in self.area_detectors for t in d.entity_types)
        self._types = frozenset(types)
        self._npair = len(self.pair_detectors)
        self._nchan = self._npair + len(self.area_detectors)
        # per channel (pair detectors, then area detectors): the longest silence it interpolates
        # across; after a longer one it gets the fix snapped to its nearest boundary instead
        self._gaps = [d.max_interp_gap_s for d in self.pair_detectors]
        self._gaps += [a.max_interp_gap_s for a in self.area_detectors]
        self._min_gap_s = min(self._gaps, default=self.max_interp_gap_s)
        # per entity type, the fastest sample any detector may take; faster ones are not even built
        # (a detector's optional ``speed_limits_kn`` narrows its ``speed_limit_kn`` by type)
        takes: list[tuple[PairDetector | AreaDetector, set[str]]] = [
            (d, {t for pair in d.entity_pairs for t in pair}) for d in self.pair_detectors
        ]
        takes += [(a, set(a.entity_types)) for a in self.area_detectors]
        self._speed_caps: dict[str, float] = {}
        for det, kinds in takes:
            per_type: dict[str, float] = getattr(det, "speed_limits_kn", {})
            for t in kinds:
                self._speed_caps[t] = max(self._speed_caps.get(t, -math.inf), per_type.get(t, det.speed_limit_kn))
        self._silence_s = min((d.silence_s for d in self.area_detectors), default=math.inf)
        self._max_silence_s = max((d.max_silence_s for d in self.area_detectors), default=0.0)
        self._interval_factor = max((d.interval_factor for d in self.area_detectors), default=0.0)
        memory = max((d.memory_s for d in self.pair_detectors), default=0.0)
        # entity memory after its last fix: while it may still own pair states or reappear
        self._keep_s = self.lag_s + max(memory, self._max_silence_s) + self.slot_s
        self._entity_due: list[tuple[float, str]] = []

    def drain(self) -> list[Note]:
        out, self.outbox = self.outbox, []
        return out

    # ------------------------------------------------------------------ slotting
    def process(self, fix: Position, ctx: TrackContext) -> None:
        """Slot one cleaned fix (in event-time order per entity): its samples go to the outbox."""
        if fix.entity_type not in self._types or fix.flags & FLAG_IMPLAUSIBLE:
            return
        key = sample_key(fix.entity_type, fix.entity_id)
        st = self.entities.get(key)
        slot = self.slot_s
        if st is None:
            st = EntityState(
                key,
                fix.ts,
                fix.lat,
                fix.lon,
                fix.speed_kn,
                -math.inf,
                [-1] * self._npair,
                [-math.inf] * (self._nchan - self._npair),
            )
            st.home_ts = [-math.inf] * self._npair
            self.entities[key] = st
            self.dirty.add(key)
            self._describe(st, fix, ctx)
            self._emit(st, fix, round(fix.ts / slot) * slot, fix.lat, fix.lon, fix.speed_kn, 0.0)
            self._schedule_entity(st)
            return
        dt = fix.ts - st.ts
        if dt <= 0.0:
            return  # same instant as the last fix: the first one stands
        self.dirty.add(key)
        self._describe(st, fix, ctx)
        if dt >= self._silence_s:
            after = self._dark_after(st)
            if dt >= after:
                self._silence_ended(st, fix, after)
        if fix.flags & FLAG_NEW_SEGMENT or dt > self.max_interp_gap_s:
            self._snap(st, fix, st.last_slot, None)
        else:
            before = st.last_slot
            only = None
            if dt > self._min_gap_s:  # some channels interpolate across this silence, others take the fix
                only = [dt <= g for g in self._gaps]
            b = (math.floor(st.ts / slot) + 1) * slot
            if b <= st.last_slot:
                b = st.last_slot + slot
            sp0, sp1 = st.speed_kn, fix.speed_kn
            cap = self._speed_caps[fix.entity_type]
            if b <= fix.ts and sp0 is not None and sp1 is not None and sp0 > cap and sp1 > cap:
                n = math.floor((fix.ts - b) / slot) + 1  # every sample between would be too fast: none built
                self.fast += n
                st.last_slot = b + (n - 1) * slot
            elif b <= fix.ts:
                lat0, lon0 = st.lat, st.lon
                dlat = fix.lat - lat0
                dlon = fix.lon - lon0
                if dlon > 180.0:
                    dlon -= 360.0
                elif dlon < -180.0:
                    dlon += 360.0
                t0 = st.ts
                while b <= fix.ts:
                    f = (b - t0) / dt
                    lon = lon0 + dlon * f
                    if lon > 180.0:
                        lon -= 360.0
                    elif lon < -180.0:
                        lon += 360.0
                    self._emit(st, fix, b, lat0 + dlat * f, lon, _lerp(sp0, sp1, f), 0.0 if b == fix.ts else dt, only)
                    b += slot
            if only is not None:
                interpolated = st.last_slot
                self._snap(st, fix, before, [not x for x in only])
                st.last_slot = max(st.last_slot, interpolated)
        st.ts, st.lat, st.lon, st.speed_kn = fix.ts, fix.lat, fix.lon, fix.speed_kn
        st.dark = False
        if self._nchan > self._npair:
            st.fixes += 1
            st.intervals.append(dt)
            if len(st.intervals) > INTERVALS:
                del st.intervals[0]
        self._schedule_entity(st)

    @staticmethod
    def _describe(st: EntityState, fix: Position, ctx: TrackContext) -> None:
        st.nav_status = fix.nav_status
        if ctx.static is not None:
            st.name = ctx.static.name
            st.ship_type = ctx.static.ship_type

    def _snap(self, st: EntityState, fix: Position, after: float, only: list[bool] | None) -> None:
        """The fix itself at its nearest boundary, unless the channels had a sample there already
        (``after``: their last slot): after a silence too long to interpolate across."""
        b = round(fix.ts / self.slot_s) * self.slot_s
        if b > after:
            self._emit(st, fix, b, fix.lat, fix.lon, fix.speed_kn, 0.0, only)

    def _emit(
        self,
        st: EntityState,
        fix: Position,
        ts: float,
        lat: float,
        lon: float,
        speed: float | None,
        gap_s: float,
        only: list[bool] | None = None,
    ) -> None:
        """The sample of slot ``ts`` to the channels that take it (``only``: those marked True)."""
        st.last_slot = ts
        if speed is not None and speed > self._speed_caps[fix.entity_type]:
            self.fast += 1  # no detector takes a sample this fast: not even built
            return
        if ts <= self.horizon:
            self.counts["late_samples"] += 1
            return
        grid = self.grid
        home = grid.home(lat, lon)
        s = Sample(
            st.key,
            fix.entity_type,
            fix.entity_id,
            ts,
            lat,
            lon,
            speed,
            home,
            gap_s,
            st.name,
            st.ship_type,
            st.nav_status,
            fix.altitude_ft,
        )
        self.samples += 1
        note = SampleNote(s)
        deliveries = note.deliveries
        for i, det in enumerate(self.pair_detectors):
            if only is not None and not only[i]:
                continue
            if not det.accepts(s):
                continue
            prev = st.homes[i]
            if prev != home:
                st.homes[i] = home
                if prev != -1:
                    note.handoffs.append((i, prev, home, st.home_ts[i]))
            st.home_ts[i] = ts
            deliveries.append((i, grid.cells_within(lat, lon, det.radius_m)))
        npair = self._npair
        for j, adet in enumerate(self.area_detectors):
            if only is not None and not only[npair + j]:
                continue
            if speed is not None and speed > adet.speed_limit_kn:
                continue  # built for another detector: must not use up this one's log step
            if ts - st.log_ts[j] < adet.log_step_s:
                continue
            st.log_ts[j] = ts  # looked at: the next look (and log entry) one log step later
            if not adet.logs(s):
                continue
            deliveries.append((npair + j, grid.cells_within(lat, lon, adet.radius_m)))
        if deliveries:
            self.outbox.append(note)

    # --------------------------------------------------------------- silences
    def _schedule_entity(self, st: EntityState, due: float | None = None) -> None:
        if due is None:  # the earliest a silence can count (see _dark_after), else forgetting it
            due = st.ts + (self._silence_s if not st.dark and self._silence_s < self._keep_s else self._keep_s)
        if st.scheduled is None or due < st.scheduled:
            st.scheduled = due
            heapq.heappush(self._entity_due, (due, st.key))

    def _dark_after(self, st: EntityState) -> float:
        """How long this entity must be silent for it to count: ``silence_s``, or longer for a
        sparse reporter (``interval_factor`` × its usual interval: a vessel seen by satellite
        every hour does not go dark every hour)."""
        if not st.intervals:
            return self._silence_s
        usual = sorted(st.intervals)[len(st.intervals) // 2]
        return max(self._silence_s, self._interval_factor * usual)

    def _silence(self, st: EntityState) -> Silence:
        etype, eid = split_sample_key(st.key)
        typ: EntityType = "aircraft" if etype == "aircraft" else "vessel"
        return Silence(st.key, typ, eid, st.name, st.ts, st.lat, st.lon, st.speed_kn, fixes=st.fixes)

    def _went_dark(self, st: EntityState, after: float) -> None:
        st.dark = True
        ev = self._silence(st)
        home = self.grid.home(ev.lat1, ev.lon1)
        self._push_event(SilenceNote(DARK, st.ts + after, ev, home, home))

    def _silence_ended(self, st: EntityState, fix: Position, after: float) -> None:
        if not self.area_detectors:
            return
        if not st.dark:
            self._went_dark(st, after)
        if fix.ts - st.ts <= self._max_silence_s:
            ev = self._silence(st)
            ev.t2, ev.lat2, ev.lon2 = fix.ts, fix.lat, fix.lon
            grid = self.grid
            self._push_event(
                SilenceNote(REAPPEAR, fix.ts, ev, grid.home(ev.lat1, ev.lon1), grid.home(fix.lat, fix.lon))
            )

    def _push_event(self, note: SilenceNote) -> None:
        if note.when <= self.horizon:
            self.counts["late_events"] += 1
            return
        self.outbox.append(note)

    def expire(self, watermark: float) -> None:
        """Silences that became certain and entities to forget, as of ``watermark``."""
        heap = self._entity_due
        while heap and heap[0][0] <= watermark:
            due, key = heapq.heappop(heap)
            st = self.entities.get(key)
            if st is None or st.scheduled != due:
                continue
            self.dirty.add(key)
            st.scheduled = None
            if watermark >= st.ts + self._keep_s:
                del self.entities[key]
                self.counts["entities_expired"] += 1
                continue
            if not st.dark and self.area_detectors and watermark >= st.ts + self._silence_s:
                after = self._dark_after(st)
                if watermark >= st.ts + after:
                    self._went_dark(st, after)
                else:
                    self._schedule_entity(st, min(st.ts + after, st.ts + self._keep_s))
                    continue
            self._schedule_entity(st)

    # ------------------------------------------------------------------ checkpoints
    def export(self, entities: bool = True) -> dict[str, Any]:
        """The whole stage as JSON-able data (a streaming shell's checkpoint); without the
        entities when the shell stores them one by one (:meth:`take_dirty`, :meth:`export_entity`)."""
        out: dict[str, Any] = {
            "horizon": state_codec.encode(self.horizon),
            "counts": dict(self.counts),
            "samples": self.samples,
            "fast": self.fast,
        }
        if entities:
            out["entities"] = [state_codec.encode(st) for st in self.entities.values()]
        return out

    def take_dirty(self) -> set[str]:
        """Keys of the entities changed or removed since the last call."""
        out, self.dirty = self.dirty, set()
        return out

    def export_entity(self, key: str) -> Any | None:
        """One entity's state as JSON-able data, or ``None`` when it has none (any more)."""
        st = self.entities.get(key)
        return None if st is None else state_codec.encode(st)

    def restore_entity(self, data: Any) -> None:
        """Load what :meth:`export_entity` wrote (after :meth:`restore`). Raises DecodeError."""
        st = state_codec.decode(data)
        if not isinstance(st, EntityState):
            return
        self.entities[st.key] = st
        if st.scheduled is not None:
            heapq.heappush(self._entity_due, (st.scheduled, st.key))

    def restore(self, data: dict[str, Any]) -> None:
        """Load what :meth:`export` wrote (into a new stage). Raises DecodeError."""
        self.entities = {}
        self._entity_due = []
        for item in data.get("entities", ()):
            self.restore_entity(item)
        self.horizon = float(state_codec.decode(data.get("horizon", self.horizon)))
        self.counts = Counter(data.get("counts", {}))
        self.samples = int(data.get("samples", 0))
        self.fast = int(data.get("fast", 0))


def _lerp(v0: float | None, v1: float | None, f: float) -> float | None:
    if v0 is None or v1 is None:
        return v1 if v0 is None else v0
    return v0 + (v1 - v0) * f


class SlottingOnly:
    """Stage 1 alone as a :class:`detectors.base.CellEngineLike`, for a position partition of the
    streaming shell: notes collect in ``stage.outbox``; the per-cell stage runs elsewhere.

    Its horizon is its own watermark less the engine's lag: the per-cell stage, which waits
    for every partition, is never ahead of it.
    """

    def __init__(self, stage: EntityStage) -> None:
        self.stage = stage

    def process(self, fix: Position, ctx: TrackContext) -> list[Alert]:
        self.stage.process(fix, ctx)
        return []

    def expire(self, watermark: float) -> list[Alert]:
        stage = self.stage
        stage.expire(watermark)
        stage.horizon = max(stage.horizon, watermark - stage.lag_s)
        return []

    def finish(self, end: float) -> list[Alert]:
        """The per-cell stage finishes on its own once every position partition ended."""
        return self.expire(end)
