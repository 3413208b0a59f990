"""The cell engine: pairwise detection over cleaned fixes re-keyed by spatial cell.

Three keyed stages, each holding small plain dataclasses (faust Table values):

1. **per entity** (key: entity): :class:`EntityState` turns irregular fixes into *slot
   samples*: the entity's position at each ``slot_s`` boundary, interpolated between two
   consecutive fixes when they are at most ``max_interp_gap_s`` apart (a fix after a longer
   gap is snapped to its nearest boundary instead). Vessels reporting every 2 s and every
   10 min are thus compared at the same instants, never only when both report in the same
   second. This stage also notices silences (an entity quiet for ``silence_s``) and
   reappearances, for area detectors.
2. **per cell** (key: cell id, :mod:`detectors.cells`): :class:`CellState` receives the
   samples of its own area plus copies of those within a detector's radius of it, and the
   per-pair state of the pairs it *owns*. Pairs are only ever looked for inside one cell's
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

On several workers: stage 1 runs beside the track agents (``positions.*``, keyed by entity);
each sample and its copies go to the ``cells`` topic keyed by cell id, and so does a handoff
(keyed by the new cell); each worker keeps the agenda of its own cells and advances it with
the watermark of what it reads (the minimum over its partitions). Which cell owns a pair
depends only on sample positions, so no cell ever reads another's state. This class runs
the three stages in one process, in the same order.

Expiry is by watermark only. Aircraft are slotted like vessels but compared only by
detectors whose ``entity_pairs`` name them (air–sea rendezvous will reuse this engine).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.base import Environment, TrackContext
from detectors.cells import AreaDetector, Grid, PairDetector, Sample, Silence
from models.alert import Alert
from models.geo import haversine_m
from models.position import FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, EntityType, Position
from models.units import DEG_TO_RAD, M_PER_DEG_LAT

DEFAULT_SLOT_S = 60.0
DEFAULT_MAX_INTERP_GAP_S = 600.0

INTERVALS = 7  # an entity's usual reporting interval: the median of its last few

# Agenda phases at one event time: compare the slot, then silences, then deadlines.
_SLOT, _DARK, _REAPPEAR, _DUE = 0, 1, 2, 3


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


@dataclass(slots=True)
class CellState:
    """Stage 2 state of one cell: samples waiting for their slot, owned pairs, area state."""

    # slot time -> one list of samples per channel (pair detectors, then area detectors)
    pending: dict[float, list[list[Sample]]] = field(default_factory=dict)
    # per pair detector: owner key -> other key -> the detector's pair state
    pairs: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    area: list[Any] = field(default_factory=list)  # per area detector (None until used)
    scheduled: float | None = None


@dataclass(frozen=True)
class EngineTiming:
    slot_s: float = DEFAULT_SLOT_S
    max_interp_gap_s: float = DEFAULT_MAX_INTERP_GAP_S

    @property
    def lag_s(self) -> float:
        """How far behind the watermark a slot is final: no later fix can add a sample to it."""
        return max(self.max_interp_gap_s, self.slot_s)


class CellEngine:
    """Implements :class:`detectors.base.CellEngineLike` for pair and area detectors."""

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
        radii = [(d.name, d.radius_m) for d in self.pair_detectors] + [
            (d.name, d.radius_m) for d in self.area_detectors
        ]
        for name, radius in radii:
            if radius > self.grid.min_cell_m:
                raise ValueError(f"{name}: radius {radius} m exceeds the cell size {self.grid.min_cell_m:.0f} m")
        self.slot_s = self.timing.slot_s
        self.max_interp_gap_s = self.timing.max_interp_gap_s
        self.lag_s = self.timing.lag_s
        self.entities: dict[str, EntityState] = {}
        self.cells: dict[int, CellState] = {}
        self.horizon = -math.inf
        self._counts: Counter[str] = Counter()
        self._samples = self._fast = self._compared = 0
        types = {t for d in self.pair_detectors for pair in d.entity_pairs for t in pair}
        types.update(t for d in self.area_detectors for t in d.entity_types)
        self._types = frozenset(types)
        self._npair = len(self.pair_detectors)
        self._nchan = self._npair + len(self.area_detectors)
        limits = [d.speed_limit_kn for d in self.pair_detectors] + [d.speed_limit_kn for d in self.area_detectors]
        self._speed_cap = max(limits, default=math.inf)
        self._silence_s = min((d.silence_s for d in self.area_detectors), default=math.inf)
        self._max_silence_s = max((d.max_silence_s for d in self.area_detectors), default=0.0)
        self._interval_factor = max((d.interval_factor for d in self.area_detectors), default=0.0)
        memory = max((d.memory_s for d in self.pair_detectors), default=0.0)
        # entity memory after its last fix: while it may still own pair states or reappear
        self._keep_s = self.lag_s + max(memory, self._max_silence_s) + self.slot_s
        self._slot_heap: list[float] = []  # slot times with pending samples
        self._slot_cells: dict[float, set[int]] = {}
        self._handoffs: dict[float, list[tuple[int, str, int, int]]] = {}
        self._events: list[tuple[float, int, str, int, Silence]] = []
        self._seq = 0
        self._cell_due: list[tuple[float, int]] = []
        self._entity_due: list[tuple[float, str]] = []

    @property
    def counts(self) -> Counter[str]:
        """Work done: samples built, skipped as too fast, compared, late; handoffs; expiries."""
        out = Counter(self._counts)
        out.update(samples=self._samples, fast_samples=self._fast, compared_samples=self._compared)
        return +out

    # ------------------------------------------------------------------ stage 1: slotting
    def process(self, fix: Position, ctx: TrackContext) -> list[Alert]:
        """Slot one cleaned fix; comparisons happen later, when the slot is final (see expire)."""
        if fix.entity_type not in self._types or fix.flags & FLAG_IMPLAUSIBLE:
            return []
        key = f"{fix.entity_type}:{fix.entity_id}"
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
            self.entities[key] = st
            self._describe(st, fix, ctx)
            self._emit(st, fix, round(fix.ts / slot) * slot, fix.lat, fix.lon, fix.speed_kn, 0.0)
            self._schedule_entity(st)
            return []
        dt = fix.ts - st.ts
        if dt <= 0.0:
            return []  # same instant as the last fix: the first one stands
        self._describe(st, fix, ctx)
        if dt >= self._silence_s:
            after = self._dark_after(st)
            if dt >= after:
                self._silence_ended(st, fix, after)
        if dt <= self.max_interp_gap_s and not fix.flags & FLAG_NEW_SEGMENT:
            b = (math.floor(st.ts / slot) + 1) * slot
            if b <= st.last_slot:
                b = st.last_slot + slot
            if b <= fix.ts:
                lat0, lon0, sp0 = st.lat, st.lon, st.speed_kn
                sp1 = fix.speed_kn
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
                    self._emit(st, fix, b, lat0 + dlat * f, lon, _lerp(sp0, sp1, f), 0.0 if b == fix.ts else dt)
                    b += slot
        else:
            b = round(fix.ts / slot) * slot
            if b > st.last_slot:
                self._emit(st, fix, b, fix.lat, fix.lon, fix.speed_kn, 0.0)
        st.ts, st.lat, st.lon, st.speed_kn = fix.ts, fix.lat, fix.lon, fix.speed_kn
        st.dark = False
        if self._nchan > self._npair:
            st.fixes += 1
            st.intervals.append(dt)
            if len(st.intervals) > INTERVALS:
                del st.intervals[0]
        self._schedule_entity(st)
        return []

    @staticmethod
    def _describe(st: EntityState, fix: Position, ctx: TrackContext) -> None:
        st.nav_status = fix.nav_status
        if ctx.static is not None:
            st.name = ctx.static.name
            st.ship_type = ctx.static.ship_type

    def _emit(
        self, st: EntityState, fix: Position, ts: float, lat: float, lon: float, speed: float | None, gap_s: float
    ) -> None:
        st.last_slot = ts
        if speed is not None and speed > self._speed_cap:
            self._fast += 1  # no detector takes a sample this fast: not even built
            return
        if ts <= self.horizon:
            self._counts["late_samples"] += 1
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
        )
        self._samples += 1
        for i, det in enumerate(self.pair_detectors):
            if not det.accepts(s):
                continue
            prev = st.homes[i]
            if prev != home:
                st.homes[i] = home
                if prev != -1:
                    self._handoffs.setdefault(ts, []).append((i, st.key, prev, home))
            for cid in grid.cells_within(lat, lon, det.radius_m):
                self._deliver(cid, ts, i, s)
        npair = self._npair
        for j, adet in enumerate(self.area_detectors):
            if ts - st.log_ts[j] < adet.log_step_s:
                continue
            st.log_ts[j] = ts  # looked at: the next look (and log entry) one log step later
            if not adet.logs(s):
                continue
            for cid in grid.cells_within(lat, lon, adet.radius_m):
                self._deliver(cid, ts, npair + j, s)

    def _deliver(self, cid: int, ts: float, channel: int, s: Sample) -> None:
        cell = self.cells.get(cid)
        if cell is None:
            cell = self.cells[cid] = self._new_cell()
        chans = cell.pending.get(ts)
        if chans is None:
            chans = cell.pending[ts] = [[] for _ in range(self._nchan)]
            cells = self._slot_cells.get(ts)
            if cells is None:
                cells = self._slot_cells[ts] = set()
                heapq.heappush(self._slot_heap, ts)
            cells.add(cid)
        chans[channel].append(s)

    def _new_cell(self) -> CellState:
        return CellState(pairs=[{} for _ in self.pair_detectors], area=[None] * len(self.area_detectors))

    # --------------------------------------------------------------- silences (stage 1)
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
        etype, _, eid = st.key.partition(":")
        typ: EntityType = "aircraft" if etype == "aircraft" else "vessel"
        return Silence(st.key, typ, eid, st.name, st.ts, st.lat, st.lon, st.speed_kn, fixes=st.fixes)

    def _went_dark(self, st: EntityState, after: float) -> None:
        st.dark = True
        self._push_event(st.ts + after, _DARK, self._silence(st))

    def _silence_ended(self, st: EntityState, fix: Position, after: float) -> None:
        if not self.area_detectors:
            return
        if not st.dark:
            self._went_dark(st, after)
        if fix.ts - st.ts <= self._max_silence_s:
            ev = self._silence(st)
            ev.t2, ev.lat2, ev.lon2 = fix.ts, fix.lat, fix.lon
            self._push_event(fix.ts, _REAPPEAR, ev)

    def _push_event(self, when: float, phase: int, ev: Silence) -> None:
        if when <= self.horizon:
            self._counts["late_events"] += 1
            return
        self._seq += 1
        heapq.heappush(self._events, (when, phase, ev.key, self._seq, ev))

    def _expire_entities(self, watermark: float) -> None:
        heap = self._entity_due
        while heap and heap[0][0] <= watermark:
            due, key = heapq.heappop(heap)
            st = self.entities.get(key)
            if st is None or st.scheduled != due:
                continue
            st.scheduled = None
            if watermark >= st.ts + self._keep_s:
                del self.entities[key]
                self._counts["entities_expired"] += 1
                continue
            if not st.dark and self.area_detectors and watermark >= st.ts + self._silence_s:
                after = self._dark_after(st)
                if watermark >= st.ts + after:
                    self._went_dark(st, after)
                else:
                    self._schedule_entity(st, min(st.ts + after, st.ts + self._keep_s))
                    continue
            self._schedule_entity(st)

    # ------------------------------------------------------------------- the agenda
    def expire(self, watermark: float) -> list[Alert]:
        """Everything that became final: slots up to ``watermark - lag``, silences, deadlines."""
        self._expire_entities(watermark)
        horizon = watermark - self.lag_s
        if horizon <= self.horizon:
            return []
        alerts: list[Alert] = []
        slots, events, due = self._slot_heap, self._events, self._cell_due
        while True:
            t = math.inf
            phase = _DUE + 1
            if slots:
                t, phase = slots[0], _SLOT
            if events and (events[0][0], events[0][1]) < (t, phase):
                t, phase = events[0][0], events[0][1]
            if due and (due[0][0], _DUE) < (t, phase):
                t, phase = due[0][0], _DUE
            if t > horizon:
                break
            self.horizon = t  # work at time t may only schedule later work
            if phase == _SLOT:
                heapq.heappop(slots)
                alerts.extend(self._run_slot(t))
            elif phase == _DUE:
                _, cid = heapq.heappop(due)
                alerts.extend(self._run_due(cid, t))
            else:
                ev = heapq.heappop(events)[-1]
                alerts.extend(self._run_event(phase, ev, t))
        self.horizon = horizon
        return alerts

    def _run_slot(self, t: float) -> list[Alert]:
        alerts: list[Alert] = []
        for i, key, src, dst in self._handoffs.pop(t, ()):
            self._handoff(i, key, src, dst)
        npair = self._npair
        for cid in sorted(self._slot_cells.pop(t, ())):
            cell = self.cells.get(cid)
            if cell is None:
                continue
            chans = cell.pending.pop(t, None)
            if chans is None:
                continue
            for i in range(npair):
                bucket = chans[i]
                if bucket:
                    alerts.extend(self._compare(cid, cell, i, bucket))
            for j in range(npair, self._nchan):
                logged = chans[j]
                if logged:
                    alerts.extend(self._log(cid, cell, j - npair, logged))
            self._drop_if_empty(cid, cell)
        return alerts

    def _handoff(self, i: int, key: str, src: int, dst: int) -> None:
        old = self.cells.get(src)
        if old is None:
            return
        owned = old.pairs[i].pop(key, None)
        if owned is None:
            return
        new = self.cells.get(dst)
        if new is None:
            new = self.cells[dst] = self._new_cell()
        into = new.pairs[i].get(key)
        if into is None:
            new.pairs[i][key] = owned
        else:  # cannot happen while handoffs follow every accepted sample; keep the moved state
            into.update(owned)
        self._counts["handoffs"] += 1
        det = self.pair_detectors[i]
        for state in owned.values():
            d = det.deadline(state)
            if d is not None:
                self._schedule_cell(dst, new, d)
        self._drop_if_empty(src, old)

    def _compare(self, cid: int, cell: CellState, i: int, bucket: list[Sample]) -> list[Alert]:
        """Every pair this cell owns in one slot's bucket, by a sweep over latitude."""
        if len(bucket) < 2:
            return []
        det = self.pair_detectors[i]
        wanted = det.entity_pairs
        radius = det.radius_m
        dlat = radius / M_PER_DEG_LAT
        bucket.sort(key=_by_lat)
        alerts: list[Alert] = []
        owned = cell.pairs[i]
        n = len(bucket)
        for x in range(n - 1):
            a = bucket[x]
            lat_lim = a.lat + dlat
            dlon = dlat / max(math.cos((abs(a.lat) + dlat) * DEG_TO_RAD), 1e-9)
            for y in range(x + 1, n):
                b = bucket[y]
                if b.lat > lat_lim:
                    break
                dl = abs(b.lon - a.lon)
                if dl > dlon and 360.0 - dl > dlon:
                    continue
                first, second = (a, b) if a.key < b.key else (b, a)
                if first.home != cid or first.key == second.key:
                    continue
                types = (first.etype, second.etype) if first.etype <= second.etype else (second.etype, first.etype)
                if types not in wanted:
                    continue
                dist = haversine_m(first.lat, first.lon, second.lat, second.lon)
                if dist > radius:
                    continue
                mine = owned.get(first.key)
                state = mine.get(second.key) if mine is not None else None
                state, out = det.observe(state, first, second, dist)
                if out:
                    alerts.extend(out)
                if state is None:
                    if mine is not None:
                        mine.pop(second.key, None)
                        if not mine:
                            del owned[first.key]
                    continue
                if mine is None:
                    mine = owned[first.key] = {}
                mine[second.key] = state
                d = det.deadline(state)
                if d is not None:
                    self._schedule_cell(cid, cell, d)
        self._compared += n
        return alerts

    def _log(self, cid: int, cell: CellState, j: int, logged: list[Sample]) -> list[Alert]:
        det = self.area_detectors[j]
        if cell.area[j] is None:
            cell.area[j] = det.new_cell()
        state = cell.area[j]
        alerts: list[Alert] = []
        for s in sorted(logged, key=_by_key):
            alerts.extend(det.on_log(state, s))
        self._schedule_area(cid, cell, j)
        return alerts

    def _area_state(self, cid: int, j: int) -> tuple[CellState, Any]:
        cell = self.cells.get(cid)
        if cell is None:
            cell = self.cells[cid] = self._new_cell()
        if cell.area[j] is None:
            cell.area[j] = self.area_detectors[j].new_cell()
        return cell, cell.area[j]

    def _run_event(self, phase: int, ev: Silence, now: float) -> list[Alert]:
        alerts: list[Alert] = []
        home1 = self.grid.home(ev.lat1, ev.lon1)
        for j, det in enumerate(self.area_detectors):
            if ev.etype not in det.entity_types:
                continue
            if phase == _DARK:
                if now - ev.t1 < det.silence_s - 1e-6:
                    continue
                cell, state = self._area_state(home1, j)
                alerts.extend(det.on_dark(state, ev, now))
                self._schedule_area(home1, cell, j)
                self._drop_if_empty(home1, cell)
                continue
            assert ev.t2 is not None
            if ev.t2 - ev.t1 < det.silence_s or ev.t2 - ev.t1 > det.max_silence_s:
                continue
            done: frozenset[str] = frozenset()
            cell1 = self.cells.get(home1)
            if cell1 is not None and cell1.area[j] is not None:
                out, done = det.close_marker(cell1.area[j], ev)
                alerts.extend(out)
                self._drop_if_empty(home1, cell1)
            home2 = self.grid.home(ev.lat2, ev.lon2)
            cell2 = self.cells.get(home2)
            if cell2 is not None and cell2.area[j] is not None:
                alerts.extend(det.on_reappear(cell2.area[j], ev, done))
        return alerts

    # -------------------------------------------------------------------- deadlines
    def _schedule_cell(self, cid: int, cell: CellState, due: float) -> None:
        if cell.scheduled is None or due < cell.scheduled:
            cell.scheduled = due
            heapq.heappush(self._cell_due, (due, cid))

    def _schedule_area(self, cid: int, cell: CellState, j: int) -> None:
        state = cell.area[j]
        if state is None:
            return
        d = self.area_detectors[j].deadline(state)
        if d is not None:
            self._schedule_cell(cid, cell, d)

    def _run_due(self, cid: int, now: float) -> list[Alert]:
        cell = self.cells.get(cid)
        if cell is None or cell.scheduled is None or cell.scheduled > now:
            return []  # stale entry: the cell was dropped or rescheduled earlier
        cell.scheduled = None
        alerts: list[Alert] = []
        nxt = math.inf
        for i, det in enumerate(self.pair_detectors):
            owned = cell.pairs[i]
            for owner in list(owned):
                mine = owned[owner]
                for other in list(mine):
                    state = mine[other]
                    d = det.deadline(state)
                    if d is not None and d <= now:
                        state, out = det.expire(state, now)
                        alerts.extend(out)
                        if state is None:
                            del mine[other]
                            continue
                        mine[other] = state
                        d = det.deadline(state)
                    if d is not None:
                        nxt = min(nxt, d if d > now else self._fallback(now))
                if not mine:
                    del owned[owner]
        for j, adet in enumerate(self.area_detectors):
            astate = cell.area[j]
            if astate is None:
                continue
            d = adet.deadline(astate)
            if d is not None and d <= now:
                alerts.extend(adet.expire(astate, now))
                d = adet.deadline(astate)
            if d is not None:
                nxt = min(nxt, d if d > now else self._fallback(now))
        if nxt < math.inf:
            self._schedule_cell(cid, cell, nxt)
        self._drop_if_empty(cid, cell)
        return alerts

    def _fallback(self, now: float) -> float:
        """A detector left its deadline at or before ``now`` after expiring: look again a slot later."""
        self._counts["deadline_fallbacks"] += 1
        return now + self.slot_s

    def _drop_if_empty(self, cid: int, cell: CellState) -> None:
        if cell.pending or any(cell.pairs):
            return
        for j, det in enumerate(self.area_detectors):
            if cell.area[j] is not None and not det.is_empty(cell.area[j]):
                return
        self.cells.pop(cid, None)

    # ------------------------------------------------------------------ introspection
    def pair_states(self, i: int = 0) -> dict[tuple[str, str], tuple[int, Any]]:
        """(owner key, other key) -> (cell id, state) for pair detector ``i`` (tests, debugging)."""
        out: dict[tuple[str, str], tuple[int, Any]] = {}
        for cid, cell in self.cells.items():
            for owner, mine in cell.pairs[i].items():
                for other, state in mine.items():
                    out[(owner, other)] = (cid, state)
        return out


def _lerp(v0: float | None, v1: float | None, f: float) -> float | None:
    if v0 is None or v1 is None:
        return v1 if v0 is None else v0
    return v0 + (v1 - v0) * f


def _by_lat(s: Sample) -> float:
    return s.lat


def _by_key(s: Sample) -> str:
    return s.key


def build_cell_engine(
    tables: Mapping[str, Mapping[str, Any]], env: Environment, source: str | None = None
) -> CellEngine | None:
    """The engine for the enabled pairwise detectors of ``[detectors.*]``; None when none is."""
    from detectors.registry import build_pair_detectors

    pair, area = build_pair_detectors(tables, env, source)
    if not pair and not area:
        return None
    timing = EngineTiming(
        slot_s=min((d.slot_s for d in pair), default=DEFAULT_SLOT_S),
        max_interp_gap_s=max((d.max_interp_gap_s for d in pair), default=DEFAULT_MAX_INTERP_GAP_S),
    )
    return CellEngine(pair, area, timing)
