"""What every source decoder shares: the items it yields and its line accounting.

A decoder turns lines of one input into records (:class:`Position`, :class:`VesselStatic`)
and :class:`Reject` entries. Every input line is accounted exactly once, in one of:

* a record line (the line that completed a record),
* a fragment (an earlier part of a multi-part message that later completed),
* a rejected line (inside a :class:`Reject`; an orphan multi-part message counts all its lines),
* an ignored line (blank, comment, header, or a valid message vigiamar does not use),

so ``lines == record_lines + fragments + rejected_lines + ignored_lines`` after ``close``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from models.errors import DecodeError
from models.position import Position, Reject, VesselStatic

Record = Position | VesselStatic
Item = Position | VesselStatic | Reject


@dataclass
class SourceStats:
    lines: int = 0
    record_lines: int = 0
    fragments: int = 0
    rejected_lines: int = 0
    ignored_lines: int = 0
    positions: int = 0
    statics: int = 0
    rejects: Counter[str] = field(default_factory=Counter)  # by reason
    ignored: Counter[str] = field(default_factory=Counter)  # by reason
    notes: Counter[str] = field(default_factory=Counter)  # e.g. non_ship_mmsi

    def balanced(self) -> bool:
        return self.lines == self.record_lines + self.fragments + self.rejected_lines + self.ignored_lines

    def merge(self, other: SourceStats) -> None:
        self.lines += other.lines
        self.record_lines += other.record_lines
        self.fragments += other.fragments
        self.rejected_lines += other.rejected_lines
        self.ignored_lines += other.ignored_lines
        self.positions += other.positions
        self.statics += other.statics
        self.rejects.update(other.rejects)
        self.ignored.update(other.ignored)
        self.notes.update(other.notes)


class Decoder(Protocol):
    """One decoder instance per input; ``decode`` may be called once with all lines."""

    format_name: str
    stats: SourceStats

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        """Yield items for ``lines`` (1-based line numbers follow the iteration order)."""
        ...


class DecoderBase:
    """Bookkeeping helpers for decoders."""

    format_name = "base"

    def __init__(self, source: str) -> None:
        self.source = source
        self.stats = SourceStats()

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        raise NotImplementedError

    def reject(self, lineno: int, reason: str, raw: str, detail: str = "", lines: int = 1) -> Reject:
        self.stats.rejected_lines += lines
        self.stats.rejects[reason] += 1
        return Reject(self.source, str(lineno), reason, raw.rstrip("\r\n"), detail)

    def ignore(self, reason: str, lines: int = 1) -> None:
        self.stats.ignored_lines += lines
        self.stats.ignored[reason] += 1

    def json_lines(
        self, lines: Iterable[str], convert: Callable[[Any], Record], strip: str = ""
    ) -> Iterator[Item]:
        """JSON Lines: one JSON value a line, made a record by ``convert``.

        Blank lines are ignored; a line that is not JSON is rejected as ``bad_json``, and one
        ``convert`` refuses (:class:`DecodeError`) with its reason. ``strip``: characters taken
        off the start of a line besides white space (a byte order mark).
        """
        stats = self.stats
        for lineno, line in enumerate(lines, start=1):
            stats.lines += 1
            text = line.strip().lstrip(strip) if strip else line.strip()
            if not text:
                self.ignore("blank")
                continue
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                yield self.reject(lineno, "bad_json", line, str(exc))
                continue
            try:
                item = convert(obj)
            except DecodeError as exc:
                yield self.reject(lineno, exc.reason, line, exc.detail)
                continue
            yield self.record(item)

    def record(self, item: Record) -> Record:
        self.stats.record_lines += 1
        if isinstance(item, Position):
            self.stats.positions += 1
        else:
            self.stats.statics += 1
        return item


# Ship-station MMSIs (ITU-R M.585): MID 2xx–7xx; anything else is a non-ship station.
SHIP_MMSI_MIN = 200_000_000
SHIP_MMSI_MAX = 799_999_999


def is_ship_mmsi(mmsi: int) -> bool:
    return SHIP_MMSI_MIN <= mmsi <= SHIP_MMSI_MAX
