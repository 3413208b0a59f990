"""The alert record: the contract operations centres, analysts and tests read (see README)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from models.errors import DecodeError
from models.position import EntityType
from models.timeutil import parse_iso, to_iso

AlertKind = Literal[
    "loitering",
    "rendezvous",
    "dark_rendezvous",
    "ais_gap",
    "spoofing",
    "zone_entry",
    "air_orbit",
    "air_loiter",
    "air_low_slow",
    "air_landing",
    "air_sea_rendezvous",
]
ALERT_KINDS: Final[tuple[str, ...]] = (
    "loitering",
    "rendezvous",
    "dark_rendezvous",
    "ais_gap",
    "spoofing",
    "zone_entry",
    "air_orbit",
    "air_loiter",
    "air_low_slow",
    "air_landing",
    "air_sea_rendezvous",
)
AlertStatus = Literal["open", "update", "closed"]
ALERT_STATUSES: Final[tuple[str, ...]] = ("open", "update", "closed")
Severity = Literal["low", "medium", "high"]
SEVERITIES: Final[tuple[str, ...]] = ("low", "medium", "high")


@dataclass(slots=True, frozen=True, order=True)
class EntityRef:
    type: EntityType
    id: str
    name: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "name": self.name}


@dataclass(slots=True, frozen=True)
class DetectorInfo:
    name: str
    version: str
    config_hash: str

    def to_wire(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "config_hash": self.config_hash}


def alert_id(kind: str, entity_ids: list[str] | tuple[str, ...], start_ts: float, extra: str = "") -> str:
    """Deterministic id: the same pattern in the same input gets the same id in every shell.

    Built from the kind, the sorted entity ids, the start time (whole seconds) and an
    optional discriminator (e.g. a zone name). Readable prefix, hashed body.
    """
    basis = "|".join([kind, ",".join(sorted(entity_ids)), str(int(start_ts)), extra])
    digest = hashlib.blake2b(basis.encode(), digest_size=10).hexdigest()
    return f"{kind}-{digest}"


@dataclass(slots=True, frozen=True)
class Alert:
    """One revision of an alert. Consumers keep the highest revision per id."""

    id: str
    revision: int
    kind: str
    status: AlertStatus
    start_ts: float
    end_ts: float
    lat: float
    lon: float
    entities: tuple[EntityRef, ...]
    severity: Severity
    confidence: float
    detector: DetectorInfo
    evidence: dict[str, Any] = field(default_factory=dict)
    zones: tuple[str, ...] = ()
    agencies: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.end_ts - self.start_ts

    def with_routing(self, zones: tuple[str, ...], agencies: tuple[str, ...]) -> Alert:
        return replace(self, zones=zones, agencies=agencies)

    def with_names(self, names: dict[str, str]) -> Alert:
        """Fill entity names known to the shell (static data) without changing anything else."""
        if not any(e.name is None and e.id in names for e in self.entities):
            return self
        ents = tuple(EntityRef(e.type, e.id, names.get(e.id)) if e.name is None else e for e in self.entities)
        return replace(self, entities=ents)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "revision": self.revision,
            "kind": self.kind,
            "status": self.status,
            "start": to_iso(self.start_ts),
            "end": to_iso(self.end_ts),
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "entities": [e.to_wire() for e in self.entities],
            "severity": self.severity,
            "confidence": round(self.confidence, 3),
            "zones": list(self.zones),
            "agencies": list(self.agencies),
            "evidence": self.evidence,
            "detector": self.detector.to_wire(),
        }

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Alert:
        try:
            return cls(
                id=str(obj["id"]),
                revision=int(obj["revision"]),
                kind=str(obj["kind"]),
                status=obj["status"],
                start_ts=parse_iso(obj["start"]),
                end_ts=parse_iso(obj["end"]),
                lat=float(obj["lat"]),
                lon=float(obj["lon"]),
                entities=tuple(EntityRef(e["type"], str(e["id"]), e.get("name")) for e in obj["entities"]),
                severity=obj["severity"],
                confidence=float(obj["confidence"]),
                detector=DetectorInfo(**obj["detector"]),
                evidence=dict(obj.get("evidence") or {}),
                zones=tuple(obj.get("zones") or ()),
                agencies=tuple(obj.get("agencies") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError("bad_alert", str(exc)) from exc


def validate_alert_wire(obj: dict[str, Any]) -> list[str]:
    """Problems with one alert JSON object against the record contract (empty when valid)."""
    problems: list[str] = []
    required = {
        "id": str, "revision": int, "kind": str, "status": str, "start": str, "end": str,
        "lat": float, "lon": float, "entities": list, "severity": str, "confidence": float,
        "zones": list, "agencies": list, "evidence": dict, "detector": dict,
    }  # fmt: skip
    for key, typ in required.items():
        if key not in obj:
            problems.append(f"missing {key}")
        elif typ is float and isinstance(obj[key], int | float) and not isinstance(obj[key], bool):
            continue
        elif not isinstance(obj[key], typ):
            problems.append(f"{key} is {type(obj[key]).__name__}, not {typ.__name__}")
    if problems:
        return problems
    if obj["kind"] not in ALERT_KINDS:
        problems.append(f"kind {obj['kind']!r}")
    if obj["status"] not in ALERT_STATUSES:
        problems.append(f"status {obj['status']!r}")
    if obj["severity"] not in SEVERITIES:
        problems.append(f"severity {obj['severity']!r}")
    if not 0.0 <= obj["confidence"] <= 1.0:
        problems.append("confidence outside 0..1")
    if obj["revision"] < 1:
        problems.append("revision < 1")
    for key in ("start", "end"):
        if not obj[key].endswith("Z"):
            problems.append(f"{key} not UTC Z")
    if not problems and parse_iso(obj["end"]) < parse_iso(obj["start"]):
        problems.append("end before start")
    if not -90 <= obj["lat"] <= 90 or not -180 <= obj["lon"] <= 180:
        problems.append("lat/lon out of range")
    for ent in obj["entities"]:
        if not isinstance(ent, dict) or ent.get("type") not in ("vessel", "aircraft") or not ent.get("id"):
            problems.append(f"entity {ent!r}")
    if set(obj["detector"]) != {"name", "version", "config_hash"}:
        problems.append("detector fields")
    return problems
