"""SBS-1 / BaseStation text: the ``MSG,…`` lines dump1090 and readsb serve on port 30003.

Each line has 22 comma-separated fields::

    MSG,type,session,aircraft,hex,flight,date_gen,time_gen,date_log,time_log,
        callsign,altitude,ground_speed,track,lat,lon,vertical_rate,squawk,alert,emergency,spi,on_ground

Transmission types used: 3 (airborne position: altitude, lat, lon) and 2 (surface position:
also ground speed and track) become positions; 4 (airborne velocity: ground speed, track,
vertical rate) and 1 (identification: callsign) are joined to the *later* positions of the
same aircraft (velocity at most ``max_velocity_age_s`` older than the position). Those and
the other types (5–8: altitude, squawk, air-to-air, all-call) are accounted as ignored lines
(reasons ``velocity``, ``ident``, ``msg_5`` …), as are the non-MSG lines (``SEL``, ``ID``,
``AIR``, ``STA``, ``CLK``). A line that is none of these, or is malformed, is rejected with
its reason; nothing raises.

Units are already the record's: altitude in feet, ground speed in knots, vertical rate in
feet per minute; no conversion. Times are the "generated" date and time (``YYYY/MM/DD``,
``HH:MM:SS.sss``), falling back to the "logged" ones, read as UTC (run the receiver in UTC:
dump1090 writes the host's local time). Addresses are the 24-bit ICAO hex, lower case; a
leading ``~`` (TIS-B / non-ICAO address in readsb) is kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from models.errors import DecodeError
from models.position import Position, check_position
from streams.sources.base import DecoderBase, Item

SOURCE = "sbs"
FIELDS = 22
_HEX = frozenset("0123456789abcdef")
_NON_MSG = {"SEL": "sbs_sel", "ID": "sbs_id", "AIR": "sbs_air", "STA": "sbs_sta", "CLK": "sbs_clk"}
_OTHER_TYPES = {"5": "msg_5", "6": "msg_6", "7": "msg_7", "8": "msg_8"}
_PRUNE_EVERY = 50_000  # lines between sweeps of the per-aircraft join state


class _Aircraft:
    __slots__ = ("callsign", "seen", "vel_gs", "vel_track", "vel_ts", "vel_vr")

    def __init__(self) -> None:
        self.callsign: str | None = None
        self.vel_ts = -math.inf
        self.vel_gs: float | None = None
        self.vel_track: float | None = None
        self.vel_vr: float | None = None
        self.seen = -math.inf


class SbsDecoder(DecoderBase):
    format_name = "sbs"

    def __init__(self, source: str, *, max_velocity_age_s: float = 10.0, forget_after_s: float = 600.0) -> None:
        super().__init__(source)
        self.max_velocity_age_s = max_velocity_age_s
        self.forget_after_s = forget_after_s
        self._aircraft: dict[str, _Aircraft] = {}
        self._days: dict[str, float] = {}
        self._latest = -math.inf

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        stats = self.stats
        for lineno, line in enumerate(lines, start=1):
            stats.lines += 1
            text = line.strip()
            if not text:
                self.ignore("blank")
                continue
            fields = text.split(",")
            kind = fields[0]
            if kind != "MSG":
                if kind in _NON_MSG:
                    self.ignore(_NON_MSG[kind])
                else:
                    yield self.reject(lineno, "not_sbs", line)
                continue
            try:
                pos = self._message(fields)
            except DecodeError as exc:
                yield self.reject(lineno, exc.reason, line, exc.detail)
                continue
            if pos is not None:
                yield self.record(pos)
            if lineno % _PRUNE_EVERY == 0:
                self._prune()

    # ------------------------------------------------------------------ one MSG line

    def _message(self, f: list[str]) -> Position | None:
        if len(f) < FIELDS:
            raise DecodeError("wrong_field_count", f"{len(f)} fields, expected {FIELDS}")
        mtype = f[1]
        ident = _hex_ident(f[4])
        if mtype in _OTHER_TYPES:
            self.ignore(_OTHER_TYPES[mtype])
            return None
        if mtype not in ("1", "2", "3", "4"):
            raise DecodeError("bad_transmission_type", mtype)
        ts = self._time(f[6], f[7]) if f[6] and f[7] else self._time(f[8], f[9])
        ac = self._aircraft.get(ident)
        if ac is None:
            ac = self._aircraft[ident] = _Aircraft()
        ac.seen = ts
        if ts > self._latest:
            self._latest = ts
        callsign = f[10].strip()
        if callsign:
            ac.callsign = callsign
        if mtype == "1":
            self.ignore("ident")
            return None
        if mtype == "4":
            ac.vel_ts = ts
            ac.vel_gs = _opt(f[12], "bad_ground_speed")
            trk = _opt(f[13], "bad_track")
            ac.vel_track = trk % 360.0 if trk is not None else None
            ac.vel_vr = _opt(f[16], "bad_vertical_rate")
            self.ignore("velocity")
            return None
        if not f[14] or not f[15]:
            raise DecodeError("no_position", "empty latitude/longitude")
        pos = Position(
            "aircraft",
            ident,
            ts,
            _req(f[14], "bad_lat"),
            _req(f[15], "bad_lon"),
            altitude_ft=_opt(f[11], "bad_altitude"),
            source=SOURCE,
            callsign=ac.callsign,
        )
        if mtype == "2":  # surface position: its own speed and track
            pos.speed_kn = _opt(f[12], "bad_ground_speed")
            trk = _opt(f[13], "bad_track")
            pos.course_deg = trk % 360.0 if trk is not None else None
        elif 0.0 <= ts - ac.vel_ts <= self.max_velocity_age_s:
            pos.speed_kn, pos.course_deg, pos.vertical_rate_fpm = ac.vel_gs, ac.vel_track, ac.vel_vr
        check_position(pos)
        return pos

    def _time(self, day: str, clock: str) -> float:
        base = self._days.get(day)
        if base is None:
            try:
                base = datetime.strptime(day, "%Y/%m/%d").replace(tzinfo=UTC).timestamp()
            except ValueError as exc:
                raise DecodeError("bad_time", f"{day} {clock}") from exc
            if len(self._days) > 1024:
                self._days.clear()
            self._days[day] = base
        parts = clock.split(":")
        try:
            if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
                raise ValueError(clock)
            h, m, s = int(parts[0]), int(parts[1]), float(parts[2])
        except ValueError as exc:
            raise DecodeError("bad_time", f"{day} {clock}") from exc
        if h > 23 or m > 59 or not 0.0 <= s < 61.0:
            raise DecodeError("bad_time", f"{day} {clock}")
        return base + h * 3600 + m * 60 + s

    def _prune(self) -> None:
        """Forget aircraft not heard from for ``forget_after_s`` (bounded memory on live feeds)."""
        horizon = self._latest - self.forget_after_s
        stale = [k for k, ac in self._aircraft.items() if ac.seen < horizon]
        for key in stale:
            del self._aircraft[key]


def _hex_ident(text: str) -> str:
    ident = text.strip().lower()
    body = ident[1:] if ident.startswith("~") else ident
    if len(body) != 6 or not set(body) <= _HEX:
        raise DecodeError("bad_hex_ident", text)
    return ident


def _req(text: str, reason: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise DecodeError(reason, text) from exc
    if not math.isfinite(value):
        raise DecodeError(reason, text)
    return value


def _opt(text: str, reason: str) -> float | None:
    text = text.strip()
    return _req(text, reason) if text else None
