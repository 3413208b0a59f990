"""Stages 2 and 3 of the cell engine, per cell: pair comparisons, area detectors, the agenda.

:class:`CellStage` takes the notes of stage 1 (:mod:`detectors.cell_slotting`) for the cells
it holds (``owns``; all of them in one process) and does the work once it is final, in
event-time order, as the watermark allows (:meth:`CellStage.advance`). A slot ``t`` can only
receive samples from fixes at most ``max_interp_gap_s`` after ``t``, so it is compared when
the watermark passes ``t + lag``; silences, reappearances and per-pair deadlines follow in
the same order (phases: slot, dark, reappear, due).

**Cells held elsewhere.** Two kinds of work touch two cells, and with several stages (one
per partition of the ``cells`` topic) the two may be held by different ones:

* a *handoff* (the owner of pair states moved to another cell): at the start of slot ``t``
  the stage holding the old cell sends the states (a :class:`PairStates` relay), and the
  stage holding the new cell compares slot ``t`` only once they are there;
* a *reappearance* in another cell than the silence began in: the stage of the first cell
  closes its markers and sends what they already reported (a :class:`Closed` relay); the
  stage of the second waits for it at that point of its agenda.

A stage only ever waits for a relay that another stage sends at the same point of the same
order (time, phase, entity), after nothing but earlier points, so none waits forever while
the watermark advances. Relays for other stages collect in :attr:`CellStage.outbox`.

State (:meth:`CellStage.export`) is plain data: samples, detector states, the agenda.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from detectors import state_codec
from detectors.cell_records import DARK, DUE, REAPPEAR, SLOT, Closed, Note, PairStates, SampleNote, SilenceNote
from detectors.cell_timing import EngineTiming
from detectors.cells import AreaDetector, Grid, PairDetector, Sample, SoloPairDetector
from models.alert import Alert
from models.geo import haversine_m
from models.units import DEG_TO_RAD, M_PER_DEG_LAT


@dataclass(slots=True)
class CellState:
    """Stage 2 state of one cell: owned pairs, area state, its next deadline.

    Samples waiting for their slot are not here but in the slot's :class:`SlotWork`: most
    cells get one sample in a slot and nothing to compare it with, and need no state.
    """

    # per pair detector: owner key -> other key -> the detector's pair state
    pairs: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    area: list[Any] = field(default_factory=list)  # per area detector (None until used)
    scheduled: float | None = None


class SlotWork:
    """The samples waiting for one slot, per channel (pair detectors, then area detectors):
    each delivery as the cell it went to and the sample, in the order they came."""

    __slots__ = ("cids", "samples")

    def __init__(self, nchan: int) -> None:
        self.cids: list[list[int]] = [[] for _ in range(nchan)]
        self.samples: list[list[Sample]] = [[] for _ in range(nchan)]

    def by_cell(self) -> dict[int, list[list[Sample]]]:
        """cell -> one list of samples per channel (a checkpoint's form)."""
        out: dict[int, list[list[Sample]]] = {}
        nchan = len(self.cids)
        for c in range(nchan):
            samples = self.samples[c]
            for k, cid in enumerate(self.cids[c]):
                chans = out.get(cid)
                if chans is None:
                    chans = out[cid] = [[] for _ in range(nchan)]
                chans[c].append(samples[k])
        return out


def _everything(cid: int) -> bool:
    return True


class CellStage:
    def __init__(
        self,
        pair_detectors: Sequence[PairDetector],
        area_detectors: Sequence[AreaDetector],
        timing: EngineTiming,
        grid: Grid,
        owns: Callable[[int], bool] | None = None,
    ) -> None:
        self.pair_detectors = list(pair_detectors)
        self.area_detectors = list(area_detectors)
        self.grid = grid
        self.slot_s = timing.slot_s
        self.lag_s = timing.lag_s
        self._owns_fn = owns or _everything
        self._all = owns is None
        self._mine: dict[int, bool] = {}  # memo of ``owns``
        self.cells: dict[int, CellState] = {}
        self.horizon = -math.inf  # everything at or before it is done
        self.target = -math.inf  # where the watermark allows the agenda to go
        self.outbox: list[Note] = []  # relays for cells another stage holds
        self.counts: Counter[str] = Counter()
        self.compared = 0
        self._npair = len(self.pair_detectors)
        # per pair detector: its SoloPairDetector side, if any; whether it pairs only unlike types
        self._solo: list[SoloPairDetector | None] = [
            cast(SoloPairDetector, d) if hasattr(d, "observe_solo") else None for d in self.pair_detectors
        ]
        self._mixed = [all(x != y for x, y in d.entity_pairs) for d in self.pair_detectors]
        self._nchan = self._npair + len(self.area_detectors)
        self._slot_heap: list[float] = []  # slot times with pending samples (or handoffs)
        self._work: dict[float, SlotWork] = {}
        self._handoffs: dict[float, list[tuple[int, str, int, int]]] = {}
        self._events: list[tuple[float, int, str, int, SilenceNote]] = []
        self._seq = 0
        self._cell_due: list[tuple[float, int]] = []
        self._states_in: dict[tuple[int, str, float], PairStates] = {}
        self._closed_in: dict[tuple[str, float], Closed] = {}
        # outbound handoffs by the slot of the entity's last sample here: (that slot, slot, i, key, src, dst)
        self._early: list[tuple[float, float, int, str, int, int]] = []

    def drain(self) -> list[Note]:
        out, self.outbox = self.outbox, []
        return out

    def owns(self, cid: int) -> bool:
        """Whether this stage holds cell ``cid`` (the ``owns`` it was given, remembered)."""
        if self._all:
            return True
        mine = self._mine.get(cid)
        if mine is None:
            if len(self._mine) > 1_000_000:
                self._mine.clear()
            mine = self._mine[cid] = self._owns_fn(cid)
        return mine

    @property
    def waiting(self) -> bool:
        """The agenda stopped short of its target, waiting for a relay."""
        return self.horizon < self.target

    # ------------------------------------------------------------------ input
    def take(self, note: Note) -> None:
        """One note of stage 1, or a relay of another stage; only the parts for cells held here."""
        if isinstance(note, SampleNote):
            self._take_sample(note)
        elif isinstance(note, SilenceNote):
            if note.when <= self.horizon:
                self.counts["late_events"] += 1
            elif self._all or self.owns(note.home1) or self.owns(note.home2):
                self._seq += 1
                heapq.heappush(self._events, (note.when, note.phase, note.event.key, self._seq, note))
        elif isinstance(note, PairStates):
            if note.ts <= self.horizon:  # its slot is past here (a late handoff): take it as it is
                self._merge(note)
            else:
                self._states_in[(note.index, note.key, note.ts)] = note
        else:
            self._closed_in[(note.key, note.t1)] = note

    def _take_sample(self, note: SampleNote) -> None:
        s = note.sample
        ts = s.ts
        if ts <= self.horizon:
            self.counts["late_samples"] += 1
            for i, src, dst, _ in note.handoffs:  # stages holding the other cell may not be late: keep in step
                if self.owns(src) and not self.owns(dst):
                    self.outbox.append(self._states_out(i, s.key, ts, src, dst))
            return
        self._deliver_sample(note)
        every = self._all
        for i, src, dst, prev in note.handoffs:
            if every or self.owns(src) or self.owns(dst):
                self._handoffs.setdefault(ts, []).append((i, s.key, src, dst))
                self._slot_at(ts)
                if not every and self.owns(src) and not self.owns(dst):
                    heapq.heappush(self._early, (prev, ts, i, s.key, src, dst))

    def _deliver_sample(self, note: SampleNote) -> None:
        s = note.sample
        work: SlotWork | None = None
        if self._all:
            for channel, cids in note.deliveries:
                if cids:
                    if work is None:
                        work = self._slot_at(s.ts)
                    work.cids[channel].extend(cids)
                    work.samples[channel].extend([s] * len(cids))
            return
        for channel, cids in note.deliveries:
            for cid in cids:
                if self.owns(cid):
                    if work is None:
                        work = self._slot_at(s.ts)
                    work.cids[channel].append(cid)
                    work.samples[channel].append(s)

    def take_pending(self, note: SampleNote) -> bool:
        """Rebuild after :meth:`restore` of an export without pending samples: a sample note
        taken before the export, read again, goes back among the pending samples if its slot is
        still ahead (nothing else of it: its handoffs and everything else are in the export).
        Whether it did."""
        if note.sample.ts <= self.horizon:
            return False
        self._deliver_sample(note)
        return True

    def _slot_at(self, ts: float) -> SlotWork:
        work = self._work.get(ts)
        if work is None:
            work = self._work[ts] = SlotWork(self._nchan)
            heapq.heappush(self._slot_heap, ts)
        return work

    def _new_cell(self) -> CellState:
        return CellState(pairs=[{} for _ in self.pair_detectors], area=[None] * len(self.area_detectors))

    # ------------------------------------------------------------------- the agenda
    def advance(self, watermark: float | None = None, final: bool = False) -> list[Alert]:
        """Everything that became final: slots up to ``watermark - lag``, silences, deadlines;
        up to ``watermark`` itself when the input ended there (``final``).

        Without a watermark, goes on towards the last one (after a relay came in).
        """
        if watermark is not None:
            self.target = max(self.target, watermark if final else watermark - self.lag_s)
        horizon = self.target
        if horizon <= self.horizon:
            return []
        try:
            return self._advance(horizon)
        finally:
            if self._early:
                self._send_early()

    def _advance(self, horizon: float) -> list[Alert]:
        alerts: list[Alert] = []
        slots, events, due = self._slot_heap, self._events, self._cell_due
        while True:
            t = math.inf
            phase = DUE + 1
            if slots:
                t, phase = slots[0], SLOT
            if events and (events[0][0], events[0][1]) < (t, phase):
                t, phase = events[0][0], events[0][1]
            if due and (due[0][0], DUE) < (t, phase):
                t, phase = due[0][0], DUE
            if t > horizon:
                break
            if phase == SLOT:
                if not self._ready(t):
                    return alerts  # waits for pair states another stage sends
                self.horizon = t  # work at time t may only schedule later work
                heapq.heappop(slots)
                alerts.extend(self._run_slot(t))
                if self._early and self._early[0][0] <= t:
                    self._send_early()
            elif phase == DUE:
                self.horizon = t
                _, cid = heapq.heappop(due)
                alerts.extend(self._run_due(cid, t))
            else:
                note = events[0][-1]
                if phase == REAPPEAR and not self._all and not self._can_reappear(note):
                    return alerts  # waits for what the first cell's stage reported
                self.horizon = t
                heapq.heappop(events)
                alerts.extend(self._run_event(phase, note, t))
        self.horizon = horizon
        self._forget_relays()
        return alerts

    def _ready(self, t: float) -> bool:
        """Slot ``t`` can be compared: the pair states moving in from other stages are here.

        States this stage sends for slot ``t`` go out first, whether or not it must wait.
        """
        handoffs = self._handoffs.get(t)
        if not handoffs or self._all:
            return True
        ready = True
        for n, (i, key, src, dst) in enumerate(handoffs):
            mine_src, mine_dst = self.owns(src), self.owns(dst)
            if mine_src and not mine_dst:
                self.outbox.append(self._states_out(i, key, t, src, dst))
                handoffs[n] = (i, key, -1, -1)  # sent
            elif mine_dst and not mine_src and (i, key, t) not in self._states_in:
                ready = False
        return ready

    def _send_early(self) -> None:
        """Pair states whose slot of handoff is still ahead, but which nothing here can change
        any more: the owner's last sample here was compared, and no deadline of theirs comes
        before the handoff. They go now, so the new cell's stage seldom has to wait for them."""
        early = self._early
        while early and early[0][0] <= self.horizon:
            _, t, i, key, src, dst = heapq.heappop(early)
            handoffs = self._handoffs.get(t)
            if not handoffs:
                continue
            n = next((n for n, h in enumerate(handoffs) if h[0] == i and h[1] == key and h[2] == src), -1)
            if n < 0:
                continue  # already sent
            cell = self.cells.get(src)
            owned = cell.pairs[i].get(key) if cell is not None else None
            if owned:
                det = self.pair_detectors[i]
                if any((d := det.deadline(state)) is not None and d < t for state in owned.values()):
                    continue  # expires here first: goes at the slot of the handoff
            self.outbox.append(self._states_out(i, key, t, src, dst))
            handoffs[n] = (i, key, -1, -1)
            self.counts["states_sent_early"] += 1

    def _run_slot(self, t: float) -> list[Alert]:
        alerts: list[Alert] = []
        for i, key, src, dst in self._handoffs.pop(t, ()):
            if self._all:
                self._handoff(i, key, src, dst)
            elif src == -1:
                continue
            elif self.owns(src) and self.owns(dst):
                self._handoff(i, key, src, dst)
            elif self.owns(src):
                self.outbox.append(self._states_out(i, key, t, src, dst))
            else:
                self._merge(self._states_in.pop((i, key, t)))
        work = self._work.pop(t, None)
        if work is None:
            return alerts
        npair, nchan = self._npair, self._nchan
        buckets = [self._buckets(c, work.cids[c], work.samples[c]) for c in range(nchan)]
        todo: set[int] = set()
        for b in buckets:
            todo.update(b)
        for cid in sorted(todo):
            cell = self.cells.get(cid)
            if cell is None:
                cell = self.cells[cid] = self._new_cell()
            for i in range(npair):
                bucket = buckets[i].get(cid)
                if bucket is not None:
                    alerts.extend(self._compare(cid, cell, i, bucket))
            for j in range(npair, nchan):
                logged = buckets[j].get(cid)
                if logged is not None:
                    alerts.extend(self._log(cid, cell, j - npair, logged))
            self._drop_if_empty(cid, cell)
        return alerts

    def _buckets(self, c: int, cids: list[int], samples: list[Sample]) -> dict[int, list[Sample]]:
        """Channel ``c``'s samples of one slot by cell, keeping only the cells with something to
        do: all of them for an area detector; for a pair detector, where a wanted pair can form
        or a sample is of a type it also sees alone (:meth:`_compare` has nothing to do with
        the others)."""
        n = len(samples)
        if n == 0:
            return {}
        area = c >= self._npair
        solo = None if area else self._solo[c]
        solo_types: frozenset[str] = frozenset() if solo is None else solo.solo_types
        if not area and self._mixed[c]:
            kind = samples[0].etype
            if all(s.etype == kind for s in samples) and kind not in solo_types:
                return {}  # one kind of entity in the whole slot: no pair of unlike kinds anywhere
        groups: dict[int, list[Sample]] = {}
        for k in range(n):
            cid = cids[k]
            group = groups.get(cid)
            if group is None:
                groups[cid] = [samples[k]]
            else:
                group.append(samples[k])
        if area:
            return groups
        mixed = self._mixed[c]
        keep: dict[int, list[Sample]] = {}
        for cid, group in groups.items():
            if len(group) > 1 and not mixed:
                keep[cid] = group
                continue
            kind = group[0].etype
            if kind in solo_types or any(s.etype != kind or s.etype in solo_types for s in group):
                keep[cid] = group
        return keep

    def _handoff(self, i: int, key: str, src: int, dst: int) -> None:
        old = self.cells.get(src)
        if old is None:
            return
        owned = old.pairs[i].pop(key, None)
        if owned is None:
            return
        self._move_in(i, key, dst, owned)
        self._drop_if_empty(src, old)

    def _states_out(self, i: int, key: str, ts: float, src: int, dst: int) -> PairStates:
        old = self.cells.get(src)
        owned = old.pairs[i].pop(key, None) if old is not None else None
        if old is not None:
            self._drop_if_empty(src, old)
        self.counts["states_sent"] += 1
        return PairStates(i, key, ts, src, dst, owned or {})

    def _merge(self, relay: PairStates) -> None:
        if relay.states:
            self._move_in(relay.index, relay.key, relay.dst, relay.states)

    def _move_in(self, i: int, key: str, dst: int, owned: dict[str, Any]) -> None:
        new = self.cells.get(dst)
        if new is None:
            new = self.cells[dst] = self._new_cell()
        into = new.pairs[i].get(key)
        if into is None:
            new.pairs[i][key] = owned
        else:  # cannot happen while handoffs follow every accepted sample; keep the moved state
            into.update(owned)
        self.counts["handoffs"] += 1
        det = self.pair_detectors[i]
        for state in owned.values():
            d = det.deadline(state)
            if d is not None:
                self._schedule_cell(dst, new, d)

    def _compare(self, cid: int, cell: CellState, i: int, bucket: list[Sample]) -> list[Alert]:
        """Every pair this cell owns in one slot's bucket, by a sweep over latitude."""
        det = self.pair_detectors[i]
        solo = self._solo[i]
        if len(bucket) < 2 or self._mixed[i]:
            kinds = {s.etype for s in bucket}
            if len(kinds) < 2:  # no wanted pair can form: only samples alone (nobody near) remain
                if solo is None or kinds.isdisjoint(solo.solo_types):
                    return []
                return self._solo_step(cid, cell, solo, i, bucket, {})
        partners: dict[str, int] | None = {} if solo is not None else None
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
                owner = first.home == cid
                if first.key == second.key or not (owner or (partners is not None and second.home == cid)):
                    continue
                types = (first.etype, second.etype) if first.etype <= second.etype else (second.etype, first.etype)
                if types not in wanted:
                    continue
                dist = haversine_m(first.lat, first.lon, second.lat, second.lon)
                if dist > radius:
                    continue
                if partners is not None:  # counted for either side homed here (solo samples)
                    partners[first.key] = partners.get(first.key, 0) + 1
                    partners[second.key] = partners.get(second.key, 0) + 1
                    if not owner:
                        continue
                mine = owned.get(first.key)
                state = mine.get(second.key) if mine is not None else None
                state, out = det.observe(state, first, second, dist)
                if out:
                    alerts.extend(out)
                self._keep(cid, cell, i, first.key, second.key, state)
        self.compared += n
        if solo is not None:
            alerts.extend(self._solo_step(cid, cell, solo, i, bucket, partners or {}))
        return alerts

    def _solo_step(
        self, cid: int, cell: CellState, det: SoloPairDetector, i: int, bucket: list[Sample], partners: dict[str, int]
    ) -> list[Alert]:
        """``observe_solo`` for each solo-type sample homed in this cell, after the slot's pairs."""
        alerts: list[Alert] = []
        owned = cell.pairs[i]
        types = det.solo_types
        for s in sorted((s for s in bucket if s.home == cid and s.etype in types), key=_by_key):
            mine = owned.get(s.key)
            state = mine.get(s.key) if mine is not None else None
            state, out = det.observe_solo(state, s, partners.get(s.key, 0))
            if out:
                alerts.extend(out)
            self._keep(cid, cell, i, s.key, s.key, state)
        return alerts

    def _keep(self, cid: int, cell: CellState, i: int, owner: str, other: str, state: Any) -> None:
        """Store (or drop, when None) one state the cell owns, and schedule its deadline."""
        owned = cell.pairs[i]
        mine = owned.get(owner)
        if state is None:
            if mine is not None:
                mine.pop(other, None)
                if not mine:
                    del owned[owner]
            return
        if mine is None:
            mine = owned[owner] = {}
        mine[other] = state
        d = self.pair_detectors[i].deadline(state)
        if d is not None:
            self._schedule_cell(cid, cell, d)

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

    # ------------------------------------------------------------------ silences
    def _can_reappear(self, note: SilenceNote) -> bool:
        if self.owns(note.home1) or not self.owns(note.home2):
            return True
        return (note.event.key, note.event.t1) in self._closed_in

    def _run_event(self, phase: int, note: SilenceNote, now: float) -> list[Alert]:
        ev, home1, home2 = note.event, note.home1, note.home2
        alerts: list[Alert] = []
        first = self._all or self.owns(home1)
        second = self._all or self.owns(home2)
        closed: Closed | None = None
        if phase == REAPPEAR and not second:
            assert ev.t2 is not None
            closed = Closed(ev.key, ev.t1, ev.t2, home2, {})
            self.outbox.append(closed)
            self.counts["closed_sent"] += 1
        given: dict[int, list[str]] | None = None
        if phase == REAPPEAR and not first:
            relay = self._closed_in.pop((ev.key, ev.t1), None)
            given = relay.done if relay is not None else {}
        for j, det in enumerate(self.area_detectors):
            if ev.etype not in det.entity_types:
                continue
            if phase == DARK:
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
            if first:
                cell1 = self.cells.get(home1)
                if cell1 is not None and cell1.area[j] is not None:
                    out, done = det.close_marker(cell1.area[j], ev)
                    alerts.extend(out)
                    self._drop_if_empty(home1, cell1)
                if closed is not None:
                    closed.done[j] = sorted(done)
            else:
                done = frozenset((given or {}).get(j, ()))
            if second:
                cell2 = self.cells.get(home2)
                if cell2 is not None and cell2.area[j] is not None:
                    alerts.extend(det.on_reappear(cell2.area[j], ev, done))
                    self._drop_if_empty(home2, cell2)
        return alerts

    def _forget_relays(self) -> None:
        """Relays whose point of the agenda is long past (their note came late here): dropped."""
        if not self._closed_in:
            return
        before = self.horizon - self.lag_s
        for k in [k for k, c in self._closed_in.items() if c.t2 < before]:
            del self._closed_in[k]
            self.counts["relays_dropped"] += 1

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
        self.counts["deadline_fallbacks"] += 1
        return now + self.slot_s

    def _drop_if_empty(self, cid: int, cell: CellState) -> None:
        if self._is_empty(cell):
            self.cells.pop(cid, None)

    def _is_empty(self, cell: CellState) -> bool:
        """No pair state, no area state (a deadline left behind finds no cell and lapses)."""
        if any(cell.pairs):
            return False
        return all(cell.area[j] is None or det.is_empty(cell.area[j]) for j, det in enumerate(self.area_detectors))

    # ------------------------------------------------------------------ checkpoints
    def export(self, pending: bool = True) -> dict[str, Any]:
        """The whole stage as JSON-able data (a streaming shell's checkpoint).

        ``pending=False`` leaves out the samples waiting for their slot (most of the state: a
        lag's worth of every entity's samples, more while a partition's watermark holds the
        slots back); the shell then reads their notes again (:meth:`take_pending`).
        """
        from detectors.cell_records import sample_to_wire

        enc = state_codec.encode
        waiting: dict[int, list[list[Any]]] = {}  # cell -> [[slot, samples per channel], ...]
        if pending:
            for ts in sorted(self._work):
                for cid, chans in self._work[ts].by_cell().items():
                    waiting.setdefault(cid, []).append([ts, [[sample_to_wire(x) for x in ch] for ch in chans]])
        cells = [
            [cid, waiting.pop(cid, []), enc(c.pairs), enc(c.area), enc(c.scheduled)]
            for cid, c in self.cells.items()
            if pending or not self._is_empty(c)
        ]
        empty = self._new_cell()  # cells whose only content is samples waiting, after the others
        cells += [[cid, waiting[cid], enc(empty.pairs), enc(empty.area), None] for cid in sorted(waiting)]
        slots: list[list[Any]] = []  # with the cells of its waiting samples, when they are in the export
        for ts, work in self._work.items():
            held: set[int] = set()
            if pending:
                for cids in work.cids:
                    held.update(cids)
            slots.append([ts, sorted(held)])
        return {
            "cells": cells,
            "horizon": enc(self.horizon),
            "target": enc(self.target),
            "seq": self._seq,
            "counts": dict(self.counts),
            "compared": self.compared,
            "slots": slots,
            "handoffs": [[ts, [list(h) for h in hs]] for ts, hs in self._handoffs.items()],
            "events": [[w, ph, k, seq, note.to_wire()] for w, ph, k, seq, note in self._events],
            "due": [list(d) for d in self._cell_due],
            "early": [list(e) for e in self._early],
            "states_in": [r.to_wire() for r in self._states_in.values()],
            "closed_in": [r.to_wire() for r in self._closed_in.values()],
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load what :meth:`export` wrote (into a new stage). Raises DecodeError."""
        from detectors.cell_records import note_from_wire, sample_from_wire

        dec = state_codec.decode

        def sample(x: Any) -> Sample:  # wire form; a snapshot of an earlier version holds codec form
            return sample_from_wire(x) if "$t" not in x else cast(Sample, dec(x))

        self.cells = {}
        self._work = {}
        self._slot_heap = []
        for ts, _ in data.get("slots", ()):
            self._slot_at(float(ts))
        for cid, pending, pairs, area, scheduled in data.get("cells", ()):
            cell = CellState(dec(pairs), dec(area), dec(scheduled))
            if not self._is_empty(cell) or cell.scheduled is not None:
                self.cells[int(cid)] = cell
            for ts, chans in pending:
                work = self._slot_at(float(ts))
                for channel, ch in enumerate(chans):
                    for x in ch:
                        work.cids[channel].append(int(cid))
                        work.samples[channel].append(sample(x))
        self.horizon = float(dec(data["horizon"]))
        self.target = float(dec(data["target"]))
        self._seq = int(data.get("seq", 0))
        self.counts = Counter(data.get("counts", {}))
        self.compared = int(data.get("compared", 0))
        self._handoffs = {
            float(ts): [(int(i), str(k), int(a), int(b)) for i, k, a, b in hs] for ts, hs in data.get("handoffs", ())
        }
        self._events = []
        for w, ph, k, seq, wire in data.get("events", ()):
            note = note_from_wire(wire)
            assert isinstance(note, SilenceNote)
            self._events.append((float(w), int(ph), str(k), int(seq), note))
        heapq.heapify(self._events)
        self._cell_due = [(float(d), int(c)) for d, c in data.get("due", ())]
        heapq.heapify(self._cell_due)
        self._early = [
            (float(p), float(t), int(i), str(k), int(a), int(b)) for p, t, i, k, a, b in data.get("early", ())
        ]
        heapq.heapify(self._early)
        self._states_in = {}
        for wire in data.get("states_in", ()):
            relay = note_from_wire(wire)
            assert isinstance(relay, PairStates)
            self._states_in[(relay.index, relay.key, relay.ts)] = relay
        self._closed_in = {}
        for wire in data.get("closed_in", ()):
            closed = note_from_wire(wire)
            assert isinstance(closed, Closed)
            self._closed_in[(closed.key, closed.t1)] = closed

    # ------------------------------------------------------------------ introspection
    def pair_states(self, i: int = 0) -> dict[tuple[str, str], tuple[int, Any]]:
        """(owner key, other key) -> (cell id, state) for pair detector ``i`` (tests, debugging)."""
        out: dict[tuple[str, str], tuple[int, Any]] = {}
        for cid, cell in self.cells.items():
            for owner, mine in cell.pairs[i].items():
                for other, state in mine.items():
                    out[(owner, other)] = (cid, state)
        return out


def _by_lat(s: Sample) -> float:
    return s.lat


def _by_key(s: Sample) -> str:
    return s.key
