"""AIS CSV: MarineCadastre's (``MMSI,BaseDateTime,LAT,LON[,SOG,COG,Heading,VesselName,…]``),
and any other export whose columns :mod:`streams.sources.aiscolumns` recognises by name
(MarineCadastre from 2024, the Danish Maritime Authority's, generic ``mmsi,timestamp,lat,lon``).

Quirks handled (see the shared data README): COG exported as a signed 12-bit value
(−204.8…204.7; add 409.6 to a negative value), ``-49.6`` and 360 meaning "not available",
Heading 511, SOG 102.3, placeholder IMOs (``IMO0000000``), zero lengths. Files with only
MMSI, time and position are fine: the track cleaner derives speed and course.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from models.errors import DecodeError, UnknownFormatError
from models.position import MAX_EVENT_TS, MIN_EVENT_TS, Position, VesselStatic, check_position
from streams.sources import aiscolumns
from streams.sources.aiscolumns import REQUIRED
from streams.sources.base import DecoderBase, Item, is_ship_mmsi
from streams.sources.csvutil import opt_float, parse_time, req_float, split_row

COG_WRAP = 409.6
STATIC_COLUMNS = ("VesselName", "IMO", "CallSign", "VesselType", "Length", "Width")
# AIS ship and cargo type is 0-99 (ITU-R M.1371, message 5); dimensions are 9 bits each way
# from the reference point (<= 511 m + 511 m long, 63 m + 63 m wide).
MAX_SHIP_TYPE = 99.0
MAX_LENGTH_M = 1022.0
MAX_WIDTH_M = 126.0


def norm_cog(value: float | None) -> float | None:
    if value is None:
        return None
    if value < 0:
        value += COG_WRAP
    if value < 0 or value >= 360.0:
        return None  # 360 (and the wrapped −49.6) = not available
    return value


def norm_heading(value: float | None) -> float | None:
    if value is None or value >= 360.0 or value < 0:
        return None  # 511 = not available
    return value


def norm_sog(value: float | None) -> float | None:
    if value is None or value >= 102.25 or value < 0:
        return None  # 102.3 = not available
    return value


def _checked_mmsi(raw: str, cache: dict[str, str]) -> str:
    """The MMSI text of a raw field (remembered in ``cache``), or :class:`DecodeError` ``bad_mmsi``."""
    text = raw.strip()
    if not text.isdigit() or len(text) > 9:
        raise DecodeError("bad_mmsi", text)
    cache[raw] = text
    return text


class MarineCadastreDecoder(DecoderBase):
    format_name = "marinecadastre"

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        it = iter(lines)
        header_line = next(it, None)
        if header_line is None:
            return
        self.stats.lines += 1
        self.ignore("header")
        header = [h.strip().lstrip("\ufeff") for h in split_row(header_line)]
        col = aiscolumns.resolve(header)
        missing = [c for c in REQUIRED if c not in col]
        if missing:
            raise UnknownFormatError(self.source, f"AIS CSV lacks columns {', '.join(missing)}", 1)
        i_mmsi, i_time, i_lat, i_lon = (col[c] for c in REQUIRED)
        i_sog, i_cog, i_hdg, i_status = (col.get(c) for c in ("SOG", "COG", "Heading", "Status"))
        i_mobile = col.get("TypeOfMobile")
        static_cols: dict[str, int] = {c: col[c] for c in STATIC_COLUMNS if c in col}
        source = self.format_name
        width = len(header)
        last_static: dict[str, tuple[str, ...]] = {}
        lineno = 1
        stats = self.stats
        # Per-file caches of what every row of a vessel repeats: the checked MMSI text for
        # the raw field, and whether it is a ship station.
        mmsis: dict[str, str] = {}
        ships: dict[str, bool] = {}
        for line in it:
            text = line.rstrip("\r\n")
            row = (text.split(",") if text else []) if '"' not in text else split_row(line)  # split_row, inlined
            lineno += 1
            stats.lines += 1
            if not row:
                self.ignore("blank")
                continue
            if len(row) != width:
                yield self.reject(lineno, "wrong_field_count", line, f"{len(row)} fields, expected {width}")
                continue
            if i_mobile is not None and row[i_mobile].strip().lower() in aiscolumns.NOT_VESSELS:
                self.ignore("not_a_vessel")  # a base station or an aid to navigation
                continue
            try:
                # The common case, checked in the order of the plain path below; a row whose
                # time or position is out of range takes the plain path, which raises the
                # reasoned error the same way for every row.
                raw_mmsi = row[i_mmsi]
                mmsi_text = mmsis.get(raw_mmsi) or _checked_mmsi(raw_mmsi, mmsis)
                ts = parse_time(row[i_time])
                try:
                    lat = float(row[i_lat])
                    lon = float(row[i_lon])
                except ValueError:
                    lat, lon = req_float(row[i_lat], "bad_lat"), req_float(row[i_lon], "bad_lon")
                if MIN_EVENT_TS <= ts <= MAX_EVENT_TS and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
                    pos = Position(
                        "vessel",
                        mmsi_text,
                        ts,
                        lat,
                        lon,
                        None if i_sog is None else norm_sog(opt_float(row[i_sog], "bad_sog")),
                        None if i_cog is None else norm_cog(opt_float(row[i_cog], "bad_cog")),
                        None if i_hdg is None else norm_heading(opt_float(row[i_hdg], "bad_heading")),
                    )
                    if i_status is not None and row[i_status]:
                        pos.nav_status = aiscolumns.nav_status(row[i_status])
                else:
                    pos = self._plain_position(row, i_mmsi, i_time, i_lat, i_lon, i_sog, i_cog, i_hdg, i_status)
            except DecodeError as exc:
                yield self.reject(lineno, exc.reason, line, exc.detail)
                continue
            pos.source = source
            if pos.nav_status is None and i_status is not None and row[i_status]:
                stats.notes["unknown_status"] += 1  # text no export uses: left out
            ship = ships.get(mmsi_text)
            if ship is None:
                ship = ships[mmsi_text] = is_ship_mmsi(int(mmsi_text))
            if not ship:
                stats.notes["non_ship_mmsi"] += 1
            if static_cols:
                sig = tuple(row[i] for i in static_cols.values())
                if last_static.get(mmsi_text) != sig:
                    last_static[mmsi_text] = sig
                    static = self._static(mmsi_text, pos.ts, row, static_cols)
                    if static is not None:
                        stats.statics += 1  # carried on this row beside its position
                        yield static
            stats.record_lines += 1
            stats.positions += 1
            yield pos

    @staticmethod
    def _plain_position(
        row: list[str],
        i_mmsi: int,
        i_time: int,
        i_lat: int,
        i_lon: int,
        i_sog: int | None,
        i_cog: int | None,
        i_hdg: int | None,
        i_status: int | None,
    ) -> Position:
        """One row, every field checked in turn: the reference for the fast path in :meth:`decode`."""
        mmsi_text = row[i_mmsi].strip()
        if not mmsi_text.isdigit() or len(mmsi_text) > 9:
            raise DecodeError("bad_mmsi", mmsi_text)
        pos = Position(
            "vessel",
            mmsi_text,
            parse_time(row[i_time]),
            req_float(row[i_lat], "bad_lat"),
            req_float(row[i_lon], "bad_lon"),
            source="marinecadastre",
        )
        if i_sog is not None:
            pos.speed_kn = norm_sog(opt_float(row[i_sog], "bad_sog"))
        if i_cog is not None:
            pos.course_deg = norm_cog(opt_float(row[i_cog], "bad_cog"))
        if i_hdg is not None:
            pos.heading_deg = norm_heading(opt_float(row[i_hdg], "bad_heading"))
        if i_status is not None and row[i_status]:
            pos.nav_status = aiscolumns.nav_status(row[i_status])
        return check_position(pos)

    def _static(self, mmsi: str, ts: float, row: list[str], cols: dict[str, int]) -> VesselStatic | None:
        def text(name: str) -> str | None:
            i = cols.get(name)
            value = row[i].strip() if i is not None else ""
            return value or None

        def number(name: str, upper: float) -> float | None:
            """A positive figure up to ``upper``; anything else is counted and left out."""
            value = text(name)
            if value is None:
                return None
            try:
                out = float(value)
            except ValueError:
                out = math.nan
            if out == 0.0:
                return None  # 0: "not available" in AIS static data
            if not 0.0 < out <= upper:  # NaN, inf, negative, absurd
                self.stats.notes[f"bad_static_{name}"] += 1
                return None
            return out

        imo = text("IMO")
        number_part = imo.upper().removeprefix("IMO") if imo else ""
        if imo and (number_part in ("0000000", mmsi) or not number_part.isdigit()):
            imo = None  # a placeholder, the MMSI again, or text ("Unknown")
        raw_type = text("VesselType")
        vtype: float | None
        try:
            float(raw_type or "0")
            vtype = number("VesselType", MAX_SHIP_TYPE)
        except ValueError:  # a type written as text ("Fishing", "Tug")
            vtype = aiscolumns.ship_type(raw_type or "")
        st = VesselStatic(
            mmsi=mmsi,
            ts=ts,
            name=text("VesselName"),
            call_sign=text("CallSign"),
            imo=imo,
            ship_type=int(vtype) if vtype else None,
            length_m=number("Length", MAX_LENGTH_M),
            width_m=number("Width", MAX_WIDTH_M),
            source=self.format_name,
        )
        if st.name is None and st.call_sign is None and st.imo is None and st.ship_type is None:
            return None
        return st


class AisCsvDecoder(MarineCadastreDecoder):
    """Another agency's AIS CSV export: the same decoder, named for what it reads."""

    format_name = "ais_csv"
