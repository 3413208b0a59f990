"""Every Prometheus metric vigiamar exposes, declared in one place.

Shells (the embedded ``replay``, the faust ``worker``) count through one :class:`Metrics`
object; nothing else in vigiamar creates metrics. The API::

    from streams.metrics import Metrics, metrics_config

    m = Metrics(registry=None)          # None: a fresh CollectorRegistry (+ process metrics);
                                        # tests pass their own and read it with get_sample_value
    m.positions_in("nmea", "vessel", n) # records decoded, by source format and entity type
    m.rejected("bad_checksum", n)       # input that did not become a record, by reason
    m.dead_lettered("deadletter", n)    # records sent to the dead-letter topic (label: that topic)
    m.alert(alert)                      # one alert revision: counted by kind, status, agency
    m.observe_latency(seconds)          # event→alert latency (see below)
    m.observe_step(seconds, "track")    # detector step time; stage: track | cell | batch
    m.set_watermark(ts)                 # event-time watermark (Unix s); lag behind wall clock follows
    m.set_active(tracks, cells)         # tracks and cells held in state now
    m.set_consumer_lag(topic, partition, lag)  / m.forget_partition(topic, partition)
    push = step_timer(m, push, every, "track")  # a detector step function, 1 call in ``every`` timed
    server = m.serve(port, addr)        # /metrics over HTTP in a daemon thread; server.close()
    body, content_type = m.exposition() # for a web framework's own route (faust web, aiohttp)

    cfg = metrics_config(settings)      # the validated [metrics] section: enabled, port, addr

Event→alert latency is how long after the last event an alert describes (its ``end``) the
alert was published, on the shell's clock: the wall clock in the worker (live feeds), the
*data* clock in ``replay`` (the latest event time read), because for a replay of 2020 data
the wall clock means nothing; a replay then shows what the same data would cost live.

Labels never carry a vessel or aircraft id (nor anything else unbounded): every label
value goes through :func:`label`, which maps values that look like ids (all digits, or
long), or values past :data:`MAX_VALUES_PER_LABEL` distinct ones, to ``"other"``.
Counters end in ``_total``.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from models.alert import Alert
from models.configuring import bounds, build_config
from models.errors import ConfigError
from models.position import Position, Reject
from models.settings import Settings

PREFIX = "vigiamar"
OTHER = "other"
MAX_VALUES_PER_LABEL = 64
_LABEL_OK = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,47}$")
_ICAO24 = re.compile(r"^[0-9A-Fa-f]{6}$")  # an aircraft address is an id, never a label

# Event→alert latency: live alerts come a grace period (60 s) or a gap threshold after the event.
# Expiry closes an alert up to a gap threshold or track TTL (hours to 2 days) after its end.
LATENCY_BUCKETS_S = (
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0, 172800.0,
)
STEP_BUCKETS_S = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.25, 1.0)


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]`` in the settings file."""

    enabled: bool = True
    port: int = field(default=9108, metadata=bounds(1, 65535))  # worker: GET /metrics (+ /livez, /readyz) here
    addr: str = "0.0.0.0"
    step_sample_every: int = field(default=1, metadata=bounds(1, 1_000_000))  # time 1 of N detector steps


def metrics_config(settings: Settings) -> MetricsConfig:
    """The validated ``[metrics]`` section (defaults when absent); problems raise ConfigError."""
    source = str(settings.path)
    table = settings.extra.get("metrics")
    if table is None:
        return MetricsConfig()
    if not isinstance(table, Mapping):
        raise ConfigError("metrics", "expected a table", source)
    return build_config(MetricsConfig, table, "metrics", source)


class _Labels:
    """Keeps label values bounded: known-safe text passes, ids and overflow become ``other``."""

    def __init__(self) -> None:
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, value: object) -> str:
        text = str(value)
        seen = self._seen.get(name)
        if seen is not None and text in seen:
            return text
        if not _LABEL_OK.match(text) or _ICAO24.match(text):
            return OTHER
        with self._lock:
            seen = self._seen.setdefault(name, set())
            if len(seen) >= MAX_VALUES_PER_LABEL:
                return OTHER
            seen.add(text)
        return text


def label(value: object) -> str:
    """The form a label value takes (without the per-label cap): ids and odd text become ``other``."""
    text = str(value)
    return text if _LABEL_OK.match(text) and not _ICAO24.match(text) else OTHER


class Metrics:
    """vigiamar's metrics on one registry. Thread-safe (prometheus_client is)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, version: str | None = None) -> None:
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
        self.registry = registry
        self._label = _Labels()
        p = PREFIX
        r = registry
        self.positions_in_total = Counter(
            f"{p}_positions_in_total", "Position records decoded, by source format and entity type",
            ["source", "type"], registry=r,
        )  # fmt: skip
        self.rejected_total = Counter(
            f"{p}_rejected_total", "Input that did not become a record or was dropped in cleaning, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.dead_lettered_total = Counter(
            f"{p}_dead_lettered_total", "Records sent to the dead-letter topic", ["topic"], registry=r
        )
        self.alerts_total = Counter(
            f"{p}_alerts_total", "Alert revisions published, by kind, status (open/update/closed) and agency",
            ["kind", "status", "agency"], registry=r,
        )  # fmt: skip
        self.alert_latency_seconds = Histogram(
            f"{p}_alert_latency_seconds", "Event→alert latency: publish time minus the alert's end (event time)",
            buckets=LATENCY_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.detector_step_seconds = Histogram(
            f"{p}_detector_step_seconds", "Time of one detector step (one position, or one batch)",
            ["stage"], buckets=STEP_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.active_tracks = Gauge(f"{p}_active_tracks", "Tracks held in state", registry=r)
        self.active_cells = Gauge(
            f"{p}_active_cells", "Spatial cells holding pairwise detector state (pair or area state)", registry=r
        )
        self.watermark_seconds = Gauge(
            f"{p}_watermark_seconds", "Event-time watermark (Unix seconds): max event time seen minus grace",
            registry=r,
        )  # fmt: skip
        self.watermark_lag_seconds = Gauge(
            f"{p}_watermark_lag_seconds", "Wall clock minus the event-time watermark (NaN before the first)",
            registry=r,
        )  # fmt: skip
        self.consumer_lag_messages = Gauge(
            f"{p}_consumer_lag_messages", "Messages not yet consumed, by topic and partition",
            ["topic", "partition"], registry=r,
        )  # fmt: skip
        self.build_info = Info(f"{p}_build", "vigiamar version", registry=r)
        self.build_info.info({"version": version or _version()})
        self._watermark = math.nan
        self.watermark_lag_seconds.set_function(self._watermark_lag)
        self._pos_children: dict[tuple[str, str], Any] = {}
        self._step_children: dict[str, Any] = {}
        self._reference = ReferenceMemos()
        r.register(self._reference)
        self._events = WorkerEvents()
        r.register(self._events)

    def watch_reference(self, geography: Any) -> None:
        """Expose this geography's cell memos (read at each scrape), instead of any watched before."""
        self._reference.watch(geography)

    def watch_events(self, counts: Mapping[str, int]) -> None:
        """Expose a worker's event counts (read at each scrape), instead of any watched before."""
        self._events.watch(counts)

    # --- counting ----------------------------------------------------------------------------
    def positions_in(self, source: str, type: str, n: int = 1) -> None:
        key = (source, type)
        child = self._pos_children.get(key)
        if child is None:
            child = self.positions_in_total.labels(self._label("source", source), self._label("type", type))
            self._pos_children[key] = child
        child.inc(n)

    def rejected(self, reason: str, n: int = 1) -> None:
        self.rejected_total.labels(self._label("reason", reason)).inc(n)

    def dead_lettered(self, topic: str, n: int = 1) -> None:
        self.dead_lettered_total.labels(self._label("topic", topic)).inc(n)

    def alert(self, alert: Alert) -> None:
        """Count one alert revision once per receiving agency (``none`` when not routed)."""
        kind = self._label("kind", alert.kind)
        status = self._label("status", alert.status)
        for agency in alert.agencies or ("none",):
            self.alerts_total.labels(kind, status, self._label("agency", agency)).inc()

    def observe_latency(self, seconds: float) -> None:
        self.alert_latency_seconds.observe(max(0.0, seconds))

    def observe_step(self, seconds: float, stage: str = "track") -> None:
        child = self._step_children.get(stage)
        if child is None:
            child = self.detector_step_seconds.labels(self._label("stage", stage))
            self._step_children[stage] = child
        child.observe(seconds)

    # --- state -------------------------------------------------------------------------------
    def set_watermark(self, ts: float) -> None:
        if math.isfinite(ts):
            self._watermark = ts
            self.watermark_seconds.set(ts)

    def _watermark_lag(self) -> float:
        wm = self._watermark
        return time.time() - wm if math.isfinite(wm) else math.nan

    def set_active(self, tracks: int, cells: int) -> None:
        self.active_tracks.set(tracks)
        self.active_cells.set(cells)

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        self.consumer_lag_messages.labels(self._label("topic", topic), str(int(partition))).set(max(0, lag))

    def forget_partition(self, topic: str, partition: int) -> None:
        """A partition was revoked: stop exporting its lag (another worker reports it now)."""
        with contextlib.suppress(KeyError):
            self.consumer_lag_messages.remove(self._label("topic", topic), str(int(partition)))

    # --- exposing ----------------------------------------------------------------------------
    def exposition(self) -> tuple[bytes, str]:
        """The text format of every metric, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def serve(self, port: int, addr: str = "0.0.0.0") -> MetricsServer:
        """Serve ``/metrics`` on ``addr:port`` from a daemon thread (port 0: any free port)."""
        server, thread = start_http_server(port, addr, registry=self.registry)
        return MetricsServer(server, thread)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """A sample's value (0.0 when absent): for summaries and tests."""
        got = self.registry.get_sample_value(name, dict(labels or {}))
        return 0.0 if got is None else float(got)


class MetricsServer:
    """The HTTP server behind :meth:`Metrics.serve`."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class ReplayMeter:
    """Counts an embedded run (``streams.embedded.replay(metrics=...)``) without touching its hot path
    when metrics are off: the runner wraps its item stream, push and sinks only when given one.

    Positions are counted locally and flushed every :attr:`FLUSH_EVERY` items together with
    the watermark and the active tracks/cells; one push in ``step_sample_every`` is timed.
    """

    FLUSH_EVERY = 2000

    def __init__(self, metrics: Metrics, pipeline: Any, step_sample_every: int = 1) -> None:
        self.metrics = metrics
        self.pipeline = pipeline
        self.sample_every = max(1, step_sample_every)
        self._counts: dict[tuple[str, str], int] = {}

    def items(self, items: Iterator[Any]) -> Iterator[Any]:
        counts = self._counts
        for n, item in enumerate(items, start=1):
            if isinstance(item, Position):
                key = (item.source or "unknown", item.entity_type)
                counts[key] = counts.get(key, 0) + 1
            if n % self.FLUSH_EVERY == 0:
                self.flush()
            yield item

    def push(self, push: Callable[[Any], list[Alert]]) -> Callable[[Any], list[Alert]]:
        return step_timer(self.metrics, push, self.sample_every, "track")

    def on_alert(self, sink: Callable[[Alert], None]) -> Callable[[Alert], None]:
        metrics, buffer = self.metrics, self.pipeline.buffer

        def counted(alert: Alert) -> None:
            metrics.alert(alert)
            metrics.observe_latency(buffer.max_ts - alert.end_ts)  # the data clock: latest event read
            sink(alert)

        return counted

    def on_reject(self, sink: Callable[[Reject], None]) -> Callable[[Reject], None]:
        rejected = self.metrics.rejected

        def counted(reject: Reject) -> None:
            rejected(reject.reason)
            sink(reject)

        return counted

    def flush(self) -> None:
        for (source, kind), n in self._counts.items():
            self.metrics.positions_in(source, kind, n)
        self._counts.clear()
        pipeline = self.pipeline
        self.metrics.set_watermark(pipeline.watermark)
        self.metrics.set_active(len(pipeline.engine), count_cells(pipeline.cells))


def step_timer(
    metrics: Metrics, step: Callable[[Any], list[Alert]], every: int = 1, stage: str = "track"
) -> Callable[[Any], list[Alert]]:
    """``step`` (a detector step: one record in, its alerts out), timed 1 call in ``every``.

    A timed step costs about 1.4 µs alone (two clock reads and an observation); inside a
    partition engine running the shipped detectors (about 40 µs a position) it measured 4-9 µs
    more a position (10-20 %, on a busy 2-core machine); raise ``[metrics] step_sample_every``
    to spend less (quantiles stay right; the histogram's count becomes 1 step in N).
    """
    observe = metrics.observe_step
    every = max(1, every)
    clock = time.perf_counter
    n = 0

    def timed(record: Any) -> list[Alert]:
        nonlocal n
        n += 1
        if n % every:
            return step(record)
        t0 = clock()
        out = step(record)
        observe(clock() - t0, stage)
        return out

    return timed


class ReferenceMemos(Collector):
    """The reference geography's cell memos (``models.reference``), read when scraped: cells
    held against the capacity (``[reference] memo_cells``), and look-ups answered from them or
    built. Misses that keep coming while the memo is full mean it thrashes: raise the setting.
    The metrics have no samples until a geography with memos is watched (none configured:
    never)."""

    INDEXES = ("shore", "ports")

    def __init__(self) -> None:
        self._indexes: list[tuple[str, Any]] = []

    def watch(self, geography: Any) -> None:
        indexes = [(name, getattr(geography, name, None)) for name in self.INDEXES]
        self._indexes = [(name, index) for name, index in indexes if callable(getattr(index, "cache_info", None))]

    def describe(self) -> Iterator[Any]:
        return self._families(with_samples=False)

    def collect(self) -> Iterator[Any]:
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Any]:
        p = PREFIX
        cells = GaugeMetricFamily(
            f"{p}_reference_memo_cells", "Cells of the reference geography held in memory, by index", labels=["index"]
        )
        capacity = GaugeMetricFamily(
            f"{p}_reference_memo_capacity_cells", "Cells each index may hold ([reference] memo_cells)", labels=["index"]
        )
        lookups = CounterMetricFamily(
            f"{p}_reference_memo_lookups", "Cell look-ups, answered from memory (hit) or built (miss)",
            labels=["index", "result"],
        )  # fmt: skip
        for name, index in self._indexes if with_samples else ():
            info = index.cache_info()
            cells.add_metric([name], info.currsize)
            capacity.add_metric([name], info.maxsize or 0)
            lookups.add_metric([name, "hit"], info.hits)
            lookups.add_metric([name, "miss"], info.misses)
        yield from (cells, capacity, lookups)


class WorkerEvents(Collector):
    """What a streaming worker did apart from detecting, read when scraped from its counts
    (``Worker.counts``): recoveries after a rebalance (``stall_rereads``, ``offset_gaps``,
    ``offset_gaps_read``, ``offset_gaps_unread``), messages from before one (``stale``), state
    writes withheld while the worker may no longer be a member (``writes_withheld``), alerts
    routed and alerts releasable to no agency (``unreleased``), dead letters by reason."""

    def __init__(self) -> None:
        self._counts: Mapping[str, int] = {}

    def watch(self, counts: Mapping[str, int]) -> None:
        self._counts = counts

    def describe(self) -> Iterator[Any]:
        yield self._family()

    def collect(self) -> Iterator[Any]:
        family = self._family()
        for event, n in sorted(dict(self._counts).items()):
            family.add_metric([event], n)
        yield family

    @staticmethod
    def _family() -> Any:
        return CounterMetricFamily(f"{PREFIX}_worker_events", "Worker events by kind (Worker.counts)", labels=["event"])


def count_cells(cells: Any) -> int:
    """Cells held by a cell engine: its ``len()``, else the size of its ``cells`` mapping, else 0."""
    if isinstance(cells, Sized):
        return len(cells)
    held = getattr(cells, "cells", None)
    return len(held) if isinstance(held, Sized) else 0


def registered_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name the registry can expose (``_total``, ``_bucket``, … included).

    Works from the metric families, so labelled metrics with no children yet count too.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
        "stateset": ("",),
        "enum": ("",),
        "unknown": ("",),
        "untyped": ("",),
    }
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(s.name for s in family.samples)
    return names


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("vigiamar")
    except Exception:  # not installed as a distribution (source checkout on sys.path)
        return "unknown"
