"""MAVLink telemetry logs (``.tlog``, plain or gzip) from the agencies' own drones.

A ``.tlog`` (as QGroundControl and MAVProxy write it) is a sequence of records: an 8-byte
big-endian reception time in microseconds since the Unix epoch, then one MAVLink v1 (``0xFE``)
or v2 (``0xFD``) frame. Frames are decoded and CRC-checked by ``pymavlink`` (LGPL-3.0; the
``common`` dialect). ``GLOBAL_POSITION_INT`` becomes a position:

==================  ==============================  =================================
field               MAVLink                         record (conversion, named once here)
==================  ==============================  =================================
event time          tlog reception time, µs         ``ts`` seconds
lat, lon            degE7                           degrees
alt                 mm above mean sea level         ``altitude_ft`` (:func:`models.units.m_to_ft`)
vx, vy              cm/s north, east                ``speed_kn`` (:func:`models.units.mps_to_kn`),
                                                    ``course_deg`` (ground track)
vz                  cm/s down                       ``vertical_rate_fpm`` (:func:`models.units.mps_to_fpm`), up > 0
==================  ==============================  =================================

The id is ``mavlink-<system id>`` (set a distinct ``SYSID_THISMAV`` per drone). Every record
is one "line" of the accounting: other message types are ignored (``msg_<NAME>``), unknown
message ids are ignored (``unknown_message``), a record that does not decode (bad CRC,
truncated, no frame marker) is rejected, and decoding resumes at the next record that
starts like one. A position of exactly 0, 0 is "no GPS fix" and rejected as ``no_fix``.

The decoder reads the file named by its source (the line interface of other decoders does not
fit binary input); :meth:`MavlinkDecoder.decode_bytes` decodes bytes already in memory.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from models.errors import DecodeError, InputError
from models.position import MAX_EVENT_TS, MIN_EVENT_TS, Position, check_position
from models.units import m_to_ft, mps_to_fpm, mps_to_kn
from streams.sources.base import DecoderBase, Item

SOURCE = "mavlink"
STAMP = 8  # bytes of the tlog reception time
V1, V2 = 0xFE, 0xFD
MSG_GLOBAL_POSITION_INT = 33
MIN_TRACK_SPEED_MPS = 0.5  # below this the ground track from vx, vy is noise


class MavlinkDecoder(DecoderBase):
    format_name = "mavlink"

    def __init__(self, source: str, *, id_prefix: str = "mavlink-") -> None:
        super().__init__(source)
        self.id_prefix = id_prefix
        from pymavlink.dialects.v20 import common  # type: ignore[import-untyped]

        self._dialect: Any = common
        self._mav: Any = common.MAVLink(None)

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        """Decode the ``.tlog`` file named by ``source`` (``lines`` are not used: binary input)."""
        path = Path(self.source)
        try:
            data = path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(self.source, f"cannot read: {exc}") from exc
        yield from self.decode_bytes(data)

    def decode_bytes(self, data: bytes) -> Iterator[Item]:
        n = len(data)
        i = 0
        record = 0
        last_ts: float | None = None
        while i < n:
            record += 1
            self.stats.lines += 1
            size = _frame_size(data, i)
            if size is None or i + STAMP + size > n:
                nxt = _resync(data, i + 1, last_ts)
                yield self.reject(
                    record, "bad_frame" if size is None else "truncated", data[i : min(nxt, i + 64)].hex()
                )
                i = nxt
                continue
            ts = int.from_bytes(data[i : i + STAMP], "big") / 1e6
            frame = data[i + STAMP : i + STAMP + size]
            try:
                item = self._frame(ts, frame)
            except DecodeError as exc:
                yield self.reject(record, exc.reason, data[i : i + STAMP + size].hex(), exc.detail)
                i += STAMP + size
                continue
            last_ts = ts
            i += STAMP + size
            if item is not None:
                yield self.record(item)

    def _frame(self, ts: float, frame: bytes) -> Position | None:
        msgid = frame[5] if frame[0] == V1 else int.from_bytes(frame[7:10], "little")
        if msgid not in self._dialect.mavlink_map:
            self.ignore("unknown_message")
            return None
        try:
            msg = self._mav.decode(bytearray(frame))
        except Exception as exc:  # pymavlink raises MAVError and struct errors alike
            raise DecodeError("bad_crc" if "CRC" in str(exc) else "bad_message", str(exc)[:120]) from exc
        if msg.get_msgId() != MSG_GLOBAL_POSITION_INT:
            self.ignore(f"msg_{msg.get_type()}")
            return None
        if not (MIN_EVENT_TS <= ts <= MAX_EVENT_TS):
            raise DecodeError("time_out_of_range", str(ts))
        if msg.lat == 0 and msg.lon == 0:
            raise DecodeError("no_fix", "lat = lon = 0")
        pos = Position(
            "aircraft",
            f"{self.id_prefix}{msg.get_srcSystem()}",
            ts,
            msg.lat / 1e7,
            msg.lon / 1e7,
            altitude_ft=m_to_ft(msg.alt / 1000.0),
            source=SOURCE,
        )
        vn, ve = msg.vx / 100.0, msg.vy / 100.0
        ground = math.hypot(vn, ve)
        pos.speed_kn = mps_to_kn(ground)
        if ground >= MIN_TRACK_SPEED_MPS:
            pos.course_deg = math.degrees(math.atan2(ve, vn)) % 360.0
        pos.vertical_rate_fpm = mps_to_fpm(-msg.vz / 100.0)
        return check_position(pos)


def _frame_size(data: bytes, i: int) -> int | None:
    """Bytes of the MAVLink frame after the time stamp at ``i``; None when none starts there."""
    j = i + STAMP
    if j + 2 > len(data):
        return None
    marker = data[j]
    if marker == V1:
        return 8 + data[j + 1]
    if marker == V2:
        if j + 3 > len(data):
            return None
        return 12 + data[j + 1] + (13 if data[j + 2] & 1 else 0)
    return None


def _resync(data: bytes, start: int, last_ts: float | None) -> int:
    """The next offset that starts like a record: a frame marker after a plausible time stamp."""
    n = len(data)
    for k in range(start, n - STAMP):
        if data[k + STAMP] not in (V1, V2):
            continue
        ts = int.from_bytes(data[k : k + STAMP], "big") / 1e6
        if last_ts is not None and abs(ts - last_ts) > 86400.0:
            continue
        if last_ts is None and not (MIN_EVENT_TS <= ts <= MAX_EVENT_TS):
            continue
        return k
    return n
