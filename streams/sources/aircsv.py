"""Aircraft / drone CSV in the traffic library / OpenSky column style.

``timestamp, icao24, latitude, longitude, altitude`` (ft), ``groundspeed`` (kn),
``track`` (deg), optional ``callsign``, ``vertical_rate`` (ft/min), ``onground``.
Rows without a position (OpenSky state vectors without a fix) are rejected as
``no_position``, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from models.errors import DecodeError, UnknownFormatError
from models.position import Position, check_position
from streams.sources.base import DecoderBase, Item
from streams.sources.csvutil import opt_float, parse_time, req_float, split_row

REQUIRED = ("timestamp", "icao24", "latitude", "longitude")


class AircraftCsvDecoder(DecoderBase):
    format_name = "aircraft_csv"

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        it = iter(lines)
        header_line = next(it, None)
        if header_line is None:
            return
        self.stats.lines += 1
        self.ignore("header")
        header = [h.strip().lstrip("\ufeff") for h in split_row(header_line)]
        col = {name: i for i, name in enumerate(header)}
        missing = [c for c in REQUIRED if c not in col]
        if missing:
            raise UnknownFormatError(self.source, f"aircraft CSV lacks columns {', '.join(missing)}", 1)
        i_ts, i_id, i_lat, i_lon = (col[c] for c in REQUIRED)
        optional = ("altitude", "groundspeed", "track", "vertical_rate", "callsign")
        i_alt, i_gs, i_trk, i_vr, i_cs = (col.get(c) for c in optional)
        width = len(header)
        lineno = 1
        stats = self.stats
        for line in it:
            row = split_row(line)
            lineno += 1
            stats.lines += 1
            if not row:
                self.ignore("blank")
                continue
            if len(row) != width:
                yield self.reject(lineno, "wrong_field_count", line, f"{len(row)} fields, expected {width}")
                continue
            try:
                ident = row[i_id].strip().lower()
                if not ident:
                    raise DecodeError("bad_id", "empty icao24")
                if not row[i_lat] or not row[i_lon]:
                    raise DecodeError("no_position", "empty latitude/longitude")
                pos = Position(
                    "aircraft",
                    ident,
                    parse_time(row[i_ts]),
                    req_float(row[i_lat], "bad_lat"),
                    req_float(row[i_lon], "bad_lon"),
                    source="aircraft_csv",
                )
                if i_alt is not None:
                    pos.altitude_ft = opt_float(row[i_alt], "bad_altitude")
                if i_gs is not None:
                    pos.speed_kn = opt_float(row[i_gs], "bad_groundspeed")
                if i_trk is not None:
                    trk = opt_float(row[i_trk], "bad_track")
                    pos.course_deg = trk % 360.0 if trk is not None else None
                if i_vr is not None:
                    pos.vertical_rate_fpm = opt_float(row[i_vr], "bad_vertical_rate")
                if i_cs is not None and row[i_cs].strip():
                    pos.callsign = row[i_cs].strip()
                check_position(pos)
            except DecodeError as exc:
                yield self.reject(lineno, exc.reason, line, exc.detail)
                continue
            stats.record_lines += 1
            stats.positions += 1
            yield pos
