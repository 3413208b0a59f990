"""One aircraft observation in the traffic library / OpenSky column style → :class:`Position`.

Shared by the CSV (:mod:`streams.sources.aircsv`) and JSON Lines (:mod:`streams.sources.airjsonl`)
decoders, so both read the same columns with the same units and the same reject reasons:

``timestamp`` (ISO 8601 text; in JSON also epoch seconds or milliseconds), ``icao24``,
``latitude``, ``longitude``, ``altitude`` (ft), ``groundspeed`` (kn), ``track`` (deg),
``vertical_rate`` (ft/min), ``callsign``. Other columns (``onground``, ``squawk``,
``geoaltitude``, …) are accepted and not used. A missing or empty latitude/longitude is
``no_position`` (OpenSky state vectors without a fix), never guessed.

OpenSky's own state-vector dumps (``time,icao24,lat,lon,velocity,heading,vertrate,callsign,
onground,…,baroaltitude,geoaltitude,…``: epoch seconds, metres, m/s) are read through
:func:`from_opensky`, which names and converts their columns (altitude: barometric, else
geometric).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from models.errors import DecodeError
from models.position import Position, check_position, finite_number
from models.units import FPM_PER_MPS, FT_PER_M, KN_PER_MPS
from streams.sources.csvutil import epoch_seconds, parse_time, req_float

REQUIRED = ("timestamp", "icao24", "latitude", "longitude")
OPENSKY_REQUIRED = ("time", "icao24", "lat", "lon")


def _float(value: object, reason: str) -> float | None:
    """A number from CSV text or a JSON value; empty text and null are ``None``."""
    if type(value) is str:  # the CSV case first: it runs for every column of every row
        return req_float(value, reason) if value else None
    if value is None:
        return None
    return _number(value, reason)


def _number(value: object, reason: str) -> float:
    """A finite number from CSV text or a JSON number."""
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, str):
        return req_float(value, reason)
    return finite_number(value, reason)


def _time(value: object) -> float:
    """Epoch seconds from ISO 8601 text, or from a JSON number of epoch seconds or milliseconds."""
    if isinstance(value, str):
        return parse_time(value)
    seconds = _float(value, "bad_time")
    if seconds is None:
        raise DecodeError("bad_time", "no timestamp")
    return epoch_seconds(seconds)


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def aircraft_position(record: Mapping[str, object], source: str) -> Position:
    """The validated position of one record; raises :class:`DecodeError` with a reason label."""
    ident = _text(record.get("icao24")).lower()
    if not ident:
        raise DecodeError("bad_id", "empty icao24")
    raw_lat, raw_lon = record.get("latitude"), record.get("longitude")
    if raw_lat is None or raw_lon is None or raw_lat == "" or raw_lon == "":
        raise DecodeError("no_position", "empty latitude/longitude")
    ts = _time(record.get("timestamp"))
    pos = Position("aircraft", ident, ts, _number(raw_lat, "bad_lat"), _number(raw_lon, "bad_lon"), source=source)
    pos.altitude_ft = _float(record.get("altitude"), "bad_altitude")
    pos.speed_kn = _float(record.get("groundspeed"), "bad_groundspeed")
    trk = _float(record.get("track"), "bad_track")
    pos.course_deg = trk % 360.0 if trk is not None else None
    pos.vertical_rate_fpm = _float(record.get("vertical_rate"), "bad_vertical_rate")
    callsign = _text(record.get("callsign"))
    if callsign:
        pos.callsign = callsign
    return check_position(pos)


def from_opensky(record: Mapping[str, str]) -> dict[str, object]:
    """An OpenSky state vector (CSV text fields) in the columns and units above."""

    def scaled(name: str, factor: float, reason: str) -> float | None:
        text = record.get(name) or ""
        return req_float(text, reason) * factor if text else None

    altitude = scaled("baroaltitude", FT_PER_M, "bad_altitude")
    return {
        "timestamp": record.get("time"),
        "icao24": record.get("icao24"),
        "latitude": record.get("lat"),
        "longitude": record.get("lon"),
        "altitude": altitude if altitude is not None else scaled("geoaltitude", FT_PER_M, "bad_altitude"),
        "groundspeed": scaled("velocity", KN_PER_MPS, "bad_groundspeed"),
        "track": record.get("heading") or None,
        "vertical_rate": scaled("vertrate", FPM_PER_MPS, "bad_vertical_rate"),
        "callsign": record.get("callsign"),
    }
