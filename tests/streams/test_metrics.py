"""Metrics: declared once, counted by the embedded shell, served over HTTP, never labelled with ids."""

from __future__ import annotations

import gzip
import math
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from models.alert import Alert, DetectorInfo, EntityRef
from models.errors import ConfigError
from models.position import Reject
from models.settings import Settings, load_settings
from streams.cli import main
from streams.embedded import replay
from streams.metrics import MAX_VALUES_PER_LABEL, Metrics, count_cells, metrics_config, registered_names
from tests.conftest import REPO, TEST_DATA

SLICE = TEST_DATA / "vb_367584050_2020-06-04.csv.gz"  # one vessel, two loitering alerts
MMSI = "367584050"


def sample(reg: CollectorRegistry, name: str, **labels: str) -> float:
    value = reg.get_sample_value(name, labels)
    return 0.0 if value is None else value


def an_alert(status: str = "open", agencies: tuple[str, ...] = ("uscg-d5",), end_ts: float = 1000.0) -> Alert:
    return Alert(
        id="loitering-x", revision=1, kind="loitering", status=status,  # type: ignore[arg-type]
        start_ts=0.0, end_ts=end_ts, lat=36.9, lon=-75.5,
        entities=(EntityRef("vessel", MMSI),), severity="medium", confidence=0.9,
        detector=DetectorInfo("loitering", "1", "abc"), agencies=agencies,
    )  # fmt: skip


def test_every_method_counts_what_its_name_says() -> None:
    reg = CollectorRegistry()
    m = Metrics(registry=reg)
    m.positions_in("nmea", "vessel", 3)
    m.positions_in("nmea", "vessel")
    m.positions_in("aircraft_csv", "aircraft", 2)
    m.rejected("bad_checksum", 2)
    m.dead_lettered("deadletter")
    m.alert(an_alert("open", ("uscg-d1", "uscg-d5")))
    m.alert(an_alert("closed", ()))
    m.observe_latency(42.0)
    m.observe_step(3e-5)
    m.set_active(68, 12)
    m.set_consumer_lag("positions.vessel", 3, 120)

    assert sample(reg, "vigiamar_positions_in_total", source="nmea", type="vessel") == 4
    assert sample(reg, "vigiamar_positions_in_total", source="aircraft_csv", type="aircraft") == 2
    assert sample(reg, "vigiamar_rejected_total", reason="bad_checksum") == 2
    assert sample(reg, "vigiamar_dead_lettered_total", topic="deadletter") == 1
    # One revision routed to two agencies counts once per agency; an unrouted one as "none".
    assert sample(reg, "vigiamar_alerts_total", kind="loitering", status="open", agency="uscg-d1") == 1
    assert sample(reg, "vigiamar_alerts_total", kind="loitering", status="open", agency="uscg-d5") == 1
    assert sample(reg, "vigiamar_alerts_total", kind="loitering", status="closed", agency="none") == 1
    assert sample(reg, "vigiamar_alert_latency_seconds_count") == 1
    assert sample(reg, "vigiamar_alert_latency_seconds_bucket", le="60.0") == 1
    assert sample(reg, "vigiamar_alert_latency_seconds_bucket", le="30.0") == 0
    assert sample(reg, "vigiamar_detector_step_seconds_count", stage="track") == 1
    assert sample(reg, "vigiamar_active_tracks") == 68
    assert sample(reg, "vigiamar_active_cells") == 12
    assert sample(reg, "vigiamar_consumer_lag_messages", topic="positions.vessel", partition="3") == 120
    m.forget_partition("positions.vessel", 3)
    m.forget_partition("positions.vessel", 3)  # twice is fine (revoked, then stopped)
    gone = reg.get_sample_value("vigiamar_consumer_lag_messages", {"topic": "positions.vessel", "partition": "3"})
    assert gone is None


def test_counters_end_in_total_and_everything_is_prefixed() -> None:
    reg = CollectorRegistry()
    Metrics(registry=reg)
    for family in reg.collect():
        assert family.name.startswith("vigiamar_"), family.name
        if family.type == "counter":
            assert any(s.name.endswith("_total") for s in family.samples) or family.samples == []
    names = registered_names(reg)
    assert {"vigiamar_positions_in_total", "vigiamar_alerts_total", "vigiamar_alert_latency_seconds_bucket"} <= names


def test_watermark_lag_is_wall_clock_minus_watermark() -> None:
    reg = CollectorRegistry()
    m = Metrics(registry=reg)
    assert math.isnan(sample(reg, "vigiamar_watermark_lag_seconds"))  # nothing seen yet
    m.set_watermark(time.time() - 300)
    assert 299 <= sample(reg, "vigiamar_watermark_lag_seconds") <= 310
    m.set_watermark(float("-inf"))  # an empty reorder buffer's watermark is ignored
    assert 299 <= sample(reg, "vigiamar_watermark_lag_seconds") <= 310


def test_ids_and_unbounded_values_never_become_labels() -> None:
    reg = CollectorRegistry()
    m = Metrics(registry=reg)
    m.positions_in(MMSI, "vessel")  # an MMSI passed by mistake
    m.positions_in("a1b2c3", "aircraft")  # an ICAO24 address
    m.rejected("bad time: 2020-06-04T10:00 for 367584050")  # free text
    for i in range(MAX_VALUES_PER_LABEL + 20):
        m.rejected(f"reason_{i}")
    values = {v for f in reg.collect() for s in f.samples for v in s.labels.values()}
    assert MMSI not in values and "a1b2c3" not in values
    reasons = {s.labels["reason"] for f in reg.collect() for s in f.samples if "reason" in s.labels}
    assert len(reasons) <= MAX_VALUES_PER_LABEL + 1 and "other" in reasons


def test_replay_counts_a_real_run(settings: Settings) -> None:
    reg = CollectorRegistry()
    metrics = Metrics(registry=reg)
    alerts: list[Alert] = []
    rejects: list[Reject] = []
    report, pipeline = replay([SLICE], settings, on_alert=alerts.append, on_reject=rejects.append, metrics=metrics)

    positions = report.sources.positions
    assert positions == 484
    assert sample(reg, "vigiamar_positions_in_total", source="marinecadastre", type="vessel") == positions
    assert sample(reg, "vigiamar_detector_step_seconds_count", stage="track") == positions
    revisions = sum(
        s.value for f in reg.collect() if f.name == "vigiamar_alerts" for s in f.samples if s.name.endswith("_total")
    )
    assert revisions == len(alerts) > 0
    assert sample(reg, "vigiamar_alert_latency_seconds_count") == len(alerts)
    # Latency is on the data clock: an open loitering alert is published once the reorder
    # buffer (grace 60 s) lets its position through, so within a few minutes of data time.
    assert sample(reg, "vigiamar_alert_latency_seconds_bucket", le="21600.0") == len(alerts)
    assert sample(reg, "vigiamar_watermark_seconds") == pipeline.watermark
    assert sample(reg, "vigiamar_active_tracks") == len(pipeline.engine)
    reasons = {r.reason for r in rejects}
    assert sum(sample(reg, "vigiamar_rejected_total", reason=r) for r in reasons) == len(rejects)


def test_rejects_are_counted_by_reason(tmp_path: Path, settings: Settings) -> None:
    src = tmp_path / "mixed.csv.gz"
    with gzip.open(SLICE, "rt") as fh:
        good = fh.read().splitlines()[:20]
    bad = ["367584050,not-a-time,36.9,-75.4", "367584050,2020-06-04T12:00:00,95.0,-75.4"]
    with gzip.open(src, "wt") as fh:
        fh.write("\n".join([*good, *bad]) + "\n")
    reg = CollectorRegistry()
    got: list[Reject] = []
    replay([src], settings, on_alert=lambda a: None, on_reject=got.append, metrics=Metrics(registry=reg))
    assert got
    for reason in {r.reason for r in got}:
        assert sample(reg, "vigiamar_rejected_total", reason=reason) == sum(r.reason == reason for r in got)


def test_replay_without_metrics_loads_no_metrics_code() -> None:
    code = (
        "import sys; from pathlib import Path; from models.settings import load_settings;"
        "from streams.embedded import replay;"
        f"replay([Path({str(SLICE)!r})], load_settings(), on_alert=lambda a: None, on_reject=lambda r: None);"
        "print('streams.metrics' in sys.modules, 'prometheus_client' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "False"]


def test_serve_answers_prometheus_scrapes() -> None:
    m = Metrics()  # own registry, with process metrics
    m.positions_in("nmea", "vessel", 7)
    server = m.serve(0, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    finally:
        server.close()
    assert 'vigiamar_positions_in_total{source="nmea",type="vessel"} 7.0' in text
    assert "process_cpu_seconds_total" in text and "vigiamar_build_info" in text


def test_replay_command_serves_metrics_while_it_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--metrics-port", "0", "--no-summary", str(SLICE)]) == 0
    assert "/metrics" in capsys.readouterr().err


def test_metrics_section_is_validated(tmp_path: Path) -> None:
    assert metrics_config(load_settings()).port == 9108
    path = tmp_path / "v.toml"
    path.write_text("[metrics]\nport = 70000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"metrics\.port.*allowed range"):
        metrics_config(load_settings(path))
    path.write_text("[metrics]\nprot = 9000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"metrics\.prot.*unknown key"):
        metrics_config(load_settings(path))


def test_cell_count_works_with_any_cell_engine_shape() -> None:
    class Sized:
        def __len__(self) -> int:
            return 3

    class WithMapping:
        cells = {1: "a", 2: "b"}  # noqa: RUF012

    counts = [count_cells(c) for c in (None, Sized(), WithMapping(), object())]
    assert counts == [0, 3, 2, 0]


def test_reference_memos_are_read_at_each_scrape(settings: Settings) -> None:
    from detectors.base import NoGeography
    from models.reference import load_geography

    reg = CollectorRegistry()
    m = Metrics(registry=reg)
    assert "vigiamar_reference_memo_cells" in registered_names(reg)  # declared from the start
    m.watch_reference(NoGeography())  # no reference data configured: nothing to expose
    assert not [s for f in reg.collect() if f.name.startswith("vigiamar_reference") for s in f.samples]

    geo = load_geography(settings)
    m.watch_reference(geo)
    assert sample(reg, "vigiamar_reference_memo_capacity_cells", index="shore") == 65_536
    assert sample(reg, "vigiamar_reference_memo_cells", index="ports") == 0
    geo.distance_to_shore_m(36.9, -75.5)
    geo.distance_to_port_m(36.9, -75.5)
    info = geo.shore.cache_info()
    assert info.misses >= 1
    assert sample(reg, "vigiamar_reference_memo_cells", index="shore") == info.currsize
    assert sample(reg, "vigiamar_reference_memo_lookups_total", index="shore", result="miss") == info.misses
    assert sample(reg, "vigiamar_reference_memo_cells", index="ports") == 1
    geo.distance_to_shore_m(36.9, -75.5)  # the same cell again: answered from memory
    again = geo.shore.cache_info()
    assert again.misses == info.misses and again.hits > info.hits
    assert sample(reg, "vigiamar_reference_memo_lookups_total", index="shore", result="hit") == again.hits

    other = load_geography(settings)  # watching another geography replaces the first
    m.watch_reference(other)
    assert sample(reg, "vigiamar_reference_memo_cells", index="shore") == 0


def test_replay_serves_the_reference_memos(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Metrics] = []
    real = Metrics.watch_reference

    def spy(self: Metrics, geography: object) -> None:
        served.append(self)
        real(self, geography)

    monkeypatch.setattr(Metrics, "watch_reference", spy)
    assert main(["replay", "--metrics-port", "0", "--no-summary", str(SLICE)]) == 0
    assert len(served) == 1
    assert sample(served[0].registry, "vigiamar_reference_memo_lookups_total", index="shore", result="miss") > 0
