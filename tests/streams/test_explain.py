"""Explainability: figures beside their thresholds, and the track behind an alert."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import pytest

from detectors.ais_gap import AisGapConfig
from detectors.loitering import LoiteringConfig
from models.alert import Alert, DetectorInfo, EntityRef
from models.configuring import config_hash
from models.errors import InputError
from models.position import FLAG_DERIVED_KINEMATICS, Position
from models.timeutil import parse_iso
from streams.cli import main
from streams.explain import distance_at, explain_lines, find_alert, segments, threshold_checks, unchecked_evidence
from tests.conftest import TEST_DATA

SLICE = TEST_DATA / "vb_367584050_2020-06-04.csv.gz"


def _alert(kind: str, evidence: dict[str, object], ids: tuple[str, ...] = ("1",), cfg_hash: str = "abc") -> Alert:
    return Alert(
        id=f"{kind}-0123456789", revision=1, kind=kind, status="open", start_ts=parse_iso("2020-06-04T10:00:00Z"),
        end_ts=parse_iso("2020-06-04T11:00:00Z"), lat=36.9, lon=-75.5,
        entities=tuple(EntityRef("vessel", i) for i in ids), severity="low", confidence=0.5,
        detector=DetectorInfo(kind, "1", cfg_hash), evidence=evidence,
    )  # fmt: skip


@dataclass(frozen=True)
class PairConfig:  # the shape of a pairwise detector's config
    max_distance_m: float = 500.0
    min_duration_s: float = 900.0
    max_median_speed_kn: float = 2.0
    max_speed_kn: float = 4.0
    zones: tuple[str, ...] = field(default=())


def test_loitering_figures_meet_their_thresholds() -> None:
    ev = {"duration_s": 7200, "min_duration_s": 3600.0, "median_speed_kn": 0.4, "max_speed_kn": 2.0,
          "positions": 80, "distance_to_shore_m": 40000, "distance_to_port_m": 60000}  # fmt: skip
    checks = threshold_checks(_alert("loitering", ev), LoiteringConfig(min_shore_distance_m=1852.0))
    got = [(c.figure, c.op, c.threshold_key, c.threshold, c.source, c.holds) for c in checks]
    assert got == [
        ("duration_s", ">=", "min_duration_s", 3600.0, "evidence", True),
        ("median_speed_kn", "<=", "max_speed_kn", 2.0, "evidence", True),
        ("distance_to_shore_m", ">=", "min_shore_distance_m", 1852.0, "config", True),
        ("distance_to_port_m", ">", "port_exclusion_m", 3000.0, "config", True),
    ]
    assert checks[0].text() == "duration_s = 7200 >= min_duration_s = 3600: yes"


def test_pairwise_figures_pick_the_most_specific_threshold() -> None:
    ev = {"min_distance_m": 42.0, "duration_s": 600, "median_speed_kn": {"1": 0.2, "2": 2.5}}
    checks = {c.figure: c for c in threshold_checks(_alert("rendezvous", ev, ("1", "2")), PairConfig())}
    assert (checks["min_distance_m"].threshold_key, checks["min_distance_m"].holds) == ("max_distance_m", True)
    assert (checks["duration_s"].threshold_key, checks["duration_s"].holds) == ("min_duration_s", False)
    speed = checks["median_speed_kn"]  # per vessel: every value must pass; max_median_speed_kn beats max_speed_kn
    assert (speed.threshold_key, speed.holds) == ("max_median_speed_kn", False)
    assert "not met" in checks["duration_s"].text()


def test_without_a_config_the_evidence_thresholds_are_used() -> None:
    checks = threshold_checks(_alert("ais_gap", {"gap_s": 9000, "min_gap_s": 7200, "reason": "silent"}))
    assert [(c.figure, c.threshold_key, c.holds) for c in checks] == [("gap_s", "min_gap_s", True)]


def test_thresholds_recorded_under_evidence_thresholds_are_used() -> None:
    # Detectors record the values an alert was judged against in evidence["thresholds"]; they
    # win over the current config's, and are not listed as figures.
    ev = {"gap_s": 5000, "distance_to_port_m": 4000, "thresholds": {"min_gap_s": 3600, "port_exclusion_m": 3000}}
    alert = _alert("ais_gap", ev)
    for cfg in (None, AisGapConfig()):  # the config's min_gap_s is 7200 (a zone asked for 3600)
        checks = threshold_checks(alert, cfg)
        got = [(c.figure, c.threshold_key, c.threshold, c.source, c.holds) for c in checks]
        assert got == [
            ("gap_s", "min_gap_s", 3600, "evidence", True),
            ("distance_to_port_m", "port_exclusion_m", 3000, "evidence", True),
        ]
        assert unchecked_evidence(alert, checks) == {}


def test_find_alert_by_id_or_unique_prefix() -> None:
    a, b = _alert("loitering", {}), _alert("ais_gap", {})
    alerts = {a.id: a, b.id: b, "loitering-0199": a}
    assert find_alert(alerts, a.id) is a and find_alert(alerts, "ais") is b
    with pytest.raises(InputError, match="ambiguous alert id prefix: 2 alerts"):
        find_alert(alerts, "loitering-01")
    with pytest.raises(InputError, match=r"no such alert in this input \(3 alerts; kinds: ais_gap, loitering\)"):
        find_alert(alerts, "zone_entry-1")


def _fix(hhmm: str, lat: float, flags: int = 0) -> Position:
    return Position("vessel", "2", parse_iso(f"2020-06-04T{hhmm}:00Z"), lat, -75.5, speed_kn=0.5, flags=flags)


def test_segments_and_distance_to_the_other_vessel() -> None:
    fixes = [_fix("10:00", 36.9), _fix("10:10", 36.9), _fix("11:00", 36.9)]  # 50 min silence: a new segment
    assert [len(s) for s in segments(fixes)] == [2, 1]
    other = [_fix("10:00", 36.901), _fix("10:20", 36.903)]
    me = _fix("10:10", 36.9)
    assert distance_at(other, me) == pytest.approx(222.4, abs=1)  # interpolated to 36.902 at 10:10
    assert distance_at(other, _fix("12:00", 36.9)) is None  # too far in time


def test_explain_lines_for_a_pair() -> None:
    alert = _alert("rendezvous", {"min_distance_m": 40.0}, ("1", "2"))
    fixes = {
        "1": [_fix("10:00", 36.9, FLAG_DERIVED_KINEMATICS), _fix("10:30", 36.9)],
        "2": [_fix("10:00", 36.9004), _fix("10:30", 36.9004)],
    }
    text = "\n".join(explain_lines(alert, fixes, PairConfig(), context_s=600))
    assert "min_distance_m = 40 <= max_distance_m = 500: yes" in text
    assert "thresholds differ from those that made the alert" in text  # the hash is not PairConfig's
    assert "to 2 m" in text and "to 1 m" in text and "0.50*" in text and ">  2020-06-04T10:30:00Z" in text


def test_explain_command_on_a_real_alert(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--format", "jsonl", "--no-summary", str(SLICE)]) == 0
    records = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    alert_id = next(r["id"] for r in records if r["kind"] == "loitering")
    n_alerts = len({r["id"] for r in records})
    assert main(["explain", alert_id[:16], "--input", str(SLICE), "--context-min", "5"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"alert {alert_id}")
    assert "(= the config given)" in text or config_hash(LoiteringConfig()) in text
    assert "duration_s = " in text and ">= min_duration_s = 3600: yes" in text
    assert "median_speed_kn = " in text and "<= max_speed_kn = 2: yes" in text
    inside = [line for line in text.splitlines() if line.startswith("  >  2020-06-04T")]
    assert len(inside) > 50 and "segment 1:" in text
    assert main(["explain", "loitering-nope", "--input", str(SLICE)]) == 2
    assert f"no such alert in this input ({n_alerts} alerts; kinds: " in capsys.readouterr().err
