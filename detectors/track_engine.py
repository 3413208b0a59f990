"""The per-track engine: one small state per entity, cleaned fixes in, per-track detectors run.

Expiry is by watermark only (never by wall clock): each track has a deadline, the earliest
event time at which one of its detectors must look again (or the track's time to live),
kept in a heap so idle tracks cost nothing until their deadline passes.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.base import TrackContext, TrackDetector
from detectors.cleaning import CleanState, clean
from models.alert import Alert
from models.position import Position, VesselStatic
from models.settings import CleaningConfig, PipelineConfig

StepFn = Callable[[Any, Position, TrackContext], tuple[Any, list[Alert]]]
DeadlineFn = Callable[[Any], float | None]

TrackKey = tuple[str, str]  # (entity_type, entity_id)


@dataclass(slots=True)
class TrackState:
    clean: CleanState | None = None
    ctx: TrackContext = field(default_factory=TrackContext)
    det: list[Any] = field(default_factory=list)
    last_ts: float = float("-inf")
    scheduled: float | None = None  # deadline currently in the heap


@dataclass(slots=True)
class StepResult:
    alerts: list[Alert]
    reject: str | None = None  # reason when the fix was not accepted (duplicate, late)


class TrackEngine:
    def __init__(
        self,
        detectors: Sequence[TrackDetector],
        cleaning: CleaningConfig,
        pipeline: PipelineConfig,
    ) -> None:
        self.detectors = list(detectors)
        self.cleaning = cleaning
        self.ttl_s = pipeline.track_ttl_s
        self.tracks: dict[TrackKey, TrackState] = {}
        self.counts: Counter[str] = Counter()
        self._deadlines: list[tuple[float, TrackKey]] = []
        self._applies = {
            etype: [i for i, d in enumerate(self.detectors) if etype in d.entity_types]
            for etype in ("vessel", "aircraft")
        }
        # (index, step, deadline) per entity type, for the per-fix loop: bound methods, so the
        # loop does not look the methods up by name on every fix (the detectors are protocol
        # objects, called through Python's generic method call)
        self._stepping: dict[str, list[tuple[int, StepFn, DeadlineFn]]] = {
            etype: [(i, self.detectors[i].step, self.detectors[i].deadline) for i in idx]
            for etype, idx in self._applies.items()
        }

    def __len__(self) -> int:
        return len(self.tracks)

    def add_static(self, static: VesselStatic) -> None:
        """Join static vessel data (AIS 5/24, export columns) to its track."""
        key: TrackKey = ("vessel", static.mmsi)
        track = self.tracks.get(key)
        if track is None:
            track = self.tracks[key] = TrackState(det=[None] * len(self.detectors))
        old = track.ctx.static
        track.ctx.static = old.merge(static) if old else static
        if static.ts > track.last_ts:
            track.last_ts = static.ts  # a track known only from static data expires too
            self._schedule(key, track)

    def process(self, fix: Position) -> StepResult:
        """Clean one fix and run the detectors that apply to its entity type."""
        alerts: list[Alert] = []
        reason = self.process_into(fix, alerts)
        return StepResult(alerts, reason)

    def process_into(self, fix: Position, sink: list[Alert]) -> str | None:
        """:meth:`process` without a result object: alerts are appended to ``sink``;
        returns the reject reason (``None`` = accepted). The pipeline's per-fix path."""
        key: TrackKey = (fix.entity_type, fix.entity_id)
        track = self.tracks.get(key)
        if track is None:
            track = self.tracks[key] = TrackState(det=[None] * len(self.detectors))
        before = track.clean
        prev_ts = None if before is None else before.last_ts  # clean() updates its state in place
        track.clean, reason = clean(before, fix, self.cleaning)
        if reason is not None:
            self.counts[reason] += 1
            return reason
        track.last_ts = fix.ts
        track.ctx.interval_s = None if prev_ts is None else fix.ts - prev_ts
        # The track's deadline (see _deadline), folded into the detector loop: a detector's
        # state changes only in its own step, and detectors that do not apply to this
        # entity type never hold a state.
        due = fix.ts + self.ttl_s
        start = len(sink)
        states = track.det
        ctx = track.ctx
        for i, step, deadline in self._stepping[fix.entity_type]:
            state, out = step(states[i], fix, ctx)
            states[i] = state
            if out:
                sink.extend(out)
            if state is not None:
                d = deadline(state)
                if d is not None and d < due:
                    due = d
        if track.scheduled is None or due < track.scheduled:  # _schedule, inlined
            track.scheduled = due
            heapq.heappush(self._deadlines, (due, key))
        if len(sink) > start and ctx.static is not None and ctx.static.name:
            names = {fix.entity_id: ctx.static.name}
            sink[start:] = [a.with_names(names) for a in sink[start:]]
        return None

    def _deadline(self, track: TrackState) -> float:
        due = track.last_ts + self.ttl_s
        for det, state in zip(self.detectors, track.det, strict=True):
            if state is not None:
                d = det.deadline(state)
                if d is not None and d < due:
                    due = d
        return due

    def _schedule(self, key: TrackKey, track: TrackState, not_before: float = float("-inf")) -> None:
        due = max(self._deadline(track), not_before)
        if track.scheduled is None or due < track.scheduled:
            track.scheduled = due
            heapq.heappush(self._deadlines, (due, key))

    def expire(self, watermark: float) -> list[Alert]:
        """Run detectors' expiry for every track whose deadline the watermark has passed."""
        alerts: list[Alert] = []
        heap = self._deadlines
        while heap and heap[0][0] <= watermark:
            due, key = heapq.heappop(heap)
            track = self.tracks.get(key)
            if track is None or track.scheduled != due:
                continue  # stale entry: the track was evicted or rescheduled
            track.scheduled = None
            for i, det in enumerate(self.detectors):
                state = track.det[i]
                if state is None:
                    continue
                d = det.deadline(state)
                if d is not None and d <= watermark:
                    track.det[i], out = det.expire(state, watermark)
                    alerts.extend(out)
            if watermark >= track.last_ts + self.ttl_s:
                for i, det in enumerate(self.detectors):
                    if track.det[i] is not None:
                        _, out = det.expire(track.det[i], watermark)
                        alerts.extend(out)
                del self.tracks[key]
                self.counts["tracks_expired"] += 1
            else:
                # A detector must move its deadline past the watermark; if one does not,
                # look again one second later rather than spin.
                self._schedule(key, track, not_before=watermark + 1.0)
        if alerts:
            alerts = [self._named(a) for a in alerts]
        return alerts

    def _named(self, alert: Alert) -> Alert:
        names = {}
        for ent in alert.entities:
            track = self.tracks.get((ent.type, ent.id))
            if track is not None and track.ctx.static is not None and track.ctx.static.name:
                names[ent.id] = track.ctx.static.name
        return alert.with_names(names) if names else alert
