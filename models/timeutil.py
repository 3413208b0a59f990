"""Event time helpers: event times are float seconds since the Unix epoch, UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def to_datetime(ts: float) -> datetime:
    """Aware UTC datetime for an epoch-seconds event time."""
    return datetime.fromtimestamp(ts, tz=UTC)


def to_iso(ts: float) -> str:
    """ISO 8601 UTC with a ``Z`` suffix, whole seconds unless the time has a fraction."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    """Parse ISO 8601; a time without a zone is taken as UTC (as MarineCadastre writes it).

    ``YYYY-MM-DDTHH:MM:SS`` with ``Z`` or no zone (what :func:`to_iso` writes for whole
    seconds, and the form of every position on the wire) is read with integer arithmetic, the
    same value ``datetime.timestamp`` gives; anything else goes through ``fromisoformat``.
    """
    n = len(text)
    if (n == 20 and (text[19] == "Z" or text[19] == "z")) or n == 19:
        seconds = _utc_seconds(text)
        if seconds is not None:
            return float(seconds)
    return parse_iso_full(text)


def parse_iso_full(text: str) -> float:
    """:func:`parse_iso` through ``datetime.fromisoformat``, every form it takes."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _utc_seconds(text: str) -> int | None:
    """Seconds since the epoch of ``YYYY-MM-DDTHH:MM:SS…`` read as UTC; None when it is not
    exactly that (a valid date and time, ASCII digits): the caller then parses it in full."""
    if text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":" or text[16] != ":":
        return None
    century = _two_digits(text, 0)
    yy = _two_digits(text, 2)
    month = _two_digits(text, 5)
    day = _two_digits(text, 8)
    hour = _two_digits(text, 11)
    minute = _two_digits(text, 14)
    second = _two_digits(text, 17)
    if century < 0 or yy < 0 or minute < 0 or second < 0:
        return None
    year = century * 100 + yy
    if year < 1 or not 1 <= month <= 12 or day < 1 or day > _month_days(year, month):
        return None
    if not 0 <= hour <= 23 or minute > 59 or second > 59:
        return None
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second


def _two_digits(text: str, i: int) -> int:
    """The number written by the ASCII digits at ``i`` and ``i + 1``; -1 if either is not one."""
    a = ord(text[i]) - 48
    b = ord(text[i + 1]) - 48
    if 0 <= a <= 9 and 0 <= b <= 9:
        return a * 10 + b
    return -1


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's ``days_from_civil``)."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
