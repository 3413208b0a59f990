"""Per-track state as a faust Table holds it: what changed, and track ↔ JSON-able dict.

The worker does not rewrite every track on every message. :class:`ChangeTracker` finds the
tracks whose state may have changed since the last flush from the outside of the track
engine, using only its public surface:

* a track changes when one of its records is processed: every record pushed is noted, and
  stays noted until the pipeline has released it (its event time ≤ the release point);
* a track changes when its expiry runs (a detector's deadline or the time to live): the
  tracker keeps each written track's next deadline (from the detectors' ``deadline``) in a
  heap and picks up those the release point passed; a track gone from the engine by then
  was removed (time to live).

:func:`export_track` / :func:`restore_track` turn a :class:`TrackState` into a dict via
:mod:`detectors.state_codec`. Detector states are stored by detector *name*, so enabling or
disabling a detector does not shift the others.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence
from typing import Any

from detectors import state_codec
from detectors.base import TrackDetector
from detectors.track_engine import TrackEngine, TrackKey, TrackState

# TrackState fields stored generically; ``det`` goes by detector name, ``scheduled`` never.
_TRACK_FIELDS = tuple(f.name for f in dataclasses.fields(TrackState) if f.name not in ("det", "scheduled"))


def export_track(track: TrackState, detectors: Sequence[TrackDetector]) -> dict[str, Any]:
    out: dict[str, Any] = {name: state_codec.encode(getattr(track, name)) for name in _TRACK_FIELDS}
    out["det"] = {
        det.name: state_codec.encode(state)
        for det, state in zip(detectors, track.det, strict=True)
        if state is not None
    }
    return out


def restore_track(engine: TrackEngine, key: TrackKey, data: dict[str, Any]) -> TrackState:
    """Put a stored track back into ``engine``, deadline included. Raises DecodeError."""
    track = TrackState(det=[None] * len(engine.detectors))
    for name in _TRACK_FIELDS:
        if name in data:
            setattr(track, name, state_codec.decode(data[name]))
    states = data.get("det") or {}
    for i, det in enumerate(engine.detectors):
        if det.name in states:
            track.det[i] = state_codec.decode(states[det.name])
    track.scheduled = None
    engine.tracks[key] = track
    engine._schedule(key, track)  # the engine's deadline heap; TrackEngine has no public restore yet
    return track


def next_deadline(track: TrackState, detectors: Sequence[TrackDetector], ttl_s: float) -> float:
    """The earliest event time at which the engine will run this track's expiry."""
    due = track.last_ts + ttl_s
    for det, state in zip(detectors, track.det, strict=True):
        if state is not None:
            d = det.deadline(state)
            if d is not None and d < due:
                due = d
    return due


class ChangeTracker:
    def __init__(self, engine: TrackEngine, ttl_s: float) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._touched: dict[TrackKey, float] = {}  # key -> newest event time of its pushed records
        self._due: list[tuple[float, TrackKey]] = []

    def touch(self, key: TrackKey, ts: float) -> None:
        prev = self._touched.get(key)
        if prev is None or ts > prev:
            self._touched[key] = ts

    def changes(self, released: float) -> tuple[set[TrackKey], set[TrackKey]]:
        """(changed tracks present in the engine, tracks gone) as of release point ``released``."""
        tracks = self.engine.tracks
        candidates = set(self._touched)
        self._touched = {k: ts for k, ts in self._touched.items() if ts > released}  # not processed yet
        due = self._due
        while due and due[0][0] <= released:
            candidates.add(heapq.heappop(due)[1])
        present = {k for k in candidates if k in tracks}
        return present, candidates - present

    def written(self, key: TrackKey, track: TrackState, released: float) -> None:
        """Note the next deadline of a track just written."""
        due = next_deadline(track, self.engine.detectors, self.ttl_s)
        heapq.heappush(self._due, (max(due, released + 1.0) if due <= released else due, key))
