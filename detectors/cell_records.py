"""The records the cell engine's stages send each other: plain data, with a JSON-able wire form.

Stage 1 (:mod:`detectors.cell_slotting`, per entity) sends stage 2 (:mod:`detectors.cell_stage`,
per cell) *notes*; a stage-2 partition sends another one its *relays*. Each note names the
cells it concerns (:meth:`SampleNote.cells`, :meth:`SilenceNote.cells`): a streaming shell
sends one copy of it to each partition of the ``cells`` topic that holds one of those cells
(keyed by the first such cell), and that partition's stage takes the parts for its own cells.

* :class:`SampleNote`: one sample, the cells it is delivered to per channel (its home and
  the copies within each detector's radius), and the handoffs it causes: for a pair
  detector, the entity's previous accepted sample lay in another cell, whose owned pair
  states must move to the new home before the slot is compared.
* :class:`SilenceNote`: an entity went dark (concerns the cell of its last position) or
  reappeared (also the cell where it reappeared).
* :class:`PairStates` (relay): the owned pair states of one entity moving between cells
  held by different partitions, at the start of the slot of the handoff.
* :class:`Closed` (relay): for a reappearance whose two cells are held by different
  partitions, what the first cell's markers already reported (their companions are not
  reported again by the second).

Wire forms are plain values (``orjson`` writes them): a sample note is a compact list (it is
the commonest by far), every other note a dict; :func:`note_from_wire` reads any of them back,
and the dict form of sample notes that earlier versions wrote. Detector state inside
:class:`PairStates` goes through :mod:`detectors.state_codec`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from detectors import state_codec
from detectors.cells import Sample, Silence
from models.errors import DecodeError
from models.position import ENTITY_TYPES, EntityType

# Agenda phases at one event time: compare the slot, then silences, then deadlines.
SLOT: Final = 0
DARK: Final = 1
REAPPEAR: Final = 2
DUE: Final = 3


def _float(v: Any) -> float:
    out = float(v)
    if not math.isfinite(out):  # "nan" / "inf" would break the agenda's order and the snapshots
        raise ValueError(f"not a finite number: {v!r}")
    return out


_ENTITY_TYPES: dict[str, EntityType] = {t: t for t in ENTITY_TYPES}


def _fast_float(v: Any) -> float:
    """:func:`_float`, without the conversion for what ``orjson`` already read as a float (never NaN)."""
    return v if type(v) is float and v - v == 0.0 else _float(v)


def _int(v: Any) -> int:
    if type(v) is not int:  # a cell id, channel or detector index: only ever written as an integer
        raise TypeError(f"expected an integer, got {v!r}")
    return v


def _ints(vs: Any) -> list[int]:
    if type(vs) is not list or not all(type(v) is int for v in vs):
        raise TypeError(f"expected a list of cell ids, got {vs!r}")
    return vs


def sample_to_wire(s: Sample) -> list[Any]:
    """Compact form: the fields in a fixed order (the entity type and id are in the key)."""
    return [s.key, s.ts, s.lat, s.lon, s.speed_kn, s.home, s.gap_s, s.name, s.ship_type, s.nav_status, s.altitude_ft]


def sample_from_wire(w: Any) -> Sample:
    """A sample from :func:`sample_to_wire`'s list, or from the dict an earlier version wrote."""
    if isinstance(w, dict):
        return _sample_from_dict(w)
    key, ts, lat, lon, v, home, gap, name, ship_type, nav_status, alt = w
    prefix, sep, eid = key.partition(":")
    etype = _ENTITY_TYPES.get(prefix) if sep else None
    if etype is None:
        raise ValueError(f"not an entity key: {key!r}")
    return Sample(
        key, etype, eid, _fast_float(ts), _fast_float(lat), _fast_float(lon),
        None if v is None else _fast_float(v), _int(home), _fast_float(gap), name, ship_type, nav_status,
        None if alt is None else _fast_float(alt),
    )  # fmt: skip


def _sample_from_dict(d: dict[str, Any]) -> Sample:
    v, alt = d["v"], d.get("alt")
    return Sample(
        str(d["k"]), d["e"], str(d["i"]), _float(d["ts"]), _float(d["lat"]), _float(d["lon"]),
        None if v is None else _float(v), int(d["h"]), _float(d["g"]), d.get("n"), d.get("st"), d.get("ns"),
        None if alt is None else _float(alt),
    )  # fmt: skip


def silence_to_wire(ev: Silence) -> dict[str, Any]:
    return {
        "k": ev.key, "e": ev.etype, "i": ev.eid, "n": ev.name, "t1": ev.t1, "lat1": ev.lat1, "lon1": ev.lon1,
        "v1": ev.speed1_kn, "t2": ev.t2, "lat2": ev.lat2, "lon2": ev.lon2, "f": ev.fixes,
    }  # fmt: skip


def silence_from_wire(d: dict[str, Any]) -> Silence:
    v1, t2 = d["v1"], d["t2"]
    return Silence(
        str(d["k"]), d["e"], str(d["i"]), d.get("n"), _float(d["t1"]), _float(d["lat1"]), _float(d["lon1"]),
        None if v1 is None else _float(v1), None if t2 is None else _float(t2), _float(d["lat2"]),
        _float(d["lon2"]), int(d["f"]),
    )  # fmt: skip


# init=False: a written __init__ is compiled, a generated one runs interpreted (test_written_init.py)
@dataclass(slots=True, init=False)
class SampleNote:
    sample: Sample
    deliveries: list[tuple[int, list[int]]] = field(default_factory=list)  # (channel, cells)
    # (pair detector, from cell, to cell, slot of the entity's last sample in the old cell)
    handoffs: list[tuple[int, int, int, float]] = field(default_factory=list)

    def __init__(
        self,
        sample: Sample,
        deliveries: list[tuple[int, list[int]]] | None = None,
        handoffs: list[tuple[int, int, int, float]] | None = None,
    ) -> None:
        self.sample = sample
        self.deliveries = [] if deliveries is None else deliveries
        self.handoffs = [] if handoffs is None else handoffs

    def cells(self) -> list[int]:
        out: list[int] = []
        for _, cids in self.deliveries:
            out += [c for c in cids if c not in out]
        out += [src for _, src, _, _ in self.handoffs if src not in out]
        return out

    def to_wire(self) -> list[Any]:
        """``[sample, deliveries, handoffs]``: a list, where every other note is a dict (the
        commonest note by far, so the compact form: about half the bytes, and quicker to read)."""
        return [sample_to_wire(self.sample), self.deliveries, self.handoffs]


@dataclass(slots=True)
class SilenceNote:
    phase: int  # DARK or REAPPEAR
    when: float  # event time of the agenda entry
    event: Silence
    home1: int  # the cell of the last position before the silence
    home2: int  # the cell of the reappearance (REAPPEAR), else home1

    def cells(self) -> list[int]:
        return [self.home1] if self.home2 == self.home1 else [self.home1, self.home2]

    def to_wire(self) -> dict[str, Any]:
        return {"ph": self.phase, "w": self.when, "ev": silence_to_wire(self.event), "h1": self.home1, "h2": self.home2}


@dataclass(slots=True)
class PairStates:
    """Relay: the pair states ``key`` owns for pair detector ``index``, moving to cell ``dst`` at ``ts``."""

    index: int
    key: str
    ts: float
    src: int
    dst: int
    states: dict[str, Any]

    def cells(self) -> list[int]:
        return [self.dst]

    def to_wire(self) -> dict[str, Any]:
        return {
            "ps": self.index, "k": self.key, "ts": self.ts, "src": self.src, "dst": self.dst,
            "states": {k: state_codec.encode(v) for k, v in self.states.items()},
        }  # fmt: skip


@dataclass(slots=True)
class Closed:
    """Relay: the silence of ``key`` from ``t1`` ended; per area detector, the companions already reported."""

    key: str
    t1: float
    t2: float
    home2: int
    done: dict[int, list[str]]

    def cells(self) -> list[int]:
        return [self.home2]

    def to_wire(self) -> dict[str, Any]:
        return {
            "cl": self.key,
            "t1": self.t1,
            "t2": self.t2,
            "h2": self.home2,
            "done": [[j, v] for j, v in self.done.items()],
        }


Note = SampleNote | SilenceNote | PairStates | Closed


def note_from_wire(d: Any) -> Note:
    """Any note or relay from its wire form. Raises :class:`DecodeError`."""
    try:
        if type(d) is list:
            sample, deliveries, handoffs = d
            return SampleNote(
                sample_from_wire(sample),
                [(_int(ch), _ints(cids)) for ch, cids in deliveries],
                [(_int(i), _int(a), _int(b), _fast_float(t)) for i, a, b, t in handoffs],
            )
        if "s" in d:  # the dict form of an earlier version
            return SampleNote(
                sample_from_wire(d["s"]),
                [(int(ch), [int(c) for c in cids]) for ch, cids in d["d"]],
                [(int(i), int(a), int(b), _float(t)) for i, a, b, t in d["ho"]],
            )
        if "ph" in d:
            return SilenceNote(int(d["ph"]), _float(d["w"]), silence_from_wire(d["ev"]), int(d["h1"]), int(d["h2"]))
        if "ps" in d:
            states = {str(k): state_codec.decode(v) for k, v in d["states"].items()}
            return PairStates(int(d["ps"]), str(d["k"]), _float(d["ts"]), int(d["src"]), int(d["dst"]), states)
        if "cl" in d:
            done = {int(j): [str(k) for k in keys] for j, keys in d["done"]}
            return Closed(str(d["cl"]), _float(d["t1"]), _float(d["t2"]), int(d["h2"]), done)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError("bad_cell_note", repr(exc)) from exc
    raise DecodeError("bad_cell_note", "unknown note")


def number_notes(
    notes: list[Note],
    shard_of: Callable[[int], int],
    shards: dict[int, int],
    seqs: list[int],
    groups: dict[int, tuple[int, list[Any]]],
) -> None:
    """Number ``notes`` for the shards (partitions of cells) that hold their cells, into ``groups``.

    A note goes once to every shard holding one of its cells (:meth:`SampleNote.cells`),
    as ``[number, wire form]`` with the shard's next number (``seqs``: each shard's last).
    ``groups``: shard -> (the first cell that brought a note there, the numbered notes).
    ``shards`` memoises ``shard_of`` per cell id (cleared beyond a million cells).
    """
    for note in notes:
        wire: Any = None
        taken: list[int] = []
        for cid in note.cells():
            p = shards.get(cid)
            if p is None:
                if len(shards) > 1_000_000:
                    shards.clear()
                p = shard_of(cid)
                shards[cid] = p
            if p in taken:
                continue
            taken.append(p)
            if wire is None:
                wire = note.to_wire()
            group = groups.get(p)
            if group is None:
                group = (cid, [])
                groups[p] = group
            seqs[p] += 1
            group[1].append([seqs[p], wire])
