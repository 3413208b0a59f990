"""Open an input (plain or gzip), detect or take its format, and pick its decoder."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import orjson

from models.errors import InputError, UnknownFormatError
from streams.sources.aircolumns import OPENSKY_REQUIRED
from streams.sources.aircolumns import REQUIRED as AIRCRAFT_REQUIRED
from streams.sources.aircsv import AircraftCsvDecoder
from streams.sources.airjsonl import AircraftJsonLinesDecoder
from streams.sources.aiscolumns import REQUIRED as AIS_REQUIRED
from streams.sources.aiscolumns import is_ais_header
from streams.sources.base import DecoderBase
from streams.sources.jsonl import JsonLinesDecoder
from streams.sources.marinecadastre import AisCsvDecoder, MarineCadastreDecoder
from streams.sources.remoteid import RemoteIdDecoder
from streams.sources.sbs import SbsDecoder

DecoderFactory = Callable[[str], DecoderBase]


def _nmea_factory(source: str) -> DecoderBase:
    from streams.sources.nmea import NmeaDecoder

    return NmeaDecoder(source)


def _mavlink_factory(source: str) -> DecoderBase:
    from streams.sources.mavlink import MavlinkDecoder  # imports pymavlink: only when used

    return MavlinkDecoder(source)


FORMATS: dict[str, DecoderFactory] = {
    "nmea": _nmea_factory,
    "marinecadastre": MarineCadastreDecoder,
    "ais_csv": AisCsvDecoder,
    "aircraft_csv": AircraftCsvDecoder,
    "aircraft_jsonl": AircraftJsonLinesDecoder,
    "jsonl": JsonLinesDecoder,
    "sbs": SbsDecoder,
    "remoteid": RemoteIdDecoder,
    "mavlink": _mavlink_factory,
}


@contextmanager
def open_text(path: Path) -> Iterator[IO[str]]:
    """Text lines of a file, gunzipped when it starts with the gzip magic bytes."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise InputError(str(path), f"cannot open: {exc.strerror or exc}") from exc
    try:
        magic = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw  # type: ignore[assignment]
        with io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="") as text:
            yield text
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(str(path), f"cannot read: {exc}") from exc
    finally:
        raw.close()


def _is_aircraft_object(text: str) -> bool:
    """A JSON object in the traffic / OpenSky column style (``icao24``, ``latitude``, ``longitude``)."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and {"icao24", "latitude", "longitude"} <= obj.keys()


def detect_format(first_lines: list[str], source: str) -> str:
    """Guess the format from the first non-empty lines."""
    if source.lower().endswith((".tlog", ".tlog.gz")):
        return "mavlink"  # binary: named by its extension, as ground stations write it
    for line in first_lines:
        text = line.strip().lstrip("\ufeff")
        if not text:
            continue
        if text.startswith("#"):
            if is_ais_header(text):
                return "ais_csv"  # the Danish Maritime Authority's header: "# Timestamp,Type of mobile,MMSI,…"
            continue
        if text.startswith("{"):
            if '"current_state"' in text or '"UASID"' in text:
                return "remoteid"
            return "aircraft_jsonl" if _is_aircraft_object(text) else "jsonl"
        if text.startswith("MSG,") or text.split(",", 1)[0] in ("SEL", "ID", "AIR", "STA", "CLK"):
            return "sbs"
        if ("!" in text[:40] and ("VDM," in text or "VDO," in text)) or text.startswith(("!", "\\", "$")):
            return "nmea"
        header = {h.strip() for h in text.split(",")}
        if set(AIS_REQUIRED) <= header:  # MarineCadastre names its columns as aiscolumns does
            return "marinecadastre"
        if set(AIRCRAFT_REQUIRED) <= header or set(OPENSKY_REQUIRED) <= header:
            return "aircraft_csv"  # traffic's columns, or OpenSky's state-vector dumps
        if is_ais_header(text):
            return "ais_csv"
        break
    raise UnknownFormatError(
        source,
        "unknown input format (expected NMEA AIS, AIS CSV with mmsi/time/lat/lon columns, "
        "aircraft CSV or JSON Lines, SBS-1, Remote ID JSON, MAVLink .tlog or JSON Lines); "
        "name it with --input-format",
        1,
    )


def make_decoder(fmt: str, source: str) -> DecoderBase:
    try:
        factory = FORMATS[fmt]
    except KeyError as exc:
        raise UnknownFormatError(source, f"unknown format {fmt!r} (known: {', '.join(FORMATS)})") from exc
    return factory(source)
