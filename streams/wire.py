"""What travels on the topics: position frames, alert records with CloudEvents headers, dead letters.

Position topics (``positions.vessel``, ``positions.air``). A message value is either one
record (a JSON object: :meth:`Position.to_wire`, or a vessel static record) or a *frame*:
a JSON array of such records, all of entities that hash to the partition the frame is
written to (Kafka's default partitioner, murmur2 of the entity id). ``vigiamar feed``
writes frames of up to ``kafka.frame_size`` records in input order, so faust's per-message
cost is paid once per frame, not once per position; a producer that writes one record per
message keyed by the entity id lands in the same partition and is read the same way.

An empty frame with the header ``vigiamar_control: end_of_input`` tells the worker that a
bounded input (a file) ended: it releases what the reorder buffer holds, as ``replay`` does
at the end of its input. Its header ``vigiamar_input_end`` (seconds since the epoch, as
text) is the newest event time of the whole input: each partition expires its tracks at
that time, as replay does, even when its own records end earlier.

Alerts: the value is the alert record (:meth:`Alert.to_wire`), the key its id, and the
CloudEvents 1.0 binary-mode headers carry ``ce_id`` = ``<id>:<revision>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from models.alert import Alert
from models.errors import DecodeError
from models.position import Position, VesselStatic
from models.timeutil import parse_iso, to_iso

Record = Position | VesselStatic
Headers = list[tuple[str, bytes]]

STATIC_TYPE = "vessel_static"
CONTROL_HEADER = "vigiamar_control"
END_OF_INPUT = b"end_of_input"
INPUT_END_HEADER = "vigiamar_input_end"

CE_SPECVERSION = "1.0"
CE_SOURCE = "urn:vigiamar:worker"
CE_TYPE_PREFIX = "org.vigiamar.alert."


# --- positions ---------------------------------------------------------------------------
def static_to_wire(static: VesselStatic) -> dict[str, Any]:
    out: dict[str, Any] = {"type": STATIC_TYPE, "id": static.mmsi, "time": to_iso(static.ts)}
    for name in ("name", "call_sign", "imo", "ship_type", "length_m", "width_m"):
        value = getattr(static, name)
        if value is not None:
            out[name] = value
    if static.source:
        out["source"] = static.source
    return out


def static_from_wire(obj: dict[str, Any]) -> VesselStatic:
    ident, when = obj.get("id"), obj.get("time")
    if not isinstance(ident, str | int) or isinstance(ident, bool) or not str(ident).strip():
        raise DecodeError("bad_id", repr(ident))
    if not isinstance(when, str):
        raise DecodeError("bad_time", repr(when))
    try:
        ts = parse_iso(when)
    except ValueError as exc:
        raise DecodeError("bad_time", when) from exc
    static = VesselStatic(mmsi=str(ident).strip(), ts=ts, source=str(obj.get("source") or ""))
    for name in ("name", "call_sign", "imo"):
        value = obj.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise DecodeError(f"bad_{name}", repr(value))
            setattr(static, name, value)
    ship_type = obj.get("ship_type")
    if ship_type is not None:
        if isinstance(ship_type, bool) or not isinstance(ship_type, int):
            raise DecodeError("bad_ship_type", repr(ship_type))
        static.ship_type = ship_type
    for name in ("length_m", "width_m"):
        value = obj.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DecodeError(f"bad_{name}", repr(value))
            setattr(static, name, float(value))
    return static


def record_to_wire(record: Record) -> dict[str, Any]:
    return record.to_wire() if isinstance(record, Position) else static_to_wire(record)


def record_from_wire(obj: Any) -> Record:
    """One record of a frame; raises :class:`DecodeError` with a reason label."""
    if isinstance(obj, dict) and obj.get("type") == STATIC_TYPE:
        return static_from_wire(obj)
    return Position.from_wire(obj)


def entity_key(record: Record) -> str:
    return record.entity_id if isinstance(record, Position) else record.mmsi


def entity_type(record: Record) -> str:
    return record.entity_type if isinstance(record, Position) else "vessel"


def encode_frame(wire_records: Sequence[dict[str, Any]]) -> bytes:
    return orjson.dumps(list(wire_records))


def decode_frame(raw: bytes | None) -> list[Any]:
    """The JSON elements of a message value (one object counts as a frame of one)."""
    if raw is None:
        raise DecodeError("empty_value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("bad_json", str(exc)[:200]) from exc
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        return [data]
    raise DecodeError("not_a_record", type(data).__name__)


def is_end_of_input(headers: Iterable[tuple[str, bytes]] | None) -> bool:
    return any(k == CONTROL_HEADER and v == END_OF_INPUT for k, v in headers or ())


def input_end(headers: Iterable[tuple[str, bytes]] | None) -> float | None:
    """The end-of-input marker's newest event time of the whole input (None: absent or unreadable)."""
    for k, v in headers or ():
        if k == INPUT_END_HEADER:
            try:
                ts = float(v)
            except ValueError:
                return None
            return ts if math.isfinite(ts) else None
    return None


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's ``Utils.murmur2``), as an unsigned 32-bit value."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = length & ~3
    extra = length % 4
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


class Partitioner:
    """Kafka's default partitioner (murmur2 of the key bytes), cached per key."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._cache: dict[str, int] = {}

    def __call__(self, key: str) -> int:
        p = self._cache.get(key)
        if p is None:
            if len(self._cache) > 1_000_000:
                self._cache.clear()
            p = self._cache[key] = (murmur2(key.encode()) & 0x7FFFFFFF) % self.partitions
        return p


# --- alerts ------------------------------------------------------------------------------
def alert_value(alert: Alert) -> bytes:
    return orjson.dumps(alert.to_wire())


def cloudevents_headers(alert: Alert) -> Headers:
    """CloudEvents 1.0 Kafka protocol binding, binary mode: attributes as ``ce_`` headers."""
    subject = ",".join(f"{e.type}:{e.id}" for e in alert.entities)
    return [
        ("ce_specversion", CE_SPECVERSION.encode()),
        ("ce_type", (CE_TYPE_PREFIX + alert.kind).encode()),
        ("ce_source", f"{CE_SOURCE}:{alert.detector.name}".encode()),
        ("ce_id", f"{alert.id}:{alert.revision}".encode()),
        ("ce_time", to_iso(alert.end_ts).encode()),
        ("ce_subject", subject.encode()),
        ("content-type", b"application/json"),
    ]


def decode_alert(raw: bytes | None) -> Alert:
    if raw is None:
        raise DecodeError("empty_value")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("bad_json", str(exc)[:200]) from exc
    if not isinstance(obj, dict):
        raise DecodeError("bad_alert", type(obj).__name__)
    return Alert.from_wire(obj)


# --- dead letters ------------------------------------------------------------------------
def dead_letter_headers(
    reason: str, topic: str, partition: int, offset: int, detail: str = "", index: int | None = None
) -> Headers:
    """Where a bad record came from and why it was refused; the value is its raw bytes."""
    headers: Headers = [
        ("dlq_reason", reason.encode()),
        ("dlq_topic", topic.encode()),
        ("dlq_partition", str(partition).encode()),
        ("dlq_offset", str(offset).encode()),
    ]
    if index is not None:
        headers.append(("dlq_index", str(index).encode()))  # position inside a frame
    if detail:
        headers.append(("dlq_detail", detail[:500].encode()))
    return headers


def header_dict(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {k: (v or b"").decode("utf-8", "replace") for k, v in headers or ()}
