"""The HTML alert map: self-contained, right content; rendered in a headless browser where one exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from detectors.registry import detector_configs
from models.alert import Alert, DetectorInfo, EntityRef
from models.settings import Settings
from models.timeutil import parse_iso
from streams.cli import main
from streams.labels import Label
from streams.maps import write_map
from tests.conftest import REPO, TEST_DATA

SLICE = TEST_DATA / "vb_367584050_2020-06-04.csv.gz"
GFW = REPO / "data" / "labels" / "virginia_beach_2020-06-04_to_06_gfw.csv"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")  # the names `make browser` looks for
CHROMIUM = next((Path(p) for p in map(shutil.which, BROWSERS) if p), None)


def t(hhmm: str) -> float:
    return parse_iso(f"2020-06-04T{hhmm}:00Z")


def _alert(kind: str, ids: tuple[str, ...], start: str, end: str, evidence: dict[str, object]) -> Alert:
    return Alert(
        id=f"{kind}-{start}", revision=2, kind=kind, status="closed", start_ts=t(start), end_ts=t(end),
        lat=36.9, lon=-76.0, entities=tuple(EntityRef("vessel", i, "MV </script> & co") for i in ids),
        severity="high", confidence=0.9, detector=DetectorInfo(kind, "1.0", "abc"), evidence=evidence,
    )  # fmt: skip


def _track(lat0: float, start: str, n: int) -> list[tuple[float, float, float]]:
    return [(t(start) + 60 * i, lat0 + 0.001 * i, -76.0 + 0.001 * i) for i in range(n)]


def _data(page: str) -> dict[str, object]:
    blob = re.search(r'<script type="application/json" id="vm-data">(.*?)</script>', page, re.S)
    assert blob is not None
    out: dict[str, object] = orjson.loads(blob.group(1).replace("<\\/", "</"))
    return out


def test_map_is_self_contained_and_carries_every_alert(tmp_path: Path, settings: Settings) -> None:
    alerts = [
        _alert("loitering", ("1",), "10:00", "11:30", {"duration_s": 5400, "median_speed_kn": 0.3}),
        _alert("rendezvous", ("1", "2"), "12:00", "12:40", {"min_distance_m": 40.0, "duration_s": 2400}),
        _alert("zone_entry", ("2",), "13:00", "13:00", {"zone": "watch"}),
    ]
    miss = Label("L9", "loitering", ("2",), t("10:00"), t("10:30"), "seen by an analyst")
    tracks = {"1": _track(36.9, "09:00", 300), "2": _track(36.95, "09:30", 240)}
    out = tmp_path / "map.html"
    configs = detector_configs(settings.detectors)
    summary = write_map(
        out, alerts, tracks, outcomes={alerts[0].id: "match", alerts[1].id: "false_alarm"}, misses=[miss],
        configs=configs, coastline=settings.resolve(settings.reference.coastline),
    )  # fmt: skip
    assert (summary.alerts, summary.misses) == (3, 1)
    page = out.read_text()
    # no network: no external script, stylesheet or image; Leaflet is inlined
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "Leaflet" in page and "L.map(" in page
    data = _data(page)
    assert [a["outcome"] for a in data["alerts"]] == ["match", "false_alarm", "alert"]  # type: ignore[index]
    assert [m["id"] for m in data["misses"]] == ["L9"]  # type: ignore[index]
    assert data["coast"], "the shoreline around the alerts is drawn offline"
    # the evidence popup explains the thresholds, and names are escaped
    popup = data["alerts"][0]["popup"]  # type: ignore[index]
    assert "duration_s" in popup and "min_duration_s" in popup and "3600" in popup
    assert (
        "MV &lt;/script&gt; &amp; co" in popup and "</script> &" not in page.split("vm-data")[1].split("</script>")[0]
    )


def test_replay_writes_a_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "alerts.html"
    assert main(["replay", "--format", "jsonl", "--no-summary", "--map", str(out), str(SLICE)]) == 0
    captured = capsys.readouterr()
    ids = {orjson.loads(line)["id"] for line in captured.out.splitlines()}
    assert f"({len(ids)} alerts)" in captured.err
    data = _data(out.read_text())
    assert {a["id"] for a in data["alerts"]} == ids and not data["backtest"]  # type: ignore[index]
    assert sum(a["kind"] == "loitering" for a in data["alerts"]) == 2  # type: ignore[index]
    assert sum(len(p) for p in data["tracks"]["367584050"]) > 200  # type: ignore[index]


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser on PATH (`make browser` installs chromium as root)")
def test_backtest_map_renders_in_a_headless_browser(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    # the two GFW labels, plus one the detectors cannot match (the vessel is under way then)
    labels.write_text(
        GFW.read_text() + "X1,loitering,367584050,2020-06-04T10:00:00Z,2020-06-04T11:00:00Z,not loitering\n"
    )
    out = tmp_path / "backtest.html"
    assert main(["backtest", "--labels", str(labels), "--map", str(out), str(SLICE)]) == 0
    dom = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", out.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    status = re.search(r'id="vm-status"[^>]*', dom)
    assert status is not None, dom[:500]
    assert 'data-alerts="2"' in status.group(0) and 'data-misses="1"' in status.group(0)
    assert len(re.findall(r'<path class="vm-alert vm-match vm-kind-loitering', dom)) == 2
    assert len(re.findall(r'<path class="vm-miss vm-kind-loitering', dom)) == 1
    assert len(re.findall(r'class="[^"]*vm-track', dom)) >= 1  # the tracks were drawn
    assert "leaflet-container" in dom


def test_docs_screenshot_exists() -> None:
    shot = REPO / "docs" / "workbench-backtest-map.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if shutil.which("file"):
        assert "PNG image" in subprocess.run(["file", str(shot)], capture_output=True, text=True, check=False).stdout
