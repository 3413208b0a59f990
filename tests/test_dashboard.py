"""The Grafana dashboard queries only metrics streams/metrics.py registers, with their labels, and the
renderer behind docs/dashboard.png evaluates every panel on a real run's metrics."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from models.alert import Alert
from models.settings import Settings
from streams.embedded import replay
from streams.metrics import Metrics, registered_names
from tests.conftest import REPO, TEST_DATA

DASHBOARD = REPO / "config" / "grafana" / "dashboards" / "vigiamar.json"
PROMETHEUS_SERIES = {"up"}  # made by Prometheus itself for every target
TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every scraped sample
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def load_tool(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[m.end():].lstrip()
        if m.group() not in KEYWORDS and not following.startswith("(") and not re.fullmatch(r"e\d*", m.group()):
            names.add(m.group())
    return names


def labels_used(expr: str) -> set[str]:
    used = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        used.update(x.strip() for x in group.split(",") if x.strip())
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        used.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    return used


def metric_labels(registry: CollectorRegistry) -> dict[str, set[str]]:
    metrics = Metrics(registry=registry)
    out: dict[str, set[str]] = {}
    for attr in vars(metrics).values():
        names = getattr(attr, "_labelnames", None)
        name = getattr(attr, "_name", None)
        if names is None or name is None:
            continue
        kind = getattr(attr, "_type", "")
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(kind, [""])
        for suffix in suffixes:
            out[name + suffix] = set(names) | ({"le"} if suffix == "_bucket" else set())
    for family in registry.collect():  # custom collectors (streams.metrics.ReferenceMemos): their families
        names = getattr(family, "_labelnames", None)
        if names is not None:
            for suffix in {"counter": ["_total"]}.get(family.type, [""]):
                out.setdefault(family.name + suffix, set(names))
    return out


def test_the_extractor_finds_names_and_ignores_functions_and_labels() -> None:
    expr = 'histogram_quantile(0.95, sum by (le) (rate(vigiamar_alert_latency_seconds_bucket{a="b"}[5m])))'
    assert metric_names(expr) == {"vigiamar_alert_latency_seconds_bucket"}
    assert metric_names('sum(up{job="vigiamar-worker"}) / count(x_total)') == {"up", "x_total"}
    assert labels_used('sum by (kind, agency) (increase(a_total{status="open"}[1h]))') == {"kind", "agency", "status"}


def test_every_queried_metric_is_registered(dashboard: dict[str, Any]) -> None:
    reg = CollectorRegistry()
    Metrics(registry=reg)
    known = registered_names(reg) | PROMETHEUS_SERIES
    used = set().union(*(metric_names(q) for q in queries(dashboard)))
    assert used, "the dashboard queries something"
    assert used - known == set(), f"queried but not in streams/metrics.py: {sorted(used - known)}"
    # and every vigiamar metric is on the dashboard somewhere (nothing measured and never shown)
    shown = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in used}
    declared = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in known if n.startswith("vigiamar_")}
    declared -= {n for n in declared if n.endswith(("_created", "_build_info", "_watermark_seconds"))}
    assert declared - shown == set()


def test_every_label_a_query_uses_exists_on_its_metrics(dashboard: dict[str, Any]) -> None:
    labels = metric_labels(CollectorRegistry())
    for expr in queries(dashboard):
        names = metric_names(expr) - PROMETHEUS_SERIES
        available = set().union(*(labels[n] for n in names)) if names else set()
        missing = labels_used(expr) - available - TARGET_LABELS
        assert not missing, f"{expr}: labels {sorted(missing)} are not labels of {sorted(names)}"


def test_the_dashboard_shows_what_operations_need(dashboard: dict[str, Any]) -> None:
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for words in ("throughput", "consumer lag", "watermark lag", "latency", "reject", "by kind", "by agency"):
        assert words in titles, words
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
        assert p["targets"], p["title"]


def test_renderer_evaluates_every_panel_on_a_real_run(dashboard: dict[str, Any], settings: Settings) -> None:
    tool = load_tool("render_dashboard")
    reg = CollectorRegistry()
    metrics = Metrics(registry=reg)
    target = {"job": "vigiamar-worker", "instance": "test"}
    store = tool.Store()

    def scrape(t: float) -> None:
        samples = tool.parse_exposition(generate_latest(reg).decode(), target)
        samples[("up", frozenset(target.items()))] = 1.0
        store.add(t, samples)

    metrics.positions_in("marinecadastre", "vessel", 0)  # the series exists at the first scrape, as in a worker
    scrape(0.0)
    alerts: list[Alert] = []
    replay([TEST_DATA / "vb_367584050_2020-06-04.csv.gz"], settings, on_alert=alerts.append,
           on_reject=lambda r: None, metrics=metrics)  # fmt: skip
    scrape(10.0)
    ev = tool.Evaluator(store)
    durations = {"$__rate_interval": 20.0, "$__range": 20.0}
    results = {}
    for expr in queries(dashboard):
        node = tool.Parser(expr, durations).parse()
        assert tool.metric_names(node) == metric_names(expr), expr
        results[expr] = ev.instant(node, 10.0)
    opened = sum(a.status == "open" for a in alerts)
    by_kind = results['sum by (kind) (increase(vigiamar_alerts_total{status="open"}[$__range]))']
    assert sum(by_kind.values()) == opened > 0
    rate = results["sum(rate(vigiamar_positions_in_total[$__rate_interval]))"]
    assert rate == {frozenset(): pytest.approx(484 / 10.0)}
    p50 = results[next(q for q in queries(dashboard) if q.startswith("histogram_quantile(0.5, sum by (le) (rate(vig"))]
    [value] = p50.values()
    assert 60.0 <= value <= 3600.0  # latency on the data clock: after the 60 s grace


def test_rendered_dashboard_is_in_docs() -> None:
    png = REPO / "docs" / "dashboard.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size < 1_500_000


def test_histogram_quantile_matches_prometheus() -> None:
    tool = load_tool("render_dashboard")
    vec = {frozenset({("le", le)}): c for le, c in [("1", 0.0), ("10", 50.0), ("100", 100.0), ("+Inf", 100.0)]}
    assert tool.histogram_quantile(0.5, vec) == {frozenset(): pytest.approx(10.0)}
    assert tool.histogram_quantile(0.75, vec) == {frozenset(): pytest.approx(55.0)}
    tail = {frozenset({("le", le)}): c for le, c in [("1", 1.0), ("+Inf", 10.0)]}
    assert tool.histogram_quantile(0.99, tail) == {frozenset(): 1.0}  # in +Inf: the last finite bound


def test_docs_refer_to_the_dashboard_file() -> None:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "dashboard.png" in text and Path("config/grafana/dashboards/vigiamar.json").as_posix() in text
