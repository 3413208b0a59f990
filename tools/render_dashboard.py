"""Render the Grafana dashboard's panels from a real run, without Grafana or Prometheus.

It runs ``vigiamar replay --metrics-port`` on real files, scrapes its ``/metrics`` over HTTP
every ``--interval`` seconds (as Prometheus would, adding the ``up`` series and the target's
``job``/``instance`` labels), evaluates every panel query of
``config/grafana/dashboards/vigiamar.json`` with a small PromQL evaluator (the subset the
dashboard uses: selectors with matchers, ``rate``/``increase`` over a range,
``sum``/``max``/``min``/``avg``/``count`` ``by (…)``, ``histogram_quantile``) and draws the
panels on the dashboard's grid with matplotlib::

    .venv/bin/python tools/render_dashboard.py                 # writes docs/dashboard.png
    .venv/bin/python tools/render_dashboard.py --out /tmp/d.png INPUT...

The x axis is the run's wall-clock time. ``$__rate_interval`` is four scrape intervals,
``$__range`` the whole run. A replay reads 2020 data, so the watermark lag shows that data's
age, and latency is measured on the data clock (see streams/metrics.py).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "config" / "grafana" / "dashboards" / "vigiamar.json"
SHARED = REPO.parent / "shared" / "data"
# One replay per target (like one worker each), each over data of one period so its data
# clock runs like a live feed's; a target whose files are missing is left out.
DEFAULT_TARGETS = {
    # The NMEA samples (older, with malformed sentences) come first in event time: the rejects.
    "ais-virginia": [
        REPO / "data" / "samples" / "virginia_beach_2020-06-04_to_06.csv.gz",
        SHARED / "nmea" / "libais_test.aivdm",
        SHARED / "nmea" / "pyais_mixed.txt",
    ],
    "ais-coastal": [
        SHARED / "ais" / "us_coastal_2020-06-30.csv.gz",
        SHARED / "ais" / "nyharbor_2020-06-30_first_hour.csv.gz",
    ],
    "air-paris": [SHARED / "air" / "paris_area_traffic_2021-10-07_1200-1500.csv.gz"],
}

Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]


# --- the scraped series ------------------------------------------------------------------------
@dataclass
class Store:
    """Scrapes: (time, {(metric name, labels): value})."""

    scrapes: list[tuple[float, dict[tuple[str, Labels], float]]] = field(default_factory=list)

    def add(self, t: float, samples: dict[tuple[str, Labels], float]) -> None:
        self.scrapes.append((t, samples))

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.scrapes]


def parse_exposition(text: str, target: dict[str, str]) -> dict[tuple[str, Labels], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = frozenset({**s.labels, **target}.items())
            out[(s.name, labels)] = float(s.value)
    return out


# --- a small PromQL ------------------------------------------------------------------------------
_TOKEN = re.compile(
    r'\s*(?:(?P<num>\d+(?:\.\d+)?(?:e[+-]?\d+)?)|(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>=~|!~|!=|[(){}\[\],=])'
    r"|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*))"
)
AGGREGATIONS = {"sum": sum, "max": max, "min": min, "avg": lambda v: sum(v) / len(v), "count": len}
FUNCTIONS = ("rate", "increase", "histogram_quantile")


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot parse {expr[pos:]!r} in {expr!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


@dataclass
class Node:
    kind: str  # selector | agg | func | number
    name: str = ""
    matchers: list[tuple[str, str, str]] = field(default_factory=list)
    range_s: float | None = None
    by: tuple[str, ...] | None = None
    args: list[Node] = field(default_factory=list)
    value: float = 0.0


class Parser:
    def __init__(self, expr: str, durations: dict[str, float]) -> None:
        for var, seconds in durations.items():
            expr = expr.replace(f"[{var}]", f"[{seconds}s]")
        self.expr = expr
        # Durations in brackets become plain numbers of seconds for the tokenizer.
        expr = re.sub(r"\[(\d+(?:\.\d+)?)(ms|s|m|h|d)\]", lambda m: f"[{_seconds(m.group(1), m.group(2))}]", expr)
        self.tokens = tokenize(expr)
        self.i = 0

    def parse(self) -> Node:
        node = self.expression()
        if self.i != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.i][1]!r} in {self.expr!r}")
        return node

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.tokens[j][1] if j < len(self.tokens) else ""

    def take(self, want: str | None = None) -> str:
        if self.i >= len(self.tokens):
            raise ValueError(f"unexpected end of {self.expr!r}")
        tok = self.tokens[self.i][1]
        if want is not None and tok != want:
            raise ValueError(f"expected {want!r}, got {tok!r} in {self.expr!r}")
        self.i += 1
        return tok

    def expression(self) -> Node:
        kind, tok = self.tokens[self.i]
        if kind == "num":
            self.i += 1
            return Node("number", value=float(tok))
        if kind != "ident":
            raise ValueError(f"unexpected {tok!r} in {self.expr!r}")
        if tok in AGGREGATIONS:
            self.take()
            by = self.grouping()
            self.take("(")
            inner = self.expression()
            self.take(")")
            by = by if by is not None else self.grouping()
            return Node("agg", name=tok, by=by or (), args=[inner])
        if tok in FUNCTIONS and self.peek(1) == "(":
            self.take()
            self.take("(")
            args = [self.expression()]
            while self.peek() == ",":
                self.take(",")
                args.append(self.expression())
            self.take(")")
            return Node("func", name=tok, args=args)
        return self.selector()

    def grouping(self) -> tuple[str, ...] | None:
        if self.peek() not in ("by", "without"):
            return None
        if self.take() == "without":
            raise ValueError("'without' is not supported by this renderer")
        self.take("(")
        labels = []
        while self.peek() != ")":
            labels.append(self.take())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return tuple(labels)

    def selector(self) -> Node:
        node = Node("selector", name=self.take())
        if self.peek() == "{":
            self.take("{")
            while self.peek() != "}":
                label, op, value = self.take(), self.take(), self.take()
                node.matchers.append((label, op, json.loads(value)))
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
        if self.peek() == "[":
            self.take("[")
            node.range_s = float(self.take())
            self.take("]")
        return node


def _seconds(number: str, unit: str) -> float:
    return float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def metric_names(node: Node) -> set[str]:
    """Every metric a parsed query selects."""
    if node.kind == "selector":
        return {node.name}
    return set().union(*(metric_names(a) for a in node.args)) if node.args else set()


class Evaluator:
    def __init__(self, store: Store, lookback_s: float = 300.0) -> None:
        self.store = store
        self.lookback_s = lookback_s

    def instant(self, node: Node, t: float) -> Vector | float:
        if node.kind == "number":
            return node.value
        if node.kind == "selector":
            if node.range_s is not None:
                raise ValueError(f"range vector {node.name}[…] needs rate() or increase()")
            for ts, samples in reversed(self.store.scrapes):
                if ts <= t:
                    return self._select(node, samples) if t - ts <= self.lookback_s else {}
            return {}
        if node.kind == "agg":
            vec = self.instant(node.args[0], t)
            assert isinstance(vec, dict)
            groups: dict[Labels, list[float]] = {}
            keep = set(node.by or ())
            for labels, v in vec.items():
                if math.isnan(v):
                    continue
                groups.setdefault(frozenset((k, x) for k, x in labels if k in keep), []).append(v)
            return {k: float(AGGREGATIONS[node.name](v)) for k, v in groups.items()}
        if node.name in ("rate", "increase"):
            return self._range_fn(node.name, node.args[0], t)
        if node.name == "histogram_quantile":
            q = self.instant(node.args[0], t)
            vec = self.instant(node.args[1], t)
            assert isinstance(q, float) and isinstance(vec, dict)
            return histogram_quantile(q, vec)
        raise ValueError(f"unsupported {node.kind} {node.name}")

    def _select(self, node: Node, samples: dict[tuple[str, Labels], float]) -> Vector:
        out: Vector = {}
        for (name, labels), v in samples.items():
            if name == node.name and all(_match(dict(labels).get(k, ""), op, val) for k, op, val in node.matchers):
                out[labels] = v
        return out

    def _range_fn(self, fn: str, sel: Node, t: float) -> Vector:
        assert sel.kind == "selector" and sel.range_s is not None
        start = t - sel.range_s
        window = [(ts, self._select(sel, s)) for ts, s in self.store.scrapes if start < ts <= t]
        first_scrape = self.store.scrapes[0][0] if self.store.scrapes else t
        series: dict[Labels, list[tuple[float, float]]] = {}
        for ts, vec in window:
            for labels, v in vec.items():
                series.setdefault(labels, []).append((ts, v))
        out: Vector = {}
        for labels, points in series.items():
            delta = 0.0
            for (_, a), (_, b) in itertools.pairwise(points):
                delta += b - a if b >= a else b  # a counter reset starts again from 0
            if fn == "increase":
                # Counters start at 0: a window reaching back to the run's start counts from there.
                out[labels] = delta + (points[0][1] if start <= first_scrape else 0.0)
            elif len(points) >= 2 and points[-1][0] > points[0][0]:
                out[labels] = delta / (points[-1][0] - points[0][0])
        return out


def _match(value: str, op: str, want: str) -> bool:
    if op == "=":
        return value == want
    if op == "!=":
        return value != want
    hit = re.fullmatch(want, value) is not None
    return hit if op == "=~" else not hit


def histogram_quantile(q: float, vec: Vector) -> Vector:
    """Prometheus's algorithm: linear interpolation inside the bucket that holds the rank."""
    groups: dict[Labels, list[tuple[float, float]]] = {}
    for labels, v in vec.items():
        d = dict(labels)
        le = d.pop("le", None)
        if le is None:
            continue
        groups.setdefault(frozenset(d.items()), []).append((float(le), v))
    out: Vector = {}
    for labels, buckets in groups.items():
        buckets.sort()
        total = buckets[-1][1] if buckets else 0.0
        if not buckets or total <= 0 or not math.isinf(buckets[-1][0]):
            out[labels] = math.nan
            continue
        rank = q * total
        lower, prev_count = 0.0, 0.0
        for upper, count in buckets:
            if count >= rank:
                if math.isinf(upper):
                    out[labels] = lower
                elif count == prev_count:
                    out[labels] = upper
                else:
                    out[labels] = lower + (upper - lower) * (rank - prev_count) / (count - prev_count)
                break
            lower, prev_count = upper, count
    return out


def legend(fmt: str, labels: Labels) -> str:
    d = dict(labels)
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: d.get(m.group(1), ""), fmt).strip() or "value"


# --- running and scraping ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape_run(targets: dict[str, list[Path]], interval: float, log: Callable[[str], None]) -> Store:
    """Run one replay per target and scrape them all every ``interval`` s until every one ended."""
    exe = Path(sys.executable).with_name("vigiamar")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: dict[str, tuple[subprocess.Popen[str], int]] = {}
    for name, inputs in targets.items():
        port = free_port()
        cmd = [str(exe), "replay", "--metrics-port", str(port), "--format", "jsonl", "--out", os.devnull,
               "--no-summary", *map(str, inputs)]  # fmt: skip
        log(f"{name}: " + " ".join(cmd[1:]))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        procs[name] = (proc, port)
    store = Store()
    started = time.monotonic()
    try:
        while any(proc.poll() is None for proc, _ in procs.values()):
            t = time.monotonic() - started
            samples: dict[tuple[str, Labels], float] = {}
            for name, (_, port) in procs.items():
                target = {"job": "vigiamar-worker", "instance": name}
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                        samples.update(parse_exposition(resp.read().decode(), target))
                    samples[("up", frozenset(target.items()))] = 1.0
                except OSError:  # not listening yet, or finished
                    samples[("up", frozenset(target.items()))] = 0.0
            store.add(t, samples)
            time.sleep(max(0.0, interval - ((time.monotonic() - started) - t)))
    finally:
        for name, (proc, _) in procs.items():
            if proc.poll() is None:
                proc.terminate()
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise SystemExit(f"{name}: replay failed ({proc.returncode}): {err[-2000:]}")
    log(f"{len(store.scrapes)} scrapes over {store.times[-1] if store.scrapes else 0:.1f} s")
    return store


# --- drawing -------------------------------------------------------------------------------------
BG, PANEL_BG, FG, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
COLOURS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#96d98d", "#ffb357", "#ca95e5"]


def human(value: float, unit: str) -> tuple[float, str]:
    if unit == "s" and not math.isnan(value):
        for limit, div, name in ((2 * 86400 * 365, 86400 * 365, "years"), (2 * 86400, 86400, "days"),
                                 (2 * 3600, 3600, "h"), (120, 60, "min"), (1, 1, "s"), (1e-3, 1e-3, "ms")):  # fmt: skip
            if abs(value) >= limit:
                return value / div, name
        return value / 1e-6, "µs"
    return value, ""


def series_scale(values: list[float], unit: str) -> tuple[float, str]:
    finite = [abs(v) for v in values if not math.isnan(v)]
    if unit != "s" or not finite:
        return 1.0, ""
    scaled, name = human(max(finite), unit)
    return (max(finite) / scaled if scaled else 1.0), name


def render(dashboard: dict[str, Any], store: Store, out: Path, interval: float, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches
    import matplotlib.pyplot as plt

    panels = dashboard["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_w, unit_h = 0.92, 0.36
    fig = plt.figure(figsize=(24 * unit_w, rows * unit_h + 1.0), facecolor=BG)
    top = 1 - 0.9 / (rows * unit_h + 1.0)
    fig.text(0.006, top + (1 - top) * 0.62, dashboard["title"], color=FG, fontsize=16, weight="bold", va="center")
    fig.text(0.006, top + (1 - top) * 0.2, note, color="#8e8e8e", fontsize=9, va="center")
    ev = Evaluator(store)
    durations = {"$__rate_interval": 4 * interval, "$__range": (store.times[-1] + interval) if store.scrapes else 60}
    times = store.times
    fig_w, fig_h = fig.get_size_inches()
    for p in panels:
        g = p["gridPos"]
        gap = 0.003
        x0, w = g["x"] / 24 + gap, g["w"] / 24 - 2 * gap
        y0 = top - (g["y"] + g["h"]) / rows * top + gap
        h = g["h"] / rows * top - 2 * gap
        frame = fig.add_axes((x0, y0, w, h))
        frame.set_axis_off()
        frame.add_patch(matplotlib.patches.Rectangle((0, 0), 1, 1, facecolor=PANEL_BG, edgecolor=GRID,
                                                     transform=frame.transAxes))  # fmt: skip
        frame.text(0.01, 1 - 0.11 / (h * fig_h), p["title"], color=FG, fontsize=10, weight="bold",
                   va="top", transform=frame.transAxes)  # fmt: skip
        # Room inside the frame for the title, tick labels and legend (in inches, then fractions).
        kind = p["type"]
        ml = {"timeseries": 0.55, "bargauge": 1.9}.get(kind, 0.1) / fig_w
        mb = (0.45 if kind == "timeseries" else 0.12) / fig_h
        mt = 0.32 / fig_h
        ax = fig.add_axes((x0 + ml, y0 + mb, w - ml - 0.12 / fig_w, h - mb - mt), facecolor=PANEL_BG)
        for spine in ax.spines.values():
            spine.set_color(GRID)
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        queries = [(Parser(t["expr"], durations).parse(), t.get("legendFormat", "")) for t in p["targets"]]
        if p["type"] == "timeseries":
            _timeseries(ax, ev, queries, times, unit)
        elif p["type"] == "bargauge":
            _bars(ax, ev, queries, times[-1] if times else 0.0)
        else:
            _stat(ax, ev, queries, times[-1] if times else 0.0, unit)
    fig.savefig(out, dpi=80, facecolor=BG)
    plt.close(fig)


def _timeseries(ax: Any, ev: Evaluator, queries: list[tuple[Node, str]], times: list[float], unit: str) -> None:
    lines: dict[str, list[float]] = {}
    for node, fmt in queries:
        for i, t in enumerate(times):
            vec = ev.instant(node, t)
            items = vec.items() if isinstance(vec, dict) else [(frozenset(), vec)]
            for labels, v in items:
                lines.setdefault(legend(fmt, labels), [math.nan] * len(times))[i] = v
    ax.tick_params(colors=FG, labelsize=8)
    ax.grid(color=GRID, linewidth=0.6)
    if not lines:
        ax.text(0.5, 0.5, "No data", color="#8e8e8e", ha="center", va="center", transform=ax.transAxes, fontsize=12)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    scale, name = series_scale([v for vs in lines.values() for v in vs], unit)
    for i, (label, values) in enumerate(sorted(lines.items())[:10]):
        ax.plot(times, [v / scale for v in values], color=COLOURS[i % len(COLOURS)], linewidth=1.4, label=label)
    ax.set_xlabel("run time (s)", color="#8e8e8e", fontsize=8, labelpad=1)
    if name:
        ax.set_ylabel(name, color="#8e8e8e", fontsize=8)
    ax.legend(loc="upper left", fontsize=7, ncol=2, frameon=False, labelcolor=FG)


def _bars(ax: Any, ev: Evaluator, queries: list[tuple[Node, str]], t: float) -> None:
    values: dict[str, float] = {}
    for node, fmt in queries:
        vec = ev.instant(node, t)
        if isinstance(vec, dict):
            values.update({legend(fmt, k): v for k, v in vec.items() if not math.isnan(v)})
    ax.set_xticks([])
    if not values:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "No data", color="#8e8e8e", ha="center", va="center", transform=ax.transAxes, fontsize=12)
        return
    items = sorted(values.items(), key=lambda kv: kv[1])
    ys = range(len(items))
    ax.barh(list(ys), [v for _, v in items], color=COLOURS[0], height=0.6)
    ax.set_yticks(list(ys), [k for k, _ in items], color=FG, fontsize=8)
    top = max(v for _, v in items) or 1
    for y, (_, v) in zip(ys, items, strict=True):
        ax.text(v + top * 0.01, y, f"{v:.0f}", color=FG, va="center", fontsize=8)
    ax.set_xlim(0, top * 1.12)


def _stat(ax: Any, ev: Evaluator, queries: list[tuple[Node, str]], t: float, unit: str) -> None:
    ax.set_axis_off()
    vec = ev.instant(queries[0][0], t)
    values = list(vec.values()) if isinstance(vec, dict) else [vec]
    if not values or all(math.isnan(v) for v in values):
        text = "No data"
    else:
        value, name = human(values[0], unit)
        text = f"{value:,.1f} {name}".strip() if unit == "s" else f"{value:,.0f}"
    ax.text(0.5, 0.45, text, color=COLOURS[0], ha="center", va="center", transform=ax.transAxes, fontsize=20,
            weight="bold")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="render_dashboard.py", description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="*", type=Path, help="files to replay as one target (default: see DEFAULT_TARGETS)")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png")
    p.add_argument("--interval", type=float, default=1.0, help="scrape interval in seconds")
    args = p.parse_args(argv)
    targets = {"replay": args.inputs} if args.inputs else {
        name: files for name, files in DEFAULT_TARGETS.items() if all(f.is_file() for f in files)
    }
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    store = scrape_run(targets, args.interval, lambda m: print(m, file=sys.stderr))
    while store.scrapes and all(name == "up" for name, _ in store.scrapes[-1][1]):
        store.scrapes.pop()  # every target had ended: "now" is the last scrape that saw one
    if len(store.scrapes) < 3:
        raise SystemExit("too few scrapes: give the run more input or a shorter --interval")
    names = "; ".join(f"{t}: {', '.join(f.name for f in files)}" for t, files in targets.items())
    note = (f"real `vigiamar replay --metrics-port` runs, one per target, scraped every {args.interval:g} s"
            f" — {names}")
    render(dashboard, store, args.out, args.interval, note)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
