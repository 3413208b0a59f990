"""Labelled events: what an analyst says happened, to score alerts against (``vigiamar backtest``).

Two equivalent file formats (full description and examples in ``docs/workbench.md``):

CSV (``.csv``, ``.csv.gz``), one event per row, ``#`` lines are comments::

    # kinds: loitering, rendezvous
    id,kind,entities,start,end,note
    L001,loitering,367584050,2020-06-04T12:47:14Z,2020-06-04T15:11:54Z,slow 2.4 h 23 nm offshore
    L002,rendezvous,367000001;367000002,2020-06-05T10:00Z,2020-06-05T12:10Z,

JSON (``.json``): a list of events, or an object ``{"kinds": [...], "labels": [...]}``; each
event is ``{"id"?, "kind", "entities": ["367000001", ...], "start", "end", "note"?}``.

* ``kind`` is an alert kind (``models.alert.ALERT_KINDS``); ``entities`` the entity ids
  (MMSI, ICAO24, drone id) in any order, ``;``-separated in CSV; ``start`` and ``end`` are ISO
  8601 with a zone (``Z`` or ``+00:00``), ``end`` not before ``start``; ``id`` defaults to the
  row/entry number; ``note`` is free text (the origin of the label, what was seen).
* ``kinds`` (CSV: a ``# kinds: a, b`` comment) declares which kinds the file covers
  completely. An alert of a covered kind with no label is a false alarm, even when the file
  has no event of that kind (a checked true negative). Without it, the covered kinds are the
  kinds that appear in the file.

Every problem raises :class:`LabelError` naming the file, the line (CSV) or entry (JSON) and
the field.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from models.alert import ALERT_KINDS
from models.errors import InputError
from models.timeutil import to_iso

REQUIRED_FIELDS = ("kind", "entities", "start", "end")
OPTIONAL_FIELDS = ("id", "note")
ENTITY_SEPARATOR = ";"


class LabelError(InputError):
    """A labels file cannot be used; the message names the file, the line or entry and the field."""


@dataclass(frozen=True, slots=True)
class Label:
    """One labelled event."""

    id: str
    kind: str
    entities: tuple[str, ...]  # sorted entity ids
    start_ts: float
    end_ts: float
    note: str = ""

    @property
    def duration_s(self) -> float:
        return self.end_ts - self.start_ts

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "entities": list(self.entities),
            "start": to_iso(self.start_ts),
            "end": to_iso(self.end_ts),
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class LabelSet:
    labels: tuple[Label, ...]
    kinds: tuple[str, ...]  # kinds the file covers completely (declared, else present)
    source: str = ""

    def of_kind(self, kind: str) -> list[Label]:
        return [lab for lab in self.labels if lab.kind == kind]


def load_labels(path: str | Path) -> LabelSet:
    """Read and validate a labels file (CSV or JSON, chosen by the file name)."""
    p = Path(path)
    name = p.name.lower().removesuffix(".gz")
    try:
        raw = gzip.decompress(p.read_bytes()) if p.name.lower().endswith(".gz") else p.read_bytes()
        text = raw.decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise LabelError(str(p), "no such labels file") from exc
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise LabelError(str(p), f"cannot read: {exc}") from exc
    if name.endswith(".json"):
        return parse_json(text, str(p))
    if name.endswith(".csv"):
        return parse_csv(text, str(p))
    raise LabelError(str(p), "unknown labels format: name the file .csv or .json (optionally .gz)")


def parse_csv(text: str, source: str = "<labels>") -> LabelSet:
    declared: tuple[str, ...] | None = None
    rows: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            if body.lower().startswith("kinds:"):
                declared = _kinds([k for k in body[6:].replace(",", " ").split() if k], source, lineno)
            continue
        rows.append((lineno, line))
    if not rows:
        raise LabelError(source, "no header row (expected: id,kind,entities,start,end,note)")
    header_line, header_text = rows[0]
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    _check_header(header, source, header_line)
    labels: list[Label] = []
    for lineno, line in rows[1:]:
        values = next(csv.reader(io.StringIO(line)))
        if len(values) != len(header):
            raise LabelError(source, f"{len(values)} fields, the header has {len(header)}", lineno)
        rec = dict(zip(header, (v.strip() for v in values), strict=True))
        ents = [e.strip() for e in rec["entities"].split(ENTITY_SEPARATOR)]
        labels.append(_label({**rec, "entities": ents}, f"L{len(labels) + 1:03d}", source, lineno))
    return _labelset(labels, declared, source)


def parse_json(text: str, source: str = "<labels>") -> LabelSet:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise LabelError(source, f"not valid JSON: {exc}") from exc
    declared: tuple[str, ...] | None = None
    if isinstance(doc, dict):
        unknown = sorted(set(doc) - {"kinds", "labels", "origin", "note"})
        if unknown:
            raise LabelError(source, f"unknown top-level key {unknown[0]!r} (known: kinds, labels, origin, note)")
        if "kinds" in doc:
            if not isinstance(doc["kinds"], list):
                raise LabelError(source, "'kinds' must be a list of alert kinds")
            declared = _kinds([str(k) for k in doc["kinds"]], source, None)
        doc = doc.get("labels", [])
    if not isinstance(doc, list):
        raise LabelError(source, 'expected a list of labels or {"kinds": [...], "labels": [...]}')
    labels = []
    for n, entry in enumerate(doc, start=1):
        where = f"{source}: label #{n}"
        if not isinstance(entry, dict):
            raise LabelError(where, f"expected an object, got {type(entry).__name__}")
        unknown = sorted(set(entry) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
        if unknown:
            raise LabelError(where, f"unknown field {unknown[0]!r} (known: {', '.join(_known())})")
        ents = entry.get("entities")
        if isinstance(ents, str | int):
            ents = [ents]
        if not isinstance(ents, list):
            raise LabelError(where, "entities: expected a list of entity ids")
        rec = {k: entry[k] for k in entry if k != "entities"}
        labels.append(_label({**rec, "entities": [str(e).strip() for e in ents]}, f"L{n:03d}", where, None))
    return _labelset(labels, declared, source)


# --- validation ---------------------------------------------------------------------------------
def _known() -> tuple[str, ...]:
    return (*OPTIONAL_FIELDS[:1], *REQUIRED_FIELDS, *OPTIONAL_FIELDS[1:])


def _check_header(header: list[str], source: str, line: int) -> None:
    missing = [f for f in REQUIRED_FIELDS if f not in header]
    if missing:
        raise LabelError(source, f"header lacks column {missing[0]!r} (columns: {', '.join(_known())})", line)
    unknown = [h for h in header if h not in REQUIRED_FIELDS and h not in OPTIONAL_FIELDS]
    if unknown:
        raise LabelError(source, f"unknown column {unknown[0]!r} (columns: {', '.join(_known())})", line)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise LabelError(source, f"column {dupes[0]!r} appears twice", line)


def _kinds(kinds: Iterable[str], source: str, line: int | None) -> tuple[str, ...]:
    out = []
    for kind in kinds:
        if kind not in ALERT_KINDS:
            raise LabelError(source, f"kinds: {kind!r} is not an alert kind ({', '.join(ALERT_KINDS)})", line)
        if kind not in out:
            out.append(kind)
    return tuple(out)


def _label(rec: Mapping[str, Any], default_id: str, source: str, line: int | None) -> Label:
    for key in REQUIRED_FIELDS:
        if key not in rec or rec[key] in ("", None, []):
            raise LabelError(source, f"{key}: missing", line)
    kind = str(rec["kind"]).strip()
    if kind not in ALERT_KINDS:
        raise LabelError(source, f"kind: {kind!r} is not an alert kind ({', '.join(ALERT_KINDS)})", line)
    entities = [e for e in rec["entities"] if e]
    if not entities or len(entities) != len(rec["entities"]):
        raise LabelError(source, f"entities: empty entity id in {rec['entities']!r}", line)
    if len(set(entities)) != len(entities):
        raise LabelError(source, f"entities: an id appears twice in {entities!r}", line)
    start = _time(rec["start"], "start", source, line)
    end = _time(rec["end"], "end", source, line)
    if end < start:
        raise LabelError(source, f"end {rec['end']} is before start {rec['start']}", line)
    note = rec.get("note")
    return Label(
        id=str(rec.get("id") or default_id).strip(),
        kind=kind,
        entities=tuple(sorted(entities)),
        start_ts=start,
        end_ts=end,
        note="" if note is None else str(note),
    )


def _time(value: Any, key: str, source: str, line: int | None) -> float:
    text = str(value).strip()
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise LabelError(source, f"{key}: {text!r} is not an ISO 8601 time (e.g. 2020-06-04T12:47:14Z)", line) from exc
    if dt.tzinfo is None:
        raise LabelError(source, f"{key}: {text!r} has no time zone; write UTC as ...Z", line)
    return dt.timestamp()


def _labelset(labels: list[Label], declared: tuple[str, ...] | None, source: str) -> LabelSet:
    seen: set[str] = set()
    for lab in labels:
        if lab.id in seen:
            raise LabelError(source, f"id {lab.id!r} is used twice")
        seen.add(lab.id)
    present = tuple(k for k in ALERT_KINDS if any(lab.kind == k for lab in labels))
    if declared is not None:
        undeclared = [k for k in present if k not in declared]
        if undeclared:
            raise LabelError(source, f"kinds: labels of kind {undeclared[0]!r} but it is not declared in kinds")
    kinds = declared if declared is not None else present
    ordered = tuple(sorted(labels, key=lambda lab: (lab.start_ts, lab.kind, lab.entities, lab.id)))
    return LabelSet(ordered, kinds, source)
