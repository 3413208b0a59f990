"""Aircraft JSON Lines (traffic / OpenSky columns): same positions as the CSV form, detection, bad lines."""

from __future__ import annotations

import csv
import dataclasses
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from models.position import Position, Reject
from streams.cli import main
from streams.sources.aircsv import AircraftCsvDecoder
from streams.sources.airjsonl import AircraftJsonLinesDecoder
from streams.sources.registry import detect_format
from tests.conftest import read_lines

ORBITS = "tv_relay_orbits_ASR182B_tour_de_france_2020-09-13.csv.gz"
TEXT_COLUMNS = ("timestamp", "icao24", "callsign")
GOOD = {
    "timestamp": "2020-09-13T10:00:00Z", "icao24": "3924A4", "latitude": 45.7, "longitude": 4.8,
    "altitude": 22000.0, "groundspeed": 176.0, "track": 370.0, "vertical_rate": 0.0, "callsign": "ASR182B",
}  # fmt: skip


def csv_slice(shared_data: Path, rows: int) -> list[str]:
    return read_lines(shared_data / "air" / ORBITS)[: rows + 1]


def _timestamp(text: str, i: int) -> str | float | int:
    """The row's time in each form the decoder accepts, in turn: ISO text, pandas ISO, epoch s, epoch ms."""
    epoch = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    forms: tuple[str | float | int, ...] = (text, text.replace("Z", ".000Z"), epoch, int(epoch) * 1000)
    return forms[i % len(forms)]


def to_json_lines(csv_lines: list[str]) -> list[str]:
    """The CSV rows as ``traffic`` writes records: numbers as numbers, empty as null, extra columns."""
    out = []
    for i, row in enumerate(csv.DictReader(csv_lines)):
        rec: dict[str, object] = {k: (v or None) if k in TEXT_COLUMNS else (float(v) if v else None)
                                  for k, v in row.items()}  # fmt: skip
        rec["timestamp"] = _timestamp(row["timestamp"], i)
        rec.update({"onground": False, "squawk": "7000", "geoaltitude": None})
        out.append(orjson.dumps(rec).decode() + "\n")
    return out


def decode(lines: list[str]) -> tuple[AircraftJsonLinesDecoder, list[Position | Reject]]:
    dec = AircraftJsonLinesDecoder("t.jsonl")
    items = [i for i in dec.decode(lines) if isinstance(i, Position | Reject)]
    return dec, items


def test_same_positions_as_the_csv_decoder_on_a_real_slice(shared_data: Path) -> None:
    lines = csv_slice(shared_data, 300)
    csv_dec = AircraftCsvDecoder("t.csv")
    csv_items = list(csv_dec.decode(lines))
    dec, items = decode(to_json_lines(lines))
    from_csv = [i for i in csv_items if isinstance(i, Position)]
    from_json = [i for i in items if isinstance(i, Position)]
    assert len(from_csv) > 250 and all(p.source == "aircraft_jsonl" for p in from_json)
    assert [dataclasses.replace(p, source="aircraft_csv") for p in from_json] == from_csv
    # The same rows are rejected for the same reason (the first rows have no fix).
    csv_rejects = [(r.reason, str(int(r.where) - 1)) for r in csv_items if isinstance(r, Reject)]  # minus header
    assert [(r.reason, r.where) for r in items if isinstance(r, Reject)] == csv_rejects
    assert {r.reason for r in items if isinstance(r, Reject)} == {"no_position"}
    assert dec.stats.lines == 300 and dec.stats.positions == len(from_json) and dec.stats.balanced()


def test_values_are_converted_like_the_csv_columns() -> None:
    _, items = decode([orjson.dumps(GOOD).decode(), orjson.dumps({**GOOD, "timestamp": 1599991200123}).decode()])
    first, second = items
    assert isinstance(first, Position) and isinstance(second, Position)
    assert (first.entity_type, first.entity_id, first.ts) == ("aircraft", "3924a4", 1599991200.0)
    assert (first.altitude_ft, first.speed_kn, first.course_deg, first.callsign) == (22000.0, 176.0, 10.0, "ASR182B")
    assert second.ts == pytest.approx(1599991200.123)  # epoch milliseconds


def test_onground_is_accepted_and_not_used_as_in_the_csv_form() -> None:
    lines = [orjson.dumps({**GOOD, key: value}).decode() for key, value in
             (("onground", True), ("on_ground", True), ("onground", None), ("squawk", None))]  # fmt: skip
    dec, items = decode(lines)
    _, (plain,) = decode([orjson.dumps(GOOD).decode()])
    assert items == [plain] * 4 and dec.stats.balanced()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"timestamp": "2020-09-13T10:00:00Z", "icao24": "3924a4", "latitude": 45.7', "bad_json"),
        ("[1, 2]", "not_an_object"),
        (orjson.dumps({k: v for k, v in GOOD.items() if k != "latitude"}).decode(), "no_position"),
        (orjson.dumps({**GOOD, "latitude": None}).decode(), "no_position"),
        (orjson.dumps({**GOOD, "timestamp": "13/13/2020 10:00"}).decode(), "bad_time"),
        (orjson.dumps({**GOOD, "timestamp": None}).decode(), "bad_time"),
        (orjson.dumps({**GOOD, "altitude": "abc"}).decode(), "bad_altitude"),
        (orjson.dumps({**GOOD, "latitude": "north"}).decode(), "bad_lat"),
        (orjson.dumps({**GOOD, "longitude": True}).decode(), "bad_lon"),
        (orjson.dumps({**GOOD, "latitude": 91.0}).decode(), "lat_out_of_range"),
        (orjson.dumps({**GOOD, "icao24": ""}).decode(), "bad_id"),
    ],
)
def test_bad_lines_are_rejected_with_reason_and_raw_text(line: str, reason: str) -> None:
    good = orjson.dumps(GOOD).decode() + "\n"
    dec, items = decode([good, line + "\n", "\n", good])
    rejects = [i for i in items if isinstance(i, Reject)]
    assert [(r.reason, r.where, r.raw) for r in rejects] == [(reason, "2", line)]
    assert [i.entity_id for i in items if isinstance(i, Position)] == ["3924a4", "3924a4"]  # other lines kept
    assert dec.stats.lines == 4 and dec.stats.ignored_lines == 1 and dec.stats.balanced()


def test_csv_gives_the_same_reason_for_the_same_bad_value() -> None:
    rows = ["timestamp,icao24,latitude,longitude,altitude\n",
            "2020-09-13T10:00:00Z,3924a4,45.7,4.8,abc\n", "2020-09-13T10:00:00Z,3924a4,,4.8,1\n"]  # fmt: skip
    items = list(AircraftCsvDecoder("t.csv").decode(rows))
    assert [i.reason for i in items if isinstance(i, Reject)] == ["bad_altitude", "no_position"]


@pytest.mark.parametrize(
    ("first", "fmt"),
    [
        (orjson.dumps(GOOD).decode(), "aircraft_jsonl"),
        ('{"icao24": "3924a4", "latitude": null, "longitude": null, "timestamp": 1599991200}', "aircraft_jsonl"),
        ('{"type":"aircraft","id":"3924a4","time":"2020-09-13T10:00:00Z","lat":45.7,"lon":4.8}', "jsonl"),
        ('{"icao24": "3924a4", "lat": 45.7, "lon": 4.8}', "jsonl"),
        ('{"time": "2023-05-01T10:00:00Z", "UASID": "1596F3518A7D6A2BC55B", "Latitude": 50.9}', "remoteid"),
        ('{"id": "x", "current_state": {"position": {"lat": 50.9, "lng": 1.2}}}', "remoteid"),
        ('{"icao24": "3924a4", "latitude": 45.7, "longitude"', "jsonl"),  # broken JSON: left to the wire decoder
    ],
)
def test_format_detection(first: str, fmt: str) -> None:
    assert detect_format(["\n", first + "\n"], "x.jsonl") == fmt


def _replay(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[list[bytes], str]:
    out = tmp_path / f"{path.name}.alerts.jsonl"
    assert main(["replay", "--format", "jsonl", "--out", str(out), str(path)]) == 0
    captured = capsys.readouterr()
    return out.read_bytes().splitlines(), captured.out + captured.err


def test_replay_gives_the_same_alerts_as_the_csv(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = csv_slice(shared_data, 600)  # long enough for one complete orbit
    (tmp_path / "orbits.csv").write_text("".join(lines))
    (tmp_path / "orbits.jsonl").write_text("".join(to_json_lines(lines)))
    csv_alerts, csv_summary = _replay(tmp_path / "orbits.csv", tmp_path, capsys)
    json_alerts, json_summary = _replay(tmp_path / "orbits.jsonl", tmp_path, capsys)
    assert csv_alerts and json_alerts == csv_alerts
    assert {orjson.loads(a)["kind"] for a in json_alerts} == {"air_orbit"}
    assert "(aircraft_jsonl)" in json_summary and "(aircraft_csv)" in csv_summary
    for summary in (csv_summary, json_summary):
        assert "positions: 582" in summary and "rejected: 18 (no_position 18)" in summary
