"""AIS CSV exports other than MarineCadastre's classic one: the Danish Maritime Authority's,
MarineCadastre's 2024 snake case, and a generic mmsi/timestamp/lat/lon file.

Each is written here from the same real slice (tests/data/vb_367584050_2020-06-04.csv.gz, a
vessel ~40 km east of Cape Henry that stops twice) in that export's layout, and must give the
same positions and the same alerts as the original."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.alert import Alert
from models.errors import UnknownFormatError
from models.position import Position, Reject, VesselStatic
from models.settings import Settings
from streams.sources.registry import detect_format, make_decoder
from tests.conftest import TEST_DATA, final_revisions, read_lines, run_pipeline

SLICE = TEST_DATA / "vb_367584050_2020-06-04.csv.gz"

DMA_HEADER = (
    "# Timestamp,Type of mobile,MMSI,Latitude,Longitude,Navigational status,ROT,SOG,COG,Heading,IMO,Callsign,"
    "Name,Ship type,Cargo type,Width,Length,Type of position fixing device,Draught,Destination,ETA,"
    "Data source type,A,B,C,D"
)


def original() -> list[tuple[str, float, float, float]]:
    """(MMSI, time, lat, lon) of the slice as MarineCadastre wrote it."""
    rows = [line.strip().split(",") for line in read_lines(SLICE)[1:] if line.strip()]
    return [
        (r[0], datetime.fromisoformat(r[1]).replace(tzinfo=UTC).timestamp(), float(r[2]), float(r[3])) for r in rows
    ]


def decode(path: Path) -> tuple[str, list[Position], list[VesselStatic], list[Reject], dict[str, int]]:
    lines = read_lines(path)
    fmt = detect_format(lines[:5], str(path))
    decoder = make_decoder(fmt, str(path))
    items = list(decoder.decode(lines))
    positions = [i for i in items if isinstance(i, Position)]
    statics = [i for i in items if isinstance(i, VesselStatic)]
    rejects = [i for i in items if isinstance(i, Reject)]
    assert decoder.stats.balanced()
    return fmt, positions, statics, rejects, dict(decoder.stats.ignored)


def as_tuples(positions: list[Position]) -> list[tuple[str, float, float, float]]:
    return [(p.entity_id, p.ts, p.lat, p.lon) for p in positions]


def dma_file(tmp_path: Path) -> Path:
    lines = [DMA_HEADER]
    for k, (mmsi, ts, lat, lon) in enumerate(original()):
        when = datetime.fromtimestamp(ts, UTC).strftime("%d/%m/%Y %H:%M:%S")
        status = "At anchor" if k % 2 else "Under way using engine"
        lines.append(
            f"{when},Class A,{mmsi},{lat},{lon},{status},0.0,,,,Unknown,WDK1234,SEA TRIAL,Fishing,,6,20,GPS,,,,AIS,,,,"
        )
        if k == 10:  # a base station and an aid to navigation report among the vessels
            lines.append(f"{when},Base Station,2190047,55.7,12.6,Unknown value,,,,,,,,Undefined,,,,GPS,,,,AIS,,,,")
            lines.append(f"{when},AtoN,992191001,55.5,12.4,Unknown value,,,,,,,,Undefined,,,,GPS,,,,AIS,,,,")
    path = tmp_path / "aisdk-2020-06-04.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_danish_maritime_authority_export(tmp_path: Path) -> None:
    fmt, positions, statics, rejects, ignored = decode(dma_file(tmp_path))
    assert fmt == "ais_csv" and rejects == []
    assert as_tuples(positions) == original()
    # status and ship type written as text become their AIS codes
    assert [p.nav_status for p in positions[:4]] == [0, 1, 0, 1]
    assert statics[0].ship_type == 30 and statics[0].name == "SEA TRIAL" and statics[0].imo is None
    assert ignored.get("not_a_vessel") == 2


def test_marinecadastre_2024_snake_case(tmp_path: Path) -> None:
    lines = ["mmsi,base_date_time,longitude,latitude,sog,cog,heading,vessel_name,imo,call_sign,vessel_type,status,"
             "length,width,draft,cargo,transceiver"]  # fmt: skip
    for mmsi, ts, lat, lon in original():
        when = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        lines.append(f"{mmsi},{when},{lon},{lat},0.3,120.0,511,SEA TRIAL,,WDK1234,52,5,20,6,,,A")
    path = tmp_path / "ais-2024-06-04.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fmt, positions, statics, rejects, _ = decode(path)
    assert fmt == "ais_csv" and rejects == []
    assert as_tuples(positions) == original()
    assert positions[0].speed_kn == 0.3 and positions[0].nav_status == 5
    assert statics[0].ship_type == 52


def test_generic_columns_with_epoch_times(tmp_path: Path) -> None:
    lines = ["MMSI,Timestamp,Lat,Lng,Speed,Course"]
    lines += [f"{mmsi},{ts:.0f},{lat},{lon},," for mmsi, ts, lat, lon in original()]
    path = tmp_path / "export.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fmt, positions, _, rejects, _ = decode(path)
    assert fmt == "ais_csv" and rejects == []
    assert as_tuples(positions) == original()


def test_bad_rows_are_rejected_with_their_reason(tmp_path: Path) -> None:
    path = dma_file(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    good = lines[1].split(",")
    lines.insert(2, ",".join(["32/13/2020 10:00:00", *good[1:]]))  # no such day
    lines.insert(3, ",".join([good[0], good[1], good[2], "north", *good[4:]]))
    lines.insert(4, ",".join([*good[:5], "7x", *good[6:]]))  # a status that is no number and no known text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, positions, _, rejects, _ = decode(path)
    assert [r.reason for r in rejects] == ["bad_time", "bad_lat", "bad_status"]
    assert len(positions) == len(original())


def test_unknown_status_text_keeps_the_position(tmp_path: Path) -> None:
    path = dma_file(tmp_path)
    text = path.read_text(encoding="utf-8").replace("Under way using engine", "Reserved for future use")
    path.write_text(text, encoding="utf-8")
    lines = read_lines(path)
    decoder = make_decoder("ais_csv", str(path))
    positions = [p for p in decoder.decode(lines) if isinstance(p, Position)]
    assert len(positions) == len(original())
    assert positions[0].nav_status is None and positions[1].nav_status == 1
    assert decoder.stats.notes["unknown_status"] == (len(positions) + 1) // 2


def test_other_headers_are_not_taken_for_ais() -> None:
    assert detect_format(["timestamp,icao24,latitude,longitude"], "x.csv") == "aircraft_csv"
    assert detect_format(["MMSI,BaseDateTime,LAT,LON"], "x.csv") == "marinecadastre"
    with pytest.raises(UnknownFormatError, match="unknown input format"):
        detect_format(["mmsi,foo,lat,lon"], "x.csv")  # no time column


def test_same_alerts_as_the_original_export(tmp_path: Path, settings: Settings) -> None:
    def alerts(path: Path) -> list[Alert]:
        lines = read_lines(path)
        decoder = make_decoder(detect_format(lines[:5], str(path)), str(path))
        records = [i for i in decoder.decode(lines) if isinstance(i, Position)]
        return final_revisions(run_pipeline(records, settings))

    def key(a: Alert) -> tuple[object, ...]:
        return (a.kind, a.start_ts, a.end_ts, tuple(e.id for e in a.entities))

    # statuses left out (the DMA file above says "at anchor" on every other row)
    path = dma_file(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("At anchor", "Under way using engine"), encoding="utf-8")
    base = alerts(SLICE)
    assert {a.kind for a in base} >= {"loitering"}
    assert [key(a) for a in alerts(path)] == [key(a) for a in base]
