"""Position records for vessels and aircraft, and the records that travel beside them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from models.errors import DecodeError
from models.timeutil import parse_iso, to_datetime, to_iso

EntityType = Literal["vessel", "aircraft"]
ENTITY_TYPES: Final[tuple[EntityType, ...]] = ("vessel", "aircraft")

# Bits of Position.flags, set by sources and the track cleaner.
FLAG_DERIVED_KINEMATICS: Final = 1  # speed/course computed from positions, not reported
FLAG_IMPLAUSIBLE: Final = 2  # implied speed from the track's last good fix exceeds the limit
FLAG_NEW_SEGMENT: Final = 4  # first fix of a track, or first after a re-anchor of the track

# Wire field names (JSON Lines and Kafka values): short, stable, documented in README.
_OPTIONAL_FLOATS: Final = ("speed_kn", "course_deg", "heading_deg", "altitude_ft", "vertical_rate_fpm")


# init=False: a written __init__ is compiled, a generated one runs interpreted (test_written_init.py)
@dataclass(slots=True, init=False)
class Position:
    """One observed position of a vessel or an aircraft, at an event time.

    ``ts`` is the event time in seconds since the Unix epoch, UTC; :attr:`time` gives it as
    an aware datetime. Values the sender marks as "not available" are ``None``, never numbers.
    """

    entity_type: EntityType
    entity_id: str
    ts: float
    lat: float
    lon: float
    speed_kn: float | None = None
    course_deg: float | None = None
    heading_deg: float | None = None
    altitude_ft: float | None = None
    vertical_rate_fpm: float | None = None
    nav_status: int | None = None
    source: str = ""
    callsign: str | None = None
    flags: int = 0
    implied_speed_kn: float | None = None

    def __init__(
        self,
        entity_type: EntityType,
        entity_id: str,
        ts: float,
        lat: float,
        lon: float,
        speed_kn: float | None = None,
        course_deg: float | None = None,
        heading_deg: float | None = None,
        altitude_ft: float | None = None,
        vertical_rate_fpm: float | None = None,
        nav_status: int | None = None,
        source: str = "",
        callsign: str | None = None,
        flags: int = 0,
        implied_speed_kn: float | None = None,
    ) -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        self.ts = ts
        self.lat = lat
        self.lon = lon
        self.speed_kn = speed_kn
        self.course_deg = course_deg
        self.heading_deg = heading_deg
        self.altitude_ft = altitude_ft
        self.vertical_rate_fpm = vertical_rate_fpm
        self.nav_status = nav_status
        self.source = source
        self.callsign = callsign
        self.flags = flags
        self.implied_speed_kn = implied_speed_kn

    @property
    def time(self) -> datetime:
        return to_datetime(self.ts)

    @property
    def implausible(self) -> bool:
        return bool(self.flags & FLAG_IMPLAUSIBLE)

    def to_wire(self) -> dict[str, Any]:
        """The JSON form: vigiamar's own JSON Lines and the Kafka value of position topics."""
        out: dict[str, Any] = {
            "type": self.entity_type,
            "id": self.entity_id,
            "time": to_iso(self.ts),
            "lat": self.lat,
            "lon": self.lon,
        }
        for name in _OPTIONAL_FLOATS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.nav_status is not None:
            out["nav_status"] = self.nav_status
        if self.callsign:
            out["callsign"] = self.callsign
        if self.source:
            out["source"] = self.source
        return out

    @classmethod
    def from_wire(cls, obj: Any) -> Position:
        """Validate one decoded JSON object. Raises :class:`DecodeError` with a reason label.

        The worker runs this for every position it reads: plain ``dict.get`` and type tests,
        each field checked once, the optional ones straight into the constructor.
        """
        if not isinstance(obj, dict):
            raise DecodeError("not_an_object", type(obj).__name__)
        etype = obj.get("type")
        if etype not in ENTITY_TYPES:
            raise DecodeError("bad_entity_type", repr(etype))
        ident = obj.get("id")
        if isinstance(ident, str):
            entity_id = ident.strip()
        elif isinstance(ident, int) and not isinstance(ident, bool):
            entity_id = str(ident)
        else:
            raise DecodeError("bad_id", repr(ident))
        if not entity_id:
            raise DecodeError("bad_id", repr(ident))
        when = obj.get("time")
        if isinstance(when, str):
            try:
                ts = parse_iso(when)
            except ValueError as exc:
                raise DecodeError("bad_time", when) from exc
        else:
            ts = finite_number(when, "bad_time")
        status = obj.get("nav_status")
        callsign = obj.get("callsign")
        pos = Position(
            entity_type=etype,
            entity_id=entity_id,
            ts=ts,
            lat=finite_number(obj.get("lat"), "bad_lat"),
            lon=finite_number(obj.get("lon"), "bad_lon"),
            speed_kn=_optional_number(obj, "speed_kn"),
            course_deg=_optional_number(obj, "course_deg"),
            heading_deg=_optional_number(obj, "heading_deg"),
            altitude_ft=_optional_number(obj, "altitude_ft"),
            vertical_rate_fpm=_optional_number(obj, "vertical_rate_fpm"),
            nav_status=None if status is None else int(finite_number(status, "bad_nav_status")),
            source=str(obj.get("source") or "jsonl"),
            callsign=callsign.strip() if isinstance(callsign, str) and callsign.strip() else None,
        )
        check_position(pos)
        return pos


def _optional_number(obj: dict[str, Any], name: str) -> float | None:
    """``obj[name]`` as a finite float, None when absent or null; the reason is ``bad_<name>``."""
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is float and math.isfinite(value):
        return value
    return finite_number(value, "bad_" + name)


def finite_number(value: Any, reason: str) -> float:
    """A JSON number as a finite float; anything else (booleans, text, inf, nan) raises DecodeError."""
    if type(value) is float:  # the common case: no conversion
        out = value
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DecodeError(reason, repr(value))
    else:
        out = float(value)
    if not math.isfinite(out):
        raise DecodeError(reason, repr(value))
    return out


# Event times outside this window are rejected as implausible (1990-01-01 .. 2100-01-01).
MIN_EVENT_TS: Final = 631152000.0
MAX_EVENT_TS: Final = 4102444800.0


def check_position(pos: Position) -> Position:
    """Validate ranges shared by every source; raise :class:`DecodeError` with a reason label."""
    if not (MIN_EVENT_TS <= pos.ts <= MAX_EVENT_TS):
        raise DecodeError("time_out_of_range", str(pos.ts))
    if not (-90.0 <= pos.lat <= 90.0):
        raise DecodeError("lat_out_of_range", str(pos.lat))
    if not (-180.0 <= pos.lon <= 180.0):
        raise DecodeError("lon_out_of_range", str(pos.lon))
    return pos


@dataclass(slots=True)
class VesselStatic:
    """Static and voyage data of a vessel (AIS types 5 and 24, or CSV export columns)."""

    mmsi: str
    ts: float
    name: str | None = None
    call_sign: str | None = None
    imo: str | None = None
    ship_type: int | None = None
    length_m: float | None = None
    width_m: float | None = None
    source: str = ""

    def merge(self, newer: VesselStatic) -> VesselStatic:
        """Newer non-empty values win (type 24 arrives in two halves)."""
        return VesselStatic(
            mmsi=self.mmsi,
            ts=max(self.ts, newer.ts),
            name=newer.name or self.name,
            call_sign=newer.call_sign or self.call_sign,
            imo=newer.imo or self.imo,
            ship_type=newer.ship_type if newer.ship_type is not None else self.ship_type,
            length_m=newer.length_m if newer.length_m is not None else self.length_m,
            width_m=newer.width_m if newer.width_m is not None else self.width_m,
            source=newer.source or self.source,
        )


@dataclass(slots=True, frozen=True)
class Reject:
    """A piece of input that did not become a record: the embedded dead-letter entry."""

    source: str  # file name or topic
    where: str  # line number, or partition/offset
    reason: str  # short stable label, used as a counter label
    raw: str  # the raw text (or bytes shown as text)
    detail: str = ""

    def to_wire(self) -> dict[str, str]:
        out = {"source": self.source, "where": self.where, "reason": self.reason, "raw": self.raw}
        if self.detail:
            out["detail"] = self.detail
        return out
