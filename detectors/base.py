"""The detector protocols and the environment detectors see (zones, ports, shore).

A per-track detector is a state machine over one entity's cleaned positions, in event
time order::

    step(state | None, fix, ctx) -> (state | None, alerts)
    expire(state, watermark)     -> (state | None, alerts)   # idle tracks, closing windows
    deadline(state)              -> event time at which expire must next run, or None

State is a small dataclass of plain values (see :mod:`detectors.state_codec`), so a
faust Table can hold it and a restarted worker resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from models.alert import Alert, DetectorInfo
from models.position import Position, VesselStatic
from models.zones import ZoneIndex


class Geography(Protocol):
    """Reference geography: distances to the nearest port and to the nearest shore."""

    def distance_to_port_m(self, lat: float, lon: float) -> float: ...

    def distance_to_shore_m(self, lat: float, lon: float) -> float: ...

    def on_land(self, lat: float, lon: float) -> bool: ...


class NoGeography:
    """Used when no reference data is configured: everywhere is open sea, far from ports."""

    def distance_to_port_m(self, lat: float, lon: float) -> float:
        return float("inf")

    def distance_to_shore_m(self, lat: float, lon: float) -> float:
        return float("inf")

    def on_land(self, lat: float, lon: float) -> bool:
        return False


@dataclass(frozen=True)
class Environment:
    """What detectors may consult besides the positions: all prepared once at start-up."""

    zones: ZoneIndex = field(default_factory=lambda: ZoneIndex([]))
    geography: Geography = field(default_factory=NoGeography)


@dataclass(slots=True)
class TrackContext:
    """What the track engine knows of an entity besides its positions."""

    static: VesselStatic | None = None
    interval_s: float | None = None  # from the track's previous accepted fix to this one (None: its first)

    @property
    def name(self) -> str | None:
        return self.static.name if self.static else None

    @property
    def ship_type(self) -> int | None:
        return self.static.ship_type if self.static else None


class TrackDetector(Protocol):
    """A per-track detector; one module each in ``detectors/``."""

    name: ClassVar[str]
    version: ClassVar[str]
    entity_types: ClassVar[tuple[str, ...]]
    info: DetectorInfo

    def step(self, state: Any, fix: Position, ctx: TrackContext) -> tuple[Any, list[Alert]]: ...

    def expire(self, state: Any, watermark: float) -> tuple[Any, list[Alert]]: ...

    def deadline(self, state: Any) -> float | None: ...


class CellEngineLike(Protocol):
    """Pairwise detection over cleaned fixes re-keyed by spatial cell (see detectors/cell_engine.py).

    The pipeline hands it every fix the track engine accepted (implausible ones flagged),
    in event-time order, with the track's context, and the watermark for expiry.
    """

    def process(self, fix: Position, ctx: TrackContext) -> list[Alert]: ...

    def expire(self, watermark: float) -> list[Alert]: ...

    def finish(self, end: float) -> list[Alert]:
        """End of input at event time ``end``: no fix can follow, so everything up to it is final."""
        ...
