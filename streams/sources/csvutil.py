"""Helpers shared by the CSV decoders: fast number and time parsing with reasons on failure."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime

from models.errors import DecodeError
from models.timeutil import parse_iso

# Epoch numbers above this are milliseconds: as seconds they would lie after the year 5000.
EPOCH_MS_ABOVE = 1e11

_DAY_CACHE: dict[str, float] = {}
_MINUTE_CACHE: dict[str, float] = {}  # "YYYY-MM-DDTHH:MM" -> epoch seconds of that minute


def split_row(line: str) -> list[str]:
    """Fields of one CSV line. A quote never spans lines: a broken row stays one bad row
    instead of swallowing the lines after it."""
    line = line.rstrip("\r\n")
    if '"' not in line:
        return line.split(",") if line else []
    return next(csv.reader([line]), [])


def parse_time(text: str) -> float:
    """Epoch seconds from ISO 8601 (zone-less = UTC); fast path for ``YYYY-MM-DDTHH:MM:SS[Z]``.

    Also ``DD/MM/YYYY HH:MM:SS`` (day first, UTC: the Danish Maritime Authority's AIS exports)
    and epoch seconds (milliseconds above 1e11) written as a number."""
    n = len(text)
    if (n == 19 or (n == 20 and text[19] == "Z")) and text[10] in "T " and text[13] == ":" and text[4] == "-":
        minute = _MINUTE_CACHE.get(text[:16])
        if minute is not None:  # day, hour and minute already parsed and checked for this prefix
            try:
                s = int(text[17:19])
            except ValueError as exc:
                raise DecodeError("bad_time", text) from exc
            if s > 60:
                raise DecodeError("bad_time", text)
            return minute + s
        day = _DAY_CACHE.get(text[:10])
        if day is None:
            day = _utc(text[:10], "%Y-%m-%d", text)
            _remember(_DAY_CACHE, text[:10], day, 4096)
        try:
            h, m, s = int(text[11:13]), int(text[14:16]), int(text[17:19])
        except ValueError as exc:
            raise DecodeError("bad_time", text) from exc
        if h > 23 or m > 59 or s > 60 or not text[11:13].isdigit():
            raise DecodeError("bad_time", text)
        minute = day + h * 3600 + m * 60
        _remember(_MINUTE_CACHE, text[:16], minute, 65536)
        return minute + s
    if n >= 16 and text[2] == "/" and text[5] == "/":
        return _day_first(text)
    if text[:1].isdigit() and "-" not in text and ":" not in text:
        return epoch_seconds(req_float(text, "bad_time"))
    try:
        return parse_iso(text)
    except (ValueError, OverflowError) as exc:
        raise DecodeError("bad_time", text) from exc


def _utc(part: str, fmt: str, text: str) -> float:
    """Epoch seconds of ``part`` read with ``fmt`` as UTC; DecodeError ``bad_time`` naming ``text``."""
    try:
        return datetime.strptime(part, fmt).replace(tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise DecodeError("bad_time", text) from exc


def _remember(cache: dict[str, float], key: str, value: float, limit: int) -> None:
    """A parsed prefix, in a cache emptied when it outgrows ``limit``."""
    if len(cache) > limit:
        cache.clear()
    cache[key] = value


def _day_first(text: str) -> float:
    """``DD/MM/YYYY HH:MM[:SS]`` as UTC, one strptime per minute."""
    minute = _MINUTE_CACHE.get(text[:16])
    if minute is None:
        minute = _utc(text[:16], "%d/%m/%Y %H:%M", text)
        _remember(_MINUTE_CACHE, text[:16], minute, 65536)
    rest = text[16:]
    if not rest:
        return minute
    if len(rest) < 3 or rest[0] != ":" or not rest[1:3].isdigit() or (len(rest) > 3 and rest[3] != "."):
        raise DecodeError("bad_time", text)
    s = float(rest[1:]) if len(rest) > 3 else int(rest[1:3])
    if s >= 61:
        raise DecodeError("bad_time", text)
    return minute + s


def epoch_seconds(value: float) -> float:
    """Seconds from an epoch number written as seconds or, above ``EPOCH_MS_ABOVE``, milliseconds."""
    return value / 1000.0 if abs(value) > EPOCH_MS_ABOVE else value


def req_float(text: str, reason: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise DecodeError(reason, text) from exc
    if not math.isfinite(value):
        raise DecodeError(reason, text)
    return value


def opt_float(text: str, reason: str) -> float | None:
    if not text:
        return None
    return req_float(text, reason)
