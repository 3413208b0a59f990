"""Aircraft / drone JSON Lines in the traffic library / OpenSky column style.

One object a line with the columns of :mod:`streams.sources.aircsv`, as
``traffic``'s ``Traffic.to_json(orient="records", lines=True)`` writes them::

    {"timestamp": "2020-09-13T09:45:00Z", "icao24": "3924a4", "callsign": "ASR182B",
     "latitude": 45.1, "longitude": 5.7, "altitude": 9000.0, "groundspeed": 120.0,
     "track": 270.0, "vertical_rate": 0.0, "onground": false, "squawk": "7000"}

``timestamp`` is ISO 8601 text or epoch seconds or milliseconds (pandas writes milliseconds
by default); ``null`` is an absent value. The columns are read by
:mod:`streams.sources.aircolumns`, with the same reject reasons as the CSV form.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from models.errors import DecodeError
from models.position import Position
from streams.sources.aircolumns import aircraft_position
from streams.sources.base import DecoderBase, Item

SOURCE = "aircraft_jsonl"


class AircraftJsonLinesDecoder(DecoderBase):
    format_name = SOURCE

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        return self.json_lines(lines, _position, strip="\ufeff")


def _position(obj: object) -> Position:
    if not isinstance(obj, dict):
        raise DecodeError("not_an_object", type(obj).__name__)
    return aircraft_position(obj, SOURCE)
