"""The embedded shell: files in, the pipeline in one process, alerts out. No broker."""

from __future__ import annotations

import heapq
import itertools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from detectors.base import Environment
from detectors.pipeline import Pipeline
from models.alert import Alert
from models.position import Position, Reject, VesselStatic
from models.settings import Settings
from streams.sources.base import Item, SourceStats
from streams.sources.registry import detect_format, make_decoder, open_text

if TYPE_CHECKING:
    from streams.metrics import Metrics

DETECT_LINES = 5


@dataclass
class RunReport:
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (path, format)
    sources: SourceStats = field(default_factory=SourceStats)
    seconds: float = 0.0
    alerts_final: dict[str, Alert] = field(default_factory=dict)  # id -> highest revision


AlertSink = Callable[[Alert], None]
RejectSink = Callable[[Reject], None]


def _items(path: Path, fmt: str | None, stack: ExitStack, report: RunReport) -> Iterator[Item]:
    text = stack.enter_context(open_text(path))
    head = list(itertools.islice(text, DETECT_LINES))
    chosen = fmt or detect_format(head, str(path))
    decoder = make_decoder(chosen, str(path))
    report.inputs.append((str(path), chosen))
    try:
        yield from decoder.decode(itertools.chain(head, text))
    finally:
        report.sources.merge(decoder.stats)


def _keyed(items: Iterator[Item], index: int) -> Iterator[tuple[float, int, int, Item]]:
    """(event time, input index, sequence, item); rejects take the time of what preceded them."""
    last = float("-inf")
    for seq, item in enumerate(items):
        if not isinstance(item, Reject):
            last = item.ts
        yield last, index, seq, item


def merged_items(paths: list[Path], fmt: str | None, stack: ExitStack, report: RunReport) -> Iterator[Item]:
    """Items of all inputs, interleaved by event time (each input is read in its own order)."""
    streams = [_items(p, fmt, stack, report) for p in paths]
    if len(streams) == 1:
        yield from streams[0]
        return
    for _, _, _, item in heapq.merge(*(_keyed(s, i) for i, s in enumerate(streams))):
        yield item


def replay(
    paths: list[Path],
    settings: Settings,
    *,
    on_alert: AlertSink,
    on_reject: RejectSink,
    input_format: str | None = None,
    env: Environment | None = None,
    progress: Callable[[int], None] | None = None,
    metrics: Metrics | None = None,
) -> tuple[RunReport, Pipeline]:
    """Replay files through the pipeline; every alert revision goes to ``on_alert``.

    With ``metrics`` the run is counted (positions, rejects, alerts, latency on the data
    clock, step time, watermark, active tracks); without, nothing is wrapped or timed.
    """
    report = RunReport()
    pipeline = Pipeline(settings, env)
    final = report.alerts_final
    started = time.perf_counter()
    push: Callable[[Position | VesselStatic], list[Alert]] = pipeline.push
    meter = None
    if metrics is not None:
        from streams.metrics import ReplayMeter, metrics_config

        meter = ReplayMeter(metrics, pipeline, metrics_config(settings).step_sample_every)
        on_alert, on_reject, push = meter.on_alert(on_alert), meter.on_reject(on_reject), meter.push(push)

    def publish(alerts: list[Alert]) -> None:
        for alert in alerts:
            prev = final.get(alert.id)
            if prev is None or alert.revision > prev.revision:
                final[alert.id] = alert
            on_alert(alert)

    def drain_dropped() -> None:
        for pos, reason in pipeline.dropped:
            on_reject(Reject(pos.source or "pipeline", pos.entity_id, reason, _wire_text(pos)))
        pipeline.dropped.clear()

    with ExitStack() as stack:
        items = merged_items(paths, input_format, stack, report)
        for n, item in enumerate(meter.items(items) if meter is not None else items, start=1):
            if isinstance(item, Reject):
                on_reject(item)
                continue
            alerts = push(item)
            if alerts:
                publish(alerts)
            if pipeline.dropped:
                drain_dropped()
            if progress is not None and n % 20000 == 0:
                progress(20000)
        publish(pipeline.finish())
        drain_dropped()
        if meter is not None:
            meter.flush()
    report.seconds = time.perf_counter() - started
    return report, pipeline


def _wire_text(pos: Position | VesselStatic) -> str:
    import orjson

    if isinstance(pos, Position):
        return orjson.dumps(pos.to_wire()).decode()
    return repr(pos)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
