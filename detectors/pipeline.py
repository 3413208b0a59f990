"""The detection pipeline without I/O: records in, alert revisions out, in event time.

Both shells drive this: the embedded runner feeds it from files; the streaming shell's
agents run the same steps per partition. Positions are held in a reorder buffer until
the watermark (max event time − grace) passes them, then cleaned and run through the
per-track detectors; the watermark also drives expiry of idle tracks and open windows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from detectors.base import CellEngineLike, Environment, TrackContext, TrackDetector
from detectors.cell_engine import build_cell_engine
from detectors.ordering import ReorderBuffer
from detectors.registry import build_track_detectors
from detectors.routing import Router
from detectors.track_engine import TrackEngine
from models.alert import Alert
from models.position import FLAG_IMPLAUSIBLE, Position, VesselStatic
from models.settings import Settings


class NoCells:
    """Pairwise detection off: a stand-in for the cell engine that finds nothing."""

    def process(self, fix: Position, ctx: TrackContext) -> list[Alert]:
        return []

    def expire(self, watermark: float) -> list[Alert]:
        return []

    def finish(self, end: float) -> list[Alert]:
        return []


@dataclass
class PipelineStats:
    positions_in: int = 0
    positions_processed: int = 0
    statics_in: int = 0
    implausible: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # duplicate, late
    alerts: Counter[str] = field(default_factory=Counter)  # revisions by kind


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        env: Environment | None = None,
        detectors: Sequence[TrackDetector] | None = None,
        cells: CellEngineLike | None = None,
    ) -> None:
        self.settings = settings
        self.env = env if env is not None else Environment(zones=settings.zones)
        if detectors is None:
            detectors = build_track_detectors(settings.detectors, self.env, str(settings.path))
        self.detectors = list(detectors)
        self.engine = TrackEngine(self.detectors, settings.cleaning, settings.pipeline)
        if cells is None:  # pairwise detectors (rendezvous, …) when any is enabled
            cells = build_cell_engine(settings.detectors, self.env, str(settings.path))
        self.cells: CellEngineLike | None = cells  # None: track stages only (benchmarks)
        self.buffer: ReorderBuffer[Position | VesselStatic] = ReorderBuffer(settings.pipeline.grace_s)
        self.router = Router.from_settings(settings)
        self.stats = PipelineStats()
        self.dropped: list[tuple[Position, str]] = []  # drained by the shell (dead-letter)

    @property
    def watermark(self) -> float:
        return self.buffer.watermark

    def push(self, record: Position | VesselStatic) -> list[Alert]:
        """Accept one record; return the alert revisions that became known."""
        if isinstance(record, Position):
            self.stats.positions_in += 1
        else:
            self.stats.statics_in += 1
        buffer = self.buffer
        grace = buffer.grace_s
        before = buffer.max_ts - grace  # the watermark
        buffer.push(record.ts, record)
        after = buffer.max_ts - grace
        if after == before and grace > 0:
            return []
        return self._release(after)

    def finish(self, until: float | None = None) -> list[Alert]:
        """End of input: process everything held and expire at the final watermark.

        The final watermark is the newest event time seen, or ``until`` when that is later:
        a shell that runs one pipeline per partition passes the end of the whole input, so
        every partition expires what replay expires. Alerts whose pattern still holds at
        the end of the data stay open, as they would in a live stream: the input ended, the
        vessels did not.
        """
        end = self.buffer.max_ts if until is None else max(self.buffer.max_ts, until)
        alerts = self._release(end)
        if self.cells is not None:  # its slots up to the end need no later fixes: compare them
            alerts.extend(self._routed(a) for a in self.cells.finish(end))
        return alerts

    def _release(self, until: float) -> list[Alert]:
        alerts: list[Alert] = []
        engine = self.engine
        stats = self.stats
        cells = self.cells
        process_into = engine.process_into
        processed = implausible = 0
        for item in self.buffer.pop_until(until):
            if isinstance(item, VesselStatic):
                engine.add_static(item)
                continue
            reject = process_into(item, alerts)
            if reject is not None:
                stats.dropped[reject] += 1
                self.dropped.append((item, reject))
                continue
            processed += 1
            if item.flags & FLAG_IMPLAUSIBLE:
                implausible += 1
            if cells is not None:
                alerts.extend(cells.process(item, engine.tracks[(item.entity_type, item.entity_id)].ctx))
        stats.positions_processed += processed
        stats.implausible += implausible
        alerts.extend(engine.expire(until))
        if cells is not None:
            alerts.extend(cells.expire(until))
        return [self._routed(a) for a in alerts] if alerts else alerts

    def _routed(self, alert: Alert) -> Alert:
        self.stats.alerts[alert.kind] += 1
        return self.router.route(alert)
