"""Drone Remote ID (ASTM F3411) as JSON Lines: one observation of one unmanned aircraft a line.

Two shapes are accepted, told apart per line:

* **Network Remote ID** (F3411 NetRID API, the ``RIDFlight`` object a display provider serves,
  optionally with its ``RIDFlightDetails`` under ``details``)::

      {"id": "…", "current_state": {"timestamp": {"value": "2023-05-01T10:00:00Z"},
        "position": {"lat": 50.9, "lng": 1.2, "alt": 120.5}, "track": 90.0, "speed": 5.2,
        "vertical_speed": 0.5},
       "details": {"uas_id": {"serial_number": "1596F3518A7D6A2BC55B"},
                   "operator_location": {"lat": 50.89, "lng": 1.19}}}

* **Broadcast Remote ID** as a receiver logs it: the fields of the Basic ID, Location/Vector
  and System messages merged into one object, named as in the reference implementation
  (opendroneid-core-c), plus the receiver's absolute reception ``time``::

      {"time": "2023-05-01T10:00:00Z", "UASID": "1596F3518A7D6A2BC55B", "Latitude": 50.9,
       "Longitude": 1.2, "AltitudeGeo": 120.5, "AltitudeBaro": 118.0, "SpeedHorizontal": 5.2,
       "SpeedVertical": 0.5, "Direction": 90.0, "OperatorLatitude": 50.89,
       "OperatorLongitude": 1.19}

The id is the serial number (ANSI/CTA-2063), else the registration, else the flight id.
Units are converted once, here: metres → feet (:func:`models.units.m_to_ft`), m/s → knots
(:func:`models.units.mps_to_kn`), vertical m/s → ft/min (:func:`models.units.mps_to_fpm`).
F3411's "unknown" encodings become ``None``: direction 361, speed 255 m/s, vertical speed
63 m/s, altitude −1000 m. A position of exactly 0, 0 is F3411's "no position" and rejected.
The operator (remote pilot) position is validated and counted (``notes["operator_position"]``)
but not carried: the position record has no field for it yet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from models.errors import DecodeError
from models.position import Position, check_position
from models.timeutil import parse_iso
from models.units import m_to_ft, mps_to_fpm, mps_to_kn
from streams.sources.base import DecoderBase, Item

SOURCE = "remoteid"
UNKNOWN_DIRECTION = 361.0
UNKNOWN_SPEED_MPS = 255.0
UNKNOWN_VSPEED_MPS = 63.0
UNKNOWN_ALTITUDE_M = -1000.0


class RemoteIdDecoder(DecoderBase):
    format_name = "remoteid"

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        return self.json_lines(lines, self._record)

    def _record(self, obj: object) -> Position:
        if not isinstance(obj, dict):
            raise DecodeError("not_an_object", type(obj).__name__)
        pos = self._netrid(obj) if "current_state" in obj else self._broadcast(obj)
        check_position(pos)
        return pos

    # ------------------------------------------------------------------ shapes

    def _netrid(self, obj: dict[str, Any]) -> Position:
        state = _dict(obj.get("current_state"), "bad_current_state")
        details = obj.get("details")
        details = details if isinstance(details, dict) else {}
        uas = details.get("uas_id")
        uas = uas if isinstance(uas, dict) else {}
        ident = _ident(uas.get("serial_number"), uas.get("registration_id"), details.get("id"), obj.get("id"))
        stamp = state.get("timestamp")
        ts = _time(stamp.get("value") if isinstance(stamp, dict) else stamp)
        where = _dict(state.get("position"), "no_position")
        pos = self._position(ident, ts, where.get("lat"), where.get("lng"))
        pos.altitude_ft = _altitude(where.get("alt"))
        if pos.altitude_ft is None:
            pos.altitude_ft = _altitude(where.get("pressure_altitude"))
        pos.course_deg = _direction(state.get("track"))
        speed = _speed(state.get("speed"), UNKNOWN_SPEED_MPS, "bad_speed")
        pos.speed_kn = mps_to_kn(speed) if speed is not None else None
        vspeed = _speed(state.get("vertical_speed"), UNKNOWN_VSPEED_MPS, "bad_vertical_speed", signed=True)
        pos.vertical_rate_fpm = mps_to_fpm(vspeed) if vspeed is not None else None
        op = details.get("operator_location")
        if isinstance(op, dict):
            inner = op.get("position")  # F3411-22a nests it; F3411-19 does not
            op = inner if isinstance(inner, dict) else op
            self._operator(op.get("lat"), op.get("lng"))
        return pos

    def _broadcast(self, obj: dict[str, Any]) -> Position:
        ident = _ident(obj.get("UASID"), obj.get("SerialNumber"), obj.get("RegistrationID"))
        ts = _time(obj.get("time"))
        pos = self._position(ident, ts, obj.get("Latitude"), obj.get("Longitude"))
        pos.altitude_ft = _altitude(obj.get("AltitudeGeo"))
        if pos.altitude_ft is None:
            pos.altitude_ft = _altitude(obj.get("AltitudeBaro"))
        pos.course_deg = _direction(obj.get("Direction"))
        speed = _speed(obj.get("SpeedHorizontal"), UNKNOWN_SPEED_MPS, "bad_speed")
        pos.speed_kn = mps_to_kn(speed) if speed is not None else None
        vspeed = _speed(obj.get("SpeedVertical"), UNKNOWN_VSPEED_MPS, "bad_vertical_speed", signed=True)
        pos.vertical_rate_fpm = mps_to_fpm(vspeed) if vspeed is not None else None
        self._operator(obj.get("OperatorLatitude"), obj.get("OperatorLongitude"))
        return pos

    # ------------------------------------------------------------------ fields

    def _position(self, ident: str, ts: float, lat: Any, lon: Any) -> Position:
        if lat is None or lon is None:
            raise DecodeError("no_position", "latitude/longitude missing")
        la = _number(lat, "bad_lat")
        lo = _number(lon, "bad_lon")
        if la == 0.0 and lo == 0.0:
            raise DecodeError("no_position", "0, 0 is F3411's 'no position'")
        return Position("aircraft", ident, ts, la, lo, source=SOURCE)

    def _operator(self, lat: Any, lon: Any) -> None:
        if lat is None and lon is None:
            return
        try:
            la = _number(lat, "bad_operator_position")
            lo = _number(lon, "bad_operator_position")
        except DecodeError:
            self.stats.notes["bad_operator_position"] += 1
            return
        if -90.0 <= la <= 90.0 and -180.0 <= lo <= 180.0 and (la, lo) != (0.0, 0.0):
            self.stats.notes["operator_position"] += 1
        else:
            self.stats.notes["bad_operator_position"] += 1


def _dict(value: Any, reason: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError(reason, repr(value)[:80])
    return value


def _ident(*candidates: Any) -> str:
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    raise DecodeError("bad_id", "no serial number, registration or flight id")


def _number(value: Any, reason: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(reason, repr(value)[:80])
    out = float(value)
    if not math.isfinite(out):
        raise DecodeError(reason, repr(value))
    return out


def _time(value: Any) -> float:
    """ISO 8601 / RFC 3339 text, or epoch seconds (milliseconds when above 1e11)."""
    if isinstance(value, str):
        try:
            return parse_iso(value)
        except (ValueError, OverflowError) as exc:
            raise DecodeError("bad_time", value) from exc
    if value is None:
        raise DecodeError("no_time", "no absolute timestamp")
    ts = _number(value, "bad_time")
    return ts / 1000.0 if ts > 1e11 else ts


def _altitude(value: Any) -> float | None:
    if value is None:
        return None
    metres = _number(value, "bad_altitude")
    if metres <= UNKNOWN_ALTITUDE_M:
        return None
    return m_to_ft(metres)


def _direction(value: Any) -> float | None:
    if value is None:
        return None
    deg = _number(value, "bad_track")
    if deg >= UNKNOWN_DIRECTION or deg < 0.0:
        return None
    return deg % 360.0


def _speed(value: Any, unknown: float, reason: str, *, signed: bool = False) -> float | None:
    if value is None:
        return None
    mps = _number(value, reason)
    if abs(mps) >= unknown:
        return None
    if mps < 0.0 and not signed:
        raise DecodeError(reason, repr(value))
    return mps
