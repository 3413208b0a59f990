"""NMEA framing helpers for the AIS decoder: checksums, NMEA 4.0 tag blocks and event times.

Event times come from, in order of preference: a tag block's ``c:`` field, a timestamp
column before the sentence, USCG receiver metadata after the checksum (its last comma
field is Unix seconds), a preceding Gatehouse ``$PGHP`` sentence. See :mod:`streams.sources.nmea`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import reduce
from operator import xor
from string import hexdigits

from models.errors import DecodeError
from models.timeutil import parse_iso

# Two hex digits, any case, to their value: stricter and faster than int(x, 16).
HEX2: dict[str, int] = {a + b: int(a + b, 16) for a in hexdigits for b in hexdigits}

_NUMBER = re.compile(r"[0-9]{1,14}(?:\.[0-9]*)?")
# Epoch values above this are milliseconds (1e11 s is the year 5138).
_MS_THRESHOLD = 1e11


def xor_checksum(body: str) -> int:
    """XOR of the characters between the start delimiter and ``*``; raises on non-ASCII."""
    return reduce(xor, body.encode("ascii"), 0)


def checksum_matches(body: str, written: str) -> bool:
    """``written`` is the text after ``*``; it must be exactly two hex digits."""
    expected = HEX2.get(written)
    if expected is None:
        return False
    try:
        return xor_checksum(body) == expected
    except UnicodeEncodeError:
        return False


def epoch_seconds(text: str) -> float | None:
    """Unix seconds (or milliseconds, detected by size) written as digits; else None."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value / 1000.0 if value > _MS_THRESHOLD else value


def column_time(text: str) -> float | None:
    """A leading timestamp column: ISO 8601 or Unix seconds; None if it is neither."""
    value = epoch_seconds(text)
    if value is not None:
        return value
    if len(text) < 10 or text[4] != "-":
        return None
    try:
        return parse_iso(text)
    except ValueError:
        return None


def metadata_time(rest: str) -> float | None:
    """USCG receiver metadata after the checksum, e.g. ``,b003669794,1272412827``."""
    return epoch_seconds(rest[rest.rfind(",") + 1 :])


# (group id, total sentences, sentence number) from a tag block's g: field.
Group = tuple[str, int, int]


def parse_tag_block(block: str) -> tuple[float | None, Group | None]:
    """Check and parse the inside of ``\\…*hh\\``; return its ``c:`` time and ``g:`` group.

    Raises :class:`DecodeError` ``bad_tag_block_checksum`` or ``bad_tag_block``.
    """
    star = block.rfind("*")
    if star < 0 or not checksum_matches(block[:star], block[star + 1 :]):
        raise DecodeError("bad_tag_block_checksum", block)
    ts: float | None = None
    group: Group | None = None
    for item in block[:star].split(","):
        key, sep, value = item.partition(":")
        if not sep:
            raise DecodeError("bad_tag_block", f"field without ':': {item!r}")
        if key == "c":
            ts = epoch_seconds(value)
            if ts is None:
                raise DecodeError("bad_tag_block", f"c:{value}")
        elif key == "g":
            group = _parse_group(value)
    return ts, group


def _parse_group(value: str) -> Group:
    parts = value.split("-")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit() and parts[2]):
        raise DecodeError("bad_tag_block", f"g:{value}")
    return parts[2], int(parts[1]), int(parts[0])


def pghp_time(fields: list[str]) -> float | None:
    """Time of a Gatehouse ``$PGHP,1,yyyy,mm,dd,hh,mm,ss,ms,…`` sentence (fields split on ``,``).

    Returns None for other PGHP message types; raises :class:`DecodeError` ``bad_pghp``.
    """
    if len(fields) < 2 or fields[1] != "1":
        return None
    try:
        year, month, day, hour, minute, second, milli = (int(f) for f in fields[2:9])
        when = datetime(year, month, day, hour, minute, second, milli * 1000, tzinfo=UTC)
    except (TypeError, ValueError) as exc:  # too few fields, not numbers, out of range
        raise DecodeError("bad_pghp", str(exc)) from exc
    return when.timestamp()
