"""NMEA 0183 AIS decoder: ``!AIVDM``/``!AIVDO`` lines to positions and static vessel data.

The NMEA layer (framing, checksums, tag blocks, multi-part reassembly, event times) is
parsed here, strictly: pyais accepts bad checksums, vigiamar does not. AIS payloads are
decoded with pyais' bit vector and message classes. Every line is accounted once
(see :mod:`streams.sources.base`); nothing raises out of :meth:`NmeaDecoder.decode`
except :class:`MissingTimeError` when the whole input carries no event time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pyais.bit_vector import bit_vector
from pyais.messages import (
    MessageType1,
    MessageType2,
    MessageType3,
    MessageType5,
    MessageType18,
    MessageType19,
    MessageType24,
    MessageType27,
)

from models.errors import DecodeError, MissingTimeError
from models.position import MAX_EVENT_TS, MIN_EVENT_TS, Position, VesselStatic, check_position
from streams.sources.base import DecoderBase, Item, Record, is_ship_mmsi
from streams.sources.nmea_time import (
    HEX2,
    Group,
    column_time,
    metadata_time,
    parse_tag_block,
    pghp_time,
    xor_checksum,
)

SOURCE = "nmea"
NO_TIME_MESSAGE = (
    "no event time in input: needs tag blocks (c:), a timestamp column or receiver metadata; "
    "or pass an assumed start time"
)

_SENTENCE_START = re.compile(r"[!$\\]")
_ARMOR = re.compile(r"[0-W`-w]+")  # the 64 characters of AIS six-bit payload armouring
_DIGIT = {str(i): i for i in range(10)}
_IGNORED_TYPE = tuple(f"type_{n}" for n in range(64))


def _text(value: str | None) -> str | None:
    """AIS six-bit text: ``@`` ends it, spaces pad it; empty means not available."""
    if value is None:
        return None
    return value.split("@", 1)[0].strip() or None


def _size(a: int | None, b: int | None) -> float | None:
    """Length (bow + stern) or width (port + starboard) in metres; 0 means not available."""
    if a is None or b is None or a + b == 0:
        return None
    return float(a + b)


def _knots(value: float) -> float | None:
    return None if value >= 102.3 else value  # raw 1023: not available


def _degrees(value: float) -> float | None:
    return None if value >= 360 else float(value)  # course 3600 (type 27: 511), heading 511


def _position(
    m: Any, ts: float, speed: float | None, course: float | None, heading: float | None, status: int | None
) -> Position:
    if m.lat == 91.0 or m.lon == 181.0:
        raise DecodeError("position_not_available", f"lat {m.lat} lon {m.lon}")
    pos = Position(
        "vessel", str(m.mmsi), ts, m.lat, m.lon, speed, course, heading, nav_status=status, source=SOURCE
    )
    return check_position(pos)


def _class_a(m: Any, ts: float) -> Record:  # types 1, 2, 3
    return _position(m, ts, _knots(m.speed), _degrees(m.course), _degrees(m.heading), int(m.status))


def _class_b(m: Any, ts: float) -> Record:  # types 18, 19: no navigational status
    return _position(m, ts, _knots(m.speed), _degrees(m.course), _degrees(m.heading), None)


def _long_range(m: Any, ts: float) -> Record:  # type 27: whole knots (63: n/a), whole degrees
    speed = None if m.speed >= 63 else float(m.speed)
    return _position(m, ts, speed, _degrees(m.course), None, int(m.status))


def _static(m: Any, ts: float) -> Record:  # type 5, and both halves of type 24
    if not MIN_EVENT_TS <= ts <= MAX_EVENT_TS:
        raise DecodeError("time_out_of_range", str(ts))
    imo = getattr(m, "imo", None)
    ship_type = getattr(m, "ship_type", None)
    return VesselStatic(
        mmsi=str(m.mmsi),
        ts=ts,
        name=_text(getattr(m, "shipname", None)),
        call_sign=_text(getattr(m, "callsign", None)),
        imo=str(imo) if imo else None,
        ship_type=int(ship_type) if ship_type else None,
        length_m=_size(getattr(m, "to_bow", None), getattr(m, "to_stern", None)),
        width_m=_size(getattr(m, "to_port", None), getattr(m, "to_starboard", None)),
        source=SOURCE,
    )


# AIS type -> (pyais message class, fewest payload bits holding the fields used, builder).
_Builder = Callable[[Any, float], Record]
_DECODED: dict[int, tuple[Any, int, _Builder]] = {
    1: (MessageType1, 137, _class_a),
    2: (MessageType2, 137, _class_a),
    3: (MessageType3, 137, _class_a),
    5: (MessageType5, 270, _static),
    18: (MessageType18, 133, _class_b),
    19: (MessageType19, 133, _class_b),
    24: (MessageType24, 160, _static),
    27: (MessageType27, 94, _long_range),
}


@dataclass(slots=True)
class _Pending:
    """The parts received so far of one multi-part message."""

    first_line: int
    count: int
    payloads: list[str] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    ts: float | None = None


class NmeaDecoder(DecoderBase):
    """Decode one NMEA AIS input. ``assume_ts`` times sentences that carry no time."""

    format_name = "nmea"

    def __init__(self, source: str, *, assume_ts: float | None = None, max_group_lines: int = 50) -> None:
        super().__init__(source)
        self.assume_ts = assume_ts
        self.max_group_lines = max_group_lines
        self._pending: dict[tuple[str | int, ...], _Pending] = {}
        self._extra: list[Item] = []  # rejects of evicted multi-part messages, yielded next
        self._pghp_ts: float | None = None
        self._ais_sentences = 0
        self._timed_sentences = 0

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        for lineno, raw in enumerate(lines, 1):
            self.stats.lines += 1
            try:
                item = self._line(lineno, raw)
            except Exception as exc:  # a bug must cost one line, not the input
                item = self.reject(lineno, "internal_error", str(raw), f"{type(exc).__name__}: {exc}")
            if self._pending:
                self._evict(lineno - self.max_group_lines)
            if self._extra:
                yield from self._extra
                self._extra.clear()
            if item is not None:
                yield item
        self._evict(None)
        yield from self._extra
        self._extra.clear()
        if self._ais_sentences and not self._timed_sentences and self.assume_ts is None:
            raise MissingTimeError(self.source, NO_TIME_MESSAGE)

    # -- one line ---------------------------------------------------------------------------

    def _line(self, lineno: int, raw: str) -> Item | None:
        s = raw.strip()
        if not s:
            self.ignore("blank")
            return None
        if s[0] == "#":
            self.ignore("comment")
            return None
        col_ts = None
        if s[0] not in "!$\\":
            start = _SENTENCE_START.search(s)
            col_ts = column_time(s[: start.start()].rstrip(",; \t")) if start else None
            if start is None or col_ts is None:
                return self.reject(lineno, "not_nmea", raw)
            s = s[start.start() :]
        tag_ts = group = None
        if s[0] == "\\":
            end = s.find("\\", 1)
            if end < 0:
                return self.reject(lineno, "bad_tag_block", raw, "no closing backslash")
            try:
                tag_ts, group = parse_tag_block(s[1:end])
            except DecodeError as exc:
                return self.reject(lineno, exc.reason, raw, exc.detail)
            s = s[end + 1 :]
        return self._sentence(lineno, raw, s, tag_ts if tag_ts is not None else col_ts, group)

    def _sentence(self, lineno: int, raw: str, s: str, ts: float | None, group: Group | None) -> Item | None:
        if not s or s[0] not in "!$":
            return self.reject(lineno, "not_nmea", raw)
        star = s.find("*")
        if star < 0:
            return self.reject(lineno, "missing_checksum", raw)
        body, rest = s[1:star], s[star + 3 :]
        try:
            good = xor_checksum(body) == HEX2.get(s[star + 1 : star + 3])
        except UnicodeEncodeError:
            return self.reject(lineno, "non_ascii", raw)
        if not good:
            return self.reject(lineno, "bad_checksum", raw)
        if rest and rest[0] != ",":
            return self.reject(lineno, "trailing_garbage", raw, rest)
        fields = body.split(",")
        tag = fields[0]
        if s[0] == "$" and tag == "PGHP":
            return self._gatehouse(lineno, raw, fields)
        if s[0] != "!" or len(tag) != 5 or tag[2:] not in ("VDM", "VDO"):
            self.ignore("non_ais_sentence")
            return None
        if ts is None and rest:
            ts = metadata_time(rest)
        if ts is None:
            ts = self._pghp_ts if self._pghp_ts is not None else self.assume_ts
        return self._ais(lineno, raw, fields, ts, group)

    def _gatehouse(self, lineno: int, raw: str, fields: list[str]) -> Item | None:
        try:
            ts = pghp_time(fields)
        except DecodeError as exc:
            return self.reject(lineno, exc.reason, raw, exc.detail)
        if ts is None:
            self.ignore("non_ais_sentence")
            return None
        self._pghp_ts = ts  # times the sentences that follow, until the next $PGHP
        self.ignore("gatehouse_time")
        return None

    def _ais(
        self, lineno: int, raw: str, fields: list[str], ts: float | None, group: Group | None
    ) -> Item | None:
        if len(fields) != 7:
            reason = "truncated" if len(fields) < 7 else "bad_field_count"
            return self.reject(lineno, reason, raw, f"{len(fields)} fields")
        talker, count_s, num_s, seq, channel, payload, fill_s = fields
        count, num, fill = _DIGIT.get(count_s), _DIGIT.get(num_s), _DIGIT.get(fill_s)
        if not count or not num or num > count or (seq and not seq.isdigit()):
            return self.reject(lineno, "bad_fragment_fields", raw, ",".join(fields[1:4]))
        if fill is None or fill > 5:
            return self.reject(lineno, "bad_fill_bits", raw, fill_s)
        self._ais_sentences += 1
        if ts is not None:
            self._timed_sentences += 1
        if not payload:
            return self.reject(lineno, "empty_payload", raw)
        if not _ARMOR.fullmatch(payload):
            return self.reject(lineno, "bad_payload", raw, "character outside the six-bit armour")
        if count == 1:
            return self._message(lineno, raw, payload, fill, ts, 1)
        if group is not None:
            key: tuple[str | int, ...] = ("g", group[0], count)
        else:
            key = (talker, count, seq, channel)
        return self._part(lineno, raw, key, count, num, payload, fill, ts)

    # -- multi-part messages ----------------------------------------------------------------

    def _part(
        self,
        lineno: int,
        raw: str,
        key: tuple[str | int, ...],
        count: int,
        num: int,
        payload: str,
        fill: int,
        ts: float | None,
    ) -> Item | None:
        pending = self._pending.get(key)
        if pending is not None and (num == 1 or len(pending.payloads) != num - 1):
            del self._pending[key]  # a new start, or a gap: the parts so far can never complete
            self._extra.append(self._incomplete(pending))
            pending = None
        if num == 1:
            pending = self._pending[key] = _Pending(lineno, count)  # the dict is ordered by first line
        elif pending is None:
            return self.reject(lineno, "incomplete_multipart", raw, f"part {num} of {count} without part 1")
        pending.payloads.append(payload)
        pending.raws.append(raw.rstrip("\r\n"))
        if pending.ts is None:
            pending.ts = ts
        if num < count:
            return None
        del self._pending[key]
        joined = "\n".join(pending.raws)
        return self._message(lineno, joined, "".join(pending.payloads), fill, pending.ts, count)

    def _incomplete(self, pending: _Pending) -> Item:
        got = len(pending.raws)
        return self.reject(
            pending.first_line,
            "incomplete_multipart",
            "\n".join(pending.raws),
            f"{got} of {pending.count} parts",
            lines=got,
        )

    def _evict(self, before: int | None) -> None:
        """Give up on multi-part messages started at or before line ``before`` (None: all)."""
        while self._pending:
            key, pending = next(iter(self._pending.items()))
            if before is not None and pending.first_line > before:
                return
            del self._pending[key]
            self._extra.append(self._incomplete(pending))

    # -- AIS payload --------------------------------------------------------------------------

    def _message(
        self, lineno: int, raw: str, payload: str, fill: int, ts: float | None, lines: int
    ) -> Item | None:
        ais_type = ord(payload[0]) - 48
        if ais_type > 40:
            ais_type -= 8
        if not 1 <= ais_type <= 27:
            return self.reject(lineno, "invalid_type", raw, f"type {ais_type}", lines)
        decoded = _DECODED.get(ais_type)
        if decoded is None:
            self.ignore(_IGNORED_TYPE[ais_type], lines)
            return None
        if ts is None:
            return self.reject(lineno, "no_time", raw, "", lines)
        cls, min_bits, build = decoded
        try:
            bits = bit_vector(payload.encode("ascii"), fill)
            if len(bits) < min_bits:
                return self.reject(lineno, "short_payload", raw, f"{len(bits)} bits, type {ais_type}", lines)
            msg = cls.from_vector(bits)
            rec = build(msg, ts)
        except DecodeError as exc:
            return self.reject(lineno, exc.reason, raw, exc.detail, lines)
        except Exception as exc:  # pyais raises assorted errors on malformed payloads
            return self.reject(lineno, "decode_error", raw, str(exc) or type(exc).__name__, lines)
        self.stats.fragments += lines - 1
        if not is_ship_mmsi(msg.mmsi):
            self.stats.notes["non_ship_mmsi"] += 1
        return self.record(rec)
