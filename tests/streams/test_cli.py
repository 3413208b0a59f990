"""The replay command line: alert records on the contract, clear errors, dead-letter file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from models.alert import validate_alert_wire
from models.settings import DEFAULT_CONFIG
from streams.cli import main
from tests.conftest import REPO, TEST_DATA

SAMPLE = REPO / "data" / "samples" / "virginia_beach_2020-06-04_to_06.csv.gz"
SLICE = TEST_DATA / "vb_367584050_2020-06-04.csv.gz"


def test_console_script_replays_the_bundled_sample_as_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    exe = Path(sys.executable).with_name("vigiamar")
    proc = subprocess.run(
        [str(exe), "replay", "--format", "jsonl", "--out", str(out), str(SAMPLE)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    records = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert records, "the bundled sample yields alerts"
    for rec in records:
        assert validate_alert_wire(rec) == [], rec
    # Every revision is written; the last line of an id is its final state.
    last: dict[str, dict[str, object]] = {}
    for rec in records:
        prev = last.get(rec["id"])
        assert prev is None or rec["revision"] == prev["revision"] + 1  # type: ignore[operator]
        last[rec["id"]] = rec
    assert {r["kind"] for r in last.values()} >= {"loitering"}
    assert "positions/s" in proc.stdout + proc.stderr  # summary goes to stderr with jsonl on --out


def test_table_output_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(SLICE)]) == 0
    text = capsys.readouterr().out
    assert "loitering" in text and "367584050" in text
    assert "positions: 484" in text and "alerts: 2 (loitering 2)" in text


def test_same_input_gives_same_ids(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        assert main(["replay", "--format", "jsonl", "--out", str(out), "--no-summary", str(SLICE)]) == 0
        runs.append(out.read_text())
    assert runs[0] == runs[1] and runs[0]


def test_rejects_file_gets_raw_text_and_reason(tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(
        "MMSI,BaseDateTime,LAT,LON\n"
        "367000001,2020-06-04T10:00:00,36.9,-75.5\n"
        "367000001,2020-06-04T10:00:00,36.9,-75.5\n"  # exact duplicate: dropped in cleaning, dead-lettered
        "367000001,2020-06-04T10:01:00,95.0,-75.5\n"  # latitude out of range
        "garbage line\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    assert main(["replay", "--rejects", str(rejects), "--no-summary", str(src)]) == 0
    entries = [orjson.loads(line) for line in rejects.read_text().splitlines()]
    reasons = sorted(e["reason"] for e in entries)
    assert reasons == ["duplicate", "lat_out_of_range", "wrong_field_count"]
    bad_lat = next(e for e in entries if e["reason"] == "lat_out_of_range")
    assert bad_lat["raw"] == "367000001,2020-06-04T10:01:00,95.0,-75.5" and bad_lat["where"] == "4"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "does-not-exist.csv"], "does-not-exist.csv: no such file"),
        (["replay", "--config", "nope.toml", str(SLICE)], "config file not found"),
    ],
)
def test_unusable_input_exits_2_with_a_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_unknown_format_exits_2_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "mystery.txt"
    src.write_text("hello\nworld\n")
    assert main(["replay", str(src)]) == 2
    err = capsys.readouterr().err
    assert "mystery.txt:1" in err and "--input-format" in err


def test_bad_config_value_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "v.toml"
    cfg.write_text("[detectors.loitering]\nmin_duration_s = 5\n")
    assert main(["replay", "--config", str(cfg), str(SLICE)]) == 2
    assert "detectors.loitering.min_duration_s" in capsys.readouterr().err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    assert "vigiamar replay --format jsonl" in capsys.readouterr().out


def test_config_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 0
    assert ": ok" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "bad_line", "key"),
    [
        ("partitions = 8 ", "partitions = 0 ", "topics.partitions"),
        ("fetch_max_wait_ms = 100 ", "fetch_max_wait_ms = 50000 ", "kafka.fetch_max_wait_ms"),
        ("port = 9108 ", "port = 99999 ", "metrics.port"),
    ],
)
def test_config_check_refuses_what_the_streaming_commands_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, bad_line: str, key: str
) -> None:
    """Not only the detectors: the sections the worker, feed and metrics read are checked too."""
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert text.count(line) == 1
    bad = tmp_path / "vigiamar.toml"
    bad.write_text(text.replace(line, bad_line), encoding="utf-8")
    assert main(["config", "check", str(bad)]) == 2
    assert key in capsys.readouterr().err


def test_config_check_refuses_a_zone_release_label_no_agency_list_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A zone's release label must be one of [routing] release_labels, as the router checks at start."""
    config = tmp_path / "vigiamar.toml"
    config.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "zones").mkdir()
    zone = {"type": "Feature", "properties": {"name": "secret", "role": "watch", "release": "NO-SUCH-LABEL"},
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}  # fmt: skip
    (tmp_path / "zones" / "z.geojson").write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [zone]}))
    assert main(["config", "check", str(config)]) == 2
    assert "NO-SUCH-LABEL" in capsys.readouterr().err
