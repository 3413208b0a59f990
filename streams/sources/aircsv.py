"""Aircraft / drone CSV in the traffic library / OpenSky column style.

``timestamp, icao24, latitude, longitude, altitude`` (ft), ``groundspeed`` (kn),
``track`` (deg), optional ``callsign``, ``vertical_rate`` (ft/min), ``onground``.
Rows without a position (OpenSky state vectors without a fix) are rejected as
``no_position``, never guessed. The columns are read by :mod:`streams.sources.aircolumns`,
which also reads OpenSky's state-vector dumps (``time,icao24,lat,lon,velocity,…``, SI units).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from models.errors import DecodeError, UnknownFormatError
from streams.sources.aircolumns import OPENSKY_REQUIRED, REQUIRED, aircraft_position, from_opensky
from streams.sources.base import DecoderBase, Item
from streams.sources.csvutil import split_row


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
        opensky = all(c in col for c in OPENSKY_REQUIRED) and not all(c in col for c in REQUIRED)
        missing = [c for c in (OPENSKY_REQUIRED if opensky else REQUIRED) if c not in col]
        if missing:
            raise UnknownFormatError(self.source, f"aircraft CSV lacks columns {', '.join(missing)}", 1)
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
                record = dict(zip(header, row, strict=True))
                pos = aircraft_position(from_opensky(record) if opensky else record, "aircraft_csv")
            except DecodeError as exc:
                yield self.reject(lineno, exc.reason, line, exc.detail)
                continue
            stats.record_lines += 1
            stats.positions += 1
            yield pos
