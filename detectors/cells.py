"""Spatial cells and the records the cell engine moves between its keyed stages.

The grid
--------
Rows are bands of ``cell_deg`` degrees of latitude (0.05° ≈ 5.6 km by default). Each row
has as many columns as fit while keeping every cell at least ``cell_deg`` degrees of
latitude *wide in metres* at the row's poleward edge, so a cell is never narrower than
it is tall (≈ 5.6 km × 5.6–11 km), from the equator to Alaska. A fixed-degree grid would
shrink to 2.8 km wide at 60° N: narrower than a 3 km pairing radius, which then reaches
past the 8 neighbouring cells.

Why 0.05°: the cell must be at least as large as the largest pairing radius (3 km for
dark rendezvous, 500 m for rendezvous) so that everything within reach of a position
lies in its own cell or a neighbour; larger cells put more vessels into each comparison
(a busy anchorage cell holds tens of slow vessels, not thousands), smaller ones copy
more positions into neighbours. It is also the zone index's cell (``models.zones``).

A position is stored in its *home* cell and copied (a "ghost") into every other cell
whose area lies within the pairing radius of it: near the middle of a cell that is no
copy at all, near an edge one, near a corner three. Each cell then compares only what it
holds: nothing reads another cell's state, which is what lets cells live on different
workers (the copies are the re-keying of a position by location).

Cell ids are integers (``row * 2**16 + column``); :func:`cell_key` gives the text form
used as a Kafka/faust key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Protocol

from detectors.base import Environment
from models.alert import Alert, DetectorInfo
from models.position import EntityType
from models.units import DEG_TO_RAD, M_PER_DEG_LAT

CELL_DEG: Final = 0.05
_COL_STRIDE: Final = 1 << 16


class Grid:
    """Latitude bands of ``cell_deg``; columns per band keep cells at least as wide as tall."""

    def __init__(self, cell_deg: float = CELL_DEG) -> None:
        if not 0.005 <= cell_deg <= 1.0:
            raise ValueError(f"cell_deg {cell_deg} outside [0.005, 1]")
        self.cell_deg = cell_deg
        self.nrows = round(180.0 / cell_deg)
        self.min_cell_m = cell_deg * M_PER_DEG_LAT  # smallest side of any cell, in metres
        self._ncols: list[int] = []
        self._step: list[float] = []
        for row in range(self.nrows):
            south = -90.0 + row * cell_deg
            poleward = max(abs(south), abs(south + cell_deg))
            ncols = max(1, int(360.0 * math.cos(poleward * DEG_TO_RAD) / cell_deg))
            self._ncols.append(ncols)
            self._step.append(360.0 / ncols)

    def row(self, lat: float) -> int:
        r = int((lat + 90.0) / self.cell_deg)
        return r if r < self.nrows else self.nrows - 1

    def home(self, lat: float, lon: float) -> int:
        """The cell holding a position."""
        r = int((lat + 90.0) / self.cell_deg)
        if r >= self.nrows:
            r = self.nrows - 1
        c = int((lon + 180.0) / self._step[r])
        if c >= self._ncols[r]:
            c = 0  # lon = 180 is lon = -180
        return r * _COL_STRIDE + c

    def cells_within(self, lat: float, lon: float, radius_m: float) -> list[int]:
        """The home cell first, then every other cell whose area may lie within ``radius_m``.

        Conservative (the disc's bounding box): a cell may be listed that the disc only
        nearly reaches, never one it reaches left out.
        """
        cd = self.cell_deg
        dlat = radius_m / M_PER_DEG_LAT
        r0 = int((lat - dlat + 90.0) / cd)
        r1 = int((lat + dlat + 90.0) / cd)
        home = self.home(lat, lon)
        if r0 == r1:
            r = r0 if r0 < self.nrows else self.nrows - 1
            step = self._step[r]
            x = (lon + 180.0) / step
            dlon = radius_m / (M_PER_DEG_LAT * max(math.cos(lat * DEG_TO_RAD), 1e-9)) / step
            if int(x - dlon) == int(x + dlon) and x - dlon >= 0.0 and x + dlon < self._ncols[r]:
                return [home]
        out = [home]
        poleward = min(90.0, max(abs(lat - dlat), abs(lat + dlat)))
        cos_p = math.cos(poleward * DEG_TO_RAD)
        dlon_deg = 180.0 if cos_p < 1e-9 else min(180.0, radius_m / (M_PER_DEG_LAT * cos_p))
        for r in range(max(0, r0), min(self.nrows - 1, r1) + 1):
            step = self._step[r]
            ncols = self._ncols[r]
            if dlon_deg >= 180.0 or 2 * dlon_deg >= 360.0 - step:
                cols = range(ncols)
            else:
                cols = range(
                    math.floor((lon - dlon_deg + 180.0) / step), math.floor((lon + dlon_deg + 180.0) / step) + 1
                )
            for c in cols:
                cid = r * _COL_STRIDE + c % ncols
                if cid not in out:
                    out.append(cid)
        return out

    def bounds(self, cell_id: int) -> tuple[float, float, float, float]:
        """(south, west, north, east) of a cell, degrees."""
        r, c = divmod(cell_id, _COL_STRIDE)
        south = -90.0 + r * self.cell_deg
        west = -180.0 + c * self._step[r]
        return south, west, south + self.cell_deg, west + self._step[r]


def cell_key(cell_id: int) -> str:
    """Text form of a cell id (row/column), for message keys and logs."""
    r, c = divmod(cell_id, _COL_STRIDE)
    return f"{r}/{c}"


def sample_key(entity_type: str, entity_id: str) -> str:
    """An entity's key in the cell engine (``Sample.key``), e.g. ``"vessel:367584050"``."""
    return f"{entity_type}:{entity_id}"


def split_sample_key(key: str) -> tuple[str, str]:
    """(entity type, entity id) of a :func:`sample_key`."""
    etype, _, eid = key.partition(":")
    return etype, eid


def is_ship_station(entity_id: str) -> bool:
    """An MMSI of a ship station (200000000–799999999): not a buoy, net marker, base station or SAR craft."""
    return len(entity_id) == 9 and entity_id.isdigit() and "2" <= entity_id[0] <= "7"


def near_port_or_shore(env: Environment, lat: float, lon: float, port_m: float, shore_m: float) -> bool:
    """In port (within ``port_m`` of one), closer than ``shore_m`` to the shoreline, or in an exclusion zone."""
    geo = env.geography
    if port_m > 0 and geo.distance_to_port_m(lat, lon) <= port_m:
        return True
    if shore_m > 0 and geo.distance_to_shore_m(lat, lon) < shore_m:
        return True
    return bool(env.zones.at(lat, lon, "exclusion"))


class SeaCheck:
    """:func:`near_port_or_shore` for the positions of moving entities, with far fewer look-ups.

    The distances found for an entity bound the answer nearby: until it has moved farther
    than the margin between a distance and its threshold (triangle inequality, less
    ``SAFETY_M`` for the reference data's tolerance, at most ``MAX_MARGIN_M``), the answer
    cannot change. A vessel 20 km from any port needs one look-up, not one per minute. This
    is a cache, not detection state: dropping it changes nothing but time.
    """

    SAFETY_M = 200.0
    MAX_MARGIN_M = 20_000.0
    MAX_ENTRIES = 200_000

    def __init__(self, env: Environment, port_m: float, shore_m: float) -> None:
        self.env = env
        self.port_m = port_m
        self.shore_m = shore_m
        self._zones = any(z.role == "exclusion" for z in env.zones.zones)
        # key -> (lat, lon, margin_m, excluded, cosine bound for the longitude scale)
        self._memo: dict[str, tuple[float, float, float, bool, float]] = {}

    def excluded(self, key: str, lat: float, lon: float) -> bool:
        if self._zones and self.env.zones.at(lat, lon, "exclusion"):
            return True
        memo = self._memo.get(key)
        if memo is not None:
            # an upper bound of the distance moved (L1 in a local plane, cosine of the lower latitude)
            moved = (abs(lat - memo[0]) + abs(lon - memo[1]) * memo[4]) * M_PER_DEG_LAT
            if moved < memo[2]:
                return memo[3]
        geo = self.env.geography
        margin = self.MAX_MARGIN_M
        out = False
        if self.port_m > 0:
            d = geo.distance_to_port_m(lat, lon)
            out = d <= self.port_m
            margin = min(margin, abs(d - self.port_m))
        if self.shore_m > 0 and not out:
            d = geo.distance_to_shore_m(lat, lon)
            out = d < self.shore_m
            margin = min(margin, abs(d - self.shore_m))
        if len(self._memo) >= self.MAX_ENTRIES:
            self._memo.clear()
        cos_bound = math.cos(max(0.0, abs(lat) - 0.2) * DEG_TO_RAD)  # the largest within 0.2° of latitude
        self._memo[key] = (lat, lon, min(margin - self.SAFETY_M, 0.2 * M_PER_DEG_LAT), out, cos_bound)
        return out


_SHARED: dict[tuple[int, int, float, float], SeaCheck] = {}
_SHARED_MAX: Final = 8


def shared_sea_check(env: Environment, port_m: float, shore_m: float) -> SeaCheck:
    """One :class:`SeaCheck` per reference data and thresholds, for every detector that asks.

    Loitering, rendezvous, dark rendezvous and air–sea rendezvous judge the same vessels against
    the same port and shore distances; sharing the cache lets one look-up serve them all. The
    answers are those of a SeaCheck of their own (it is a cache of exact answers). A few
    environments are remembered (tests and a replay build several), the oldest dropped first;
    an entry keeps its environment alive, so the ids in its key stay unique while it is there.
    """
    key = (id(env.zones), id(env.geography), port_m, shore_m)
    check = _SHARED.get(key)
    if check is None:
        if len(_SHARED) >= _SHARED_MAX:
            del _SHARED[next(iter(_SHARED))]
        check = _SHARED[key] = SeaCheck(env, port_m, shore_m)
    return check


def finite_or_none(value: float) -> int | None:
    return round(value) if math.isfinite(value) else None


# ---------------------------------------------------------------------------- records


# init=False: a written __init__ is compiled, a generated one runs interpreted (test_written_init.py)
@dataclass(slots=True, init=False)
class Sample:
    """One entity at one slot boundary: interpolated between two fixes, or a fix snapped to it.

    ``key`` (``"vessel:367000000"``) orders entities: a pair is owned by the cell that is the
    home of its smaller key's sample. ``home`` is the cell of this position.
    """

    key: str
    etype: EntityType
    eid: str
    ts: float
    lat: float
    lon: float
    speed_kn: float | None
    home: int
    gap_s: float  # span of the two fixes it was interpolated between; 0 for a fix at (or snapped to) it
    name: str | None = None
    ship_type: int | None = None
    nav_status: int | None = None
    altitude_ft: float | None = None  # of the fix that closes the interpolation (aircraft)

    def __init__(
        self,
        key: str,
        etype: EntityType,
        eid: str,
        ts: float,
        lat: float,
        lon: float,
        speed_kn: float | None,
        home: int,
        gap_s: float,
        name: str | None = None,
        ship_type: int | None = None,
        nav_status: int | None = None,
        altitude_ft: float | None = None,
    ) -> None:
        self.key = key
        self.etype = etype
        self.eid = eid
        self.ts = ts
        self.lat = lat
        self.lon = lon
        self.speed_kn = speed_kn
        self.home = home
        self.gap_s = gap_s
        self.name = name
        self.ship_type = ship_type
        self.nav_status = nav_status
        self.altitude_ft = altitude_ft


@dataclass(slots=True)
class Silence:
    """An entity that stopped reporting at ``(t1, lat1, lon1)``; reappeared at ``t2`` when known."""

    key: str
    etype: EntityType
    eid: str
    name: str | None
    t1: float
    lat1: float
    lon1: float
    speed1_kn: float | None
    t2: float | None = None
    lat2: float = 0.0
    lon2: float = 0.0
    fixes: int = 0  # fixes of the entity seen before the silence


# ------------------------------------------------------------------------- protocols


class PairDetector(Protocol):
    """A pairwise detector run by the cell engine on time-slotted samples.

    The engine compares two samples of the same slot only when the detector ``accepts``
    both, their entity types form one of ``entity_pairs`` (sorted tuples) and they are
    within ``radius_m``; ``observe`` then gets them smaller key first, in slot order for
    each pair. Per-pair state is a small dataclass the engine keeps in the owning cell.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    entity_pairs: ClassVar[frozenset[tuple[str, str]]]
    info: DetectorInfo
    radius_m: float
    slot_s: float
    max_interp_gap_s: float  # samples interpolated across at most this; the engine waits for the largest
    memory_s: float  # how long a pair state may outlive the pair's last sample (e.g. a merge gap)
    speed_limit_kn: float  # samples faster than this are never accepted (inf: no limit)
    # optional ``speed_limits_kn: dict[str, float]``: a lower limit for some entity types

    def accepts(self, s: Sample) -> bool: ...

    def observe(self, state: Any, a: Sample, b: Sample, distance_m: float) -> tuple[Any, list[Alert]]: ...

    def expire(self, state: Any, now: float) -> tuple[Any, list[Alert]]: ...

    def deadline(self, state: Any) -> float | None: ...


class SoloPairDetector(PairDetector, Protocol):
    """A pair detector that also follows its ``solo_types`` samples one by one ("no partner").

    After a slot's pairs are compared in a cell, ``observe_solo`` gets every accepted sample
    of those types homed there, in key order, with how many wanted partners were within
    ``radius_m`` of it at that slot (all of them are in the cell: copies reach it). Its
    state is kept beside the sample's own pair states (other key: its own key), so it moves
    with them on handoffs, and ``expire``/``deadline`` serve it as they serve pair states.
    """

    solo_types: ClassVar[frozenset[str]]

    def observe_solo(self, state: Any, s: Sample, partners: int) -> tuple[Any, list[Alert]]: ...


class AreaDetector(Protocol):
    """A detector over per-cell logs of samples and entities' silences (dark rendezvous).

    ``logs`` is offered one sample per entity per ``log_step_s`` and picks those worth
    remembering; the engine copies them into every cell within ``radius_m``. An entity that
    stays silent ``silence_s`` (and ``interval_factor`` times its usual reporting interval)
    produces an ``on_dark`` call in the cell of its last position; its next fix (within
    ``max_silence_s``) produces ``on_reappear``.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    entity_types: ClassVar[tuple[str, ...]]
    info: DetectorInfo
    radius_m: float
    log_step_s: float
    silence_s: float
    max_silence_s: float
    interval_factor: float  # a silence must also last this many times the entity's usual interval
    speed_limit_kn: float  # samples faster than this are never logged (inf: no limit)
    max_interp_gap_s: float  # samples interpolated across at most this; after a longer silence, the fix

    def new_cell(self) -> Any: ...

    def logs(self, s: Sample) -> bool: ...

    def on_log(self, cell: Any, s: Sample) -> list[Alert]: ...

    def on_dark(self, cell: Any, ev: Silence, now: float) -> list[Alert]: ...

    def close_marker(self, cell: Any, ev: Silence) -> tuple[list[Alert], frozenset[str]]: ...

    def on_reappear(self, cell: Any, ev: Silence, done: frozenset[str]) -> list[Alert]: ...

    def expire(self, cell: Any, now: float) -> list[Alert]: ...

    def deadline(self, cell: Any) -> float | None: ...

    def is_empty(self, cell: Any) -> bool: ...
