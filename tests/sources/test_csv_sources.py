"""MarineCadastre and aircraft CSV decoders, JSON Lines, format detection: real files and bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.errors import UnknownFormatError
from models.position import Position, Reject, VesselStatic
from streams.sources.aircsv import AircraftCsvDecoder
from streams.sources.jsonl import JsonLinesDecoder
from streams.sources.marinecadastre import MarineCadastreDecoder
from streams.sources.registry import detect_format, open_text
from tests.conftest import read_lines

MC_HEADER = "MMSI,BaseDateTime,LAT,LON,SOG,COG,Heading,VesselName,IMO,CallSign,VesselType,Status,Length\n"


def decode_mc(lines: list[str]) -> tuple[MarineCadastreDecoder, list[Position | VesselStatic | Reject]]:
    dec = MarineCadastreDecoder("test.csv")
    return dec, list(dec.decode(lines))


def test_full_column_harbour_file(shared_data: Path) -> None:
    path = shared_data / "ais" / "nyharbor_2020-06-30_first_hour.csv.gz"
    dec, items = decode_mc(read_lines(path))
    positions = [i for i in items if isinstance(i, Position)]
    statics = [i for i in items if isinstance(i, VesselStatic)]
    assert len(positions) == 8689 and dec.stats.balanced()
    assert len({p.entity_id for p in positions}) == 295
    # COG arrives wrapped as a signed 12-bit value: every course lands in 0..360 after unwrapping.
    assert all(p.course_deg is None or 0 <= p.course_deg < 360 for p in positions)
    # Heading 511 is "not available" (3,606 rows in the README).
    assert sum(p.heading_deg is None for p in positions) == 3606
    # -49.6 is the wrapped "not available" 360.0 (777 rows).
    assert sum(p.course_deg is None for p in positions) >= 777
    assert dec.stats.notes["non_ship_mmsi"] > 0  # MMSI 896876500 starts with 8
    names = {s.mmsi: s.name for s in statics}
    assert names["896876500"] == "MACKENZIE ROSE"
    assert all(s.imo != "IMO0000000" for s in statics)


def test_not_available_values_become_none() -> None:
    lines = [MC_HEADER, "367000001,2020-06-30T00:00:00,40.5,-74.0,102.3,360.0,511.0,,,,,,\n"]
    _, items = decode_mc(lines)
    (pos,) = items
    assert isinstance(pos, Position)
    assert pos.speed_kn is None and pos.course_deg is None and pos.heading_deg is None


def test_wrapped_cog_is_unwrapped() -> None:
    _, items = decode_mc([MC_HEADER, "367000001,2020-06-30T00:00:00,40.5,-74.0,5.0,-60.6,349.0,,,,,,\n"])
    (pos,) = items
    assert isinstance(pos, Position) and pos.course_deg == pytest.approx(349.0)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("367000001,2020-06-30T00:00:00,91.0,-74.0,1,1,1,,,,,,", "lat_out_of_range"),
        ("367000001,2020-06-30T00:00:00,40.0,181.0,1,1,1,,,,,,", "lon_out_of_range"),
        ("367000001,2020-06-30T00:00:00,nan,-74.0,1,1,1,,,,,,", "bad_lat"),
        ("367000001,2020-06-30T00:00:00,40.0,inf,1,1,1,,,,,,", "bad_lon"),
        ("367000001,not a time,40.0,-74.0,1,1,1,,,,,,", "bad_time"),
        ("367000001,2150-01-01T00:00:00,40.0,-74.0,1,1,1,,,,,,", "time_out_of_range"),
        ("367000001,1970-01-01T00:00:00,40.0,-74.0,1,1,1,,,,,,", "time_out_of_range"),
        ("36700000x,2020-06-30T00:00:00,40.0,-74.0,1,1,1,,,,,,", "bad_mmsi"),
        ("367000001,2020-06-30T00:00:00,40.0", "wrong_field_count"),
        ("367000001,2020-06-30T00:00:00,40.0,-74.0,fast,1,1,,,,,,", "bad_sog"),
    ],
)
def test_bad_rows_are_rejected_with_reason_and_raw_text(row: str, reason: str) -> None:
    good = "367000002,2020-06-30T00:00:01,40.0,-74.0,1,1,1,,,,,,\n"
    dec, items = decode_mc([MC_HEADER, row + "\n", good])
    rejects = [i for i in items if isinstance(i, Reject)]
    assert [(r.reason, r.where, r.raw) for r in rejects] == [(reason, "2", row)]
    assert [i.entity_id for i in items if isinstance(i, Position)] == ["367000002"]  # other data kept
    assert dec.stats.balanced()


@pytest.mark.parametrize(
    ("ship_type", "length", "note"),
    [("inf", "30", "bad_static_VesselType"), ("30", "inf", "bad_static_Length"), ("-1", "30", "bad_static_VesselType"),
     ("1e300", "30", "bad_static_VesselType"), ("30", "nan", "bad_static_Length"), ("30", "5000", "bad_static_Length")],
)  # fmt: skip
def test_absurd_static_figures_are_counted_and_left_out(ship_type: str, length: str, note: str) -> None:
    row = f"367000001,2020-06-30T00:00:00,40.5,-74.0,1.0,10.0,10.0,SEA DOG,,WDC1234,{ship_type},0,{length}\n"
    dec, items = decode_mc([MC_HEADER, row])
    (static,) = [i for i in items if isinstance(i, VesselStatic)]
    assert static.name == "SEA DOG" and static.call_sign == "WDC1234"  # the rest of the row is kept
    assert (static.ship_type is None) == (note == "bad_static_VesselType")
    assert (static.length_m is None) == (note == "bad_static_Length")
    assert [i.entity_id for i in items if isinstance(i, Position)] == ["367000001"]
    assert dec.stats.notes[note] == 1 and dec.stats.balanced()


def test_aircraft_csv_real_file(shared_data: Path) -> None:
    path = shared_data / "air" / "tv_relay_orbits_ASR182B_tour_de_france_2020-09-13.csv.gz"
    dec = AircraftCsvDecoder(str(path))
    items = list(dec.decode(read_lines(path)))
    positions = [i for i in items if isinstance(i, Position)]
    rejects = [i for i in items if isinstance(i, Reject)]
    assert len(positions) == 4385 - 18 and len(rejects) == 18  # 18 rows without a position
    assert {r.reason for r in rejects} == {"no_position"}
    assert {p.entity_id for p in positions} == {"3924a4"}
    assert all(p.entity_type == "aircraft" and p.altitude_ft is not None for p in positions[:100])
    assert dec.stats.balanced()


def test_jsonl_round_trip_and_rejects() -> None:
    pos = Position("aircraft", "407918", 1587094850.0, 51.0, 1.2, speed_kn=44.0, altitude_ft=975.0, source="x")
    good = orjson.dumps(pos.to_wire()).decode()
    lines = [good, "{not json", '{"type":"boat","id":"1","time":"2020-01-01T00:00:00Z","lat":1,"lon":1}',
             '{"type":"vessel","id":"1","time":"2020-01-01T00:00:00Z","lat":"x","lon":1}', ""]  # fmt: skip
    dec = JsonLinesDecoder("t.jsonl")
    items = list(dec.decode(lines))
    assert items[0] == pos
    assert [i.reason for i in items[1:] if isinstance(i, Reject)] == ["bad_json", "bad_entity_type", "bad_lat"]
    assert dec.stats.balanced()


@pytest.mark.parametrize(
    ("first", "fmt"),
    [
        ("MMSI,BaseDateTime,LAT,LON\n", "marinecadastre"),
        ("timestamp,icao24,callsign,latitude,longitude,altitude\n", "aircraft_csv"),
        ("!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0*23\n", "nmea"),
        ("\\s:2573535,c:1671620143*0B\\!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0*23\n", "nmea"),
        ('{"type":"vessel","id":"1"}\n', "jsonl"),
    ],
)
def test_format_detection(first: str, fmt: str) -> None:
    assert detect_format([first], "x") == fmt


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(UnknownFormatError, match="unknown input format"):
        detect_format(["hello world\n"], "x.txt")


def test_gzip_is_read_transparently(tmp_path: Path) -> None:
    text = MC_HEADER + "367000001,2020-06-30T00:00:00,40.5,-74.0,1,1,1,,,,,,\n"
    (tmp_path / "a.csv").write_text(text)
    with gzip.open(tmp_path / "b.bin", "wt") as fh:
        fh.write(text)
    for name in ("a.csv", "b.bin"):
        with open_text(tmp_path / name) as fh:
            assert fh.read() == text


FUZZ_VALUES = ["367000001", "2020-06-30T00:00:00", "40.5", "-74.0", "nan", "-inf", "1e400", "", "511", "102.3",
               "-49.6", '"q,uoted"', '"open', "IMO0000000", "\x00", "é"]  # fmt: skip
ROW = st.lists(
    st.one_of(
        st.sampled_from(FUZZ_VALUES),
        st.text(max_size=12),
    ),
    min_size=0,
    max_size=16,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, max_size=30))
def test_fuzzed_csv_never_crashes_and_accounts_every_line(rows: list[list[str]]) -> None:
    lines = [MC_HEADER] + [",".join(r).replace("\n", " ").replace("\r", " ") + "\n" for r in rows]
    dec = MarineCadastreDecoder("fuzz.csv")
    items = list(dec.decode(lines))
    assert all(isinstance(i, Position | VesselStatic | Reject) for i in items)
    assert dec.stats.lines == len(lines) and dec.stats.balanced()
    for pos in (i for i in items if isinstance(i, Position)):
        assert -90 <= pos.lat <= 90 and -180 <= pos.lon <= 180
