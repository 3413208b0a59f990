"""Known airfields: the nearest one to a position, through a grid cache, with no download.

Data: the PyPI package ``airportsdata`` (MIT, Mike Borsetti; ~28,000 airports, airstrips and
heliports with ICAO/FAA codes, coordinates and elevation in feet), read from the
``airports.csv`` it ships. Any CSV with the same columns (``icao, iata, name, country,
elevation, lat, lon``) can replace it (:meth:`AirfieldIndex.load` with a path).

Aerial detectors ask for the nearest airfield on low or slow fixes, and aircraft revisit the
same areas, so answers come from a bounded memo (``functools.lru_cache``) of quantised cells,
as :class:`models.reference.PortIndex` does for ports: a cell of ``CELL_DEG`` remembers the
airfields that can be nearest to *any* point inside it, sorted by a lower bound of their
distance over the cell; a query walks that short list with an early exit (pure Python floats,
haversine on a spherical Earth). Distances are exact up to ``max_distance_m``; farther is
``inf`` (and ``nearest`` gives ``None``).
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from models.geo import haversine_m, nearest_of
from models.units import DEG_TO_RAD, EARTH_RADIUS_M, M_PER_DEG_LAT

__all__ = ["Airfield", "AirfieldIndex", "default_airfields"]

_TWO_R: Final = 2.0 * EARTH_RADIUS_M
_COLUMNS: Final = ("icao", "name", "country", "elevation", "lat", "lon")
_BUCKET_DEG: Final = 1.0
# (lower bound of the distance over the cell in metres, lat rad, lon rad, cos lat, index), by bound
_Candidate = tuple[float, float, float, float, int]


@dataclass(frozen=True, slots=True)
class Airfield:
    """One airport, airstrip or heliport."""

    icao: str
    iata: str
    name: str
    country: str
    lat: float
    lon: float
    elevation_ft: float


class AirfieldIndex:
    """Nearest airfield (great-circle distance) within ``max_distance_m``."""

    CELL_DEG = 0.1

    def __init__(
        self, airfields: list[Airfield], *, max_distance_m: float = 100_000.0, cache_size: int = 65_536
    ) -> None:
        self.airfields = airfields
        self.max_distance_m = float(max_distance_m)
        self._inv = 1.0 / self.CELL_DEG
        self._buckets: dict[tuple[int, int], list[int]] = {}
        for i, a in enumerate(airfields):
            key = (math.floor(a.lat / _BUCKET_DEG), _wrap_bucket(math.floor(a.lon / _BUCKET_DEG)))
            self._buckets.setdefault(key, []).append(i)
        self._rad = [(a.lat * DEG_TO_RAD, a.lon * DEG_TO_RAD, math.cos(a.lat * DEG_TO_RAD)) for a in airfields]
        self._cell: Callable[[int, int], tuple[_Candidate, ...]] = functools.lru_cache(maxsize=cache_size)(
            self._build_cell
        )

    def __len__(self) -> int:
        return len(self.airfields)

    @classmethod
    def load(cls, path: str | Path | None = None, **kwargs: Any) -> AirfieldIndex:
        """Read ``airports.csv`` (default: the one the ``airportsdata`` package ships).

        Raises ``FileNotFoundError`` / ``ValueError`` (naming the line) for unusable files.
        """
        if path is None:
            with resources.as_file(resources.files("airportsdata") / "airports.csv") as shipped:
                return cls(_read_csv(shipped), **kwargs)
        return cls(_read_csv(Path(path)), **kwargs)

    # ------------------------------------------------------------ queries (hot path)

    def _search(self, lat: float, lon: float) -> tuple[float, int]:
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"position outside lat −90…90, lon −180…180: {lat}, {lon}")
        inv = self._inv
        cands = self._cell(int((lat + 90.0) * inv), int((lon + 180.0) * inv))
        best, best_i = nearest_of(cands, lat, lon)
        if best > self.max_distance_m:
            return math.inf, -1
        return best, best_i

    def distance_m(self, lat: float, lon: float) -> float:
        """Metres to the nearest airfield, ``inf`` beyond ``max_distance_m``."""
        return self._search(lat, lon)[0]

    def nearest(self, lat: float, lon: float) -> tuple[Airfield, float] | None:
        """(airfield, metres) of the nearest airfield within ``max_distance_m``, else ``None``."""
        d, i = self._search(lat, lon)
        return None if i < 0 else (self.airfields[i], d)

    def within(self, lat: float, lon: float, radius_m: float) -> bool:
        return radius_m > 0.0 and self._search(lat, lon)[0] <= radius_m

    def cache_info(self) -> Any:
        return self._cell.cache_info()  # type: ignore[attr-defined]

    # ------------------------------------------------------------ building cells

    def _build_cell(self, iy: int, ix: int) -> tuple[_Candidate, ...]:
        size = self.CELL_DEG
        lat0 = iy * size - 90.0
        lon0 = ix * size - 180.0
        lat1 = min(90.0, lat0 + size)
        lon1 = lon0 + size
        w = self.max_distance_m / M_PER_DEG_LAT + size
        c = math.cos(min(89.0, max(abs(lat0 - w), abs(lat1 + w))) * DEG_TO_RAD)
        wx = min(180.0, w / c)
        lows: list[tuple[float, float, int]] = []
        for i, lat, lon in self._gather(lat0 - w, lat1 + w, lon0 - wx, lon1 + wx):
            # the nearest point of the cell (clamped), with slack: a lower bound
            lo = haversine_m(lat, lon, min(max(lat, lat0), lat1), min(max(lon, lon0), lon1)) * 0.999 - 1.0
            hi = max(haversine_m(lat, lon, y, x) for y in (lat0, lat1) for x in (lon0, lon1)) * 1.001 + 1.0
            lows.append((lo, hi, i))
        if not lows:
            return ()
        upper = min(min(hi for _, hi, _ in lows), self.max_distance_m)
        kept = sorted((lo, i) for lo, _, i in lows if lo <= upper)
        rad = self._rad
        return tuple((lo, rad[i][0], rad[i][1], rad[i][2], i) for lo, i in kept)

    def _gather(self, lat_lo: float, lat_hi: float, lon_lo: float, lon_hi: float) -> list[tuple[int, float, float]]:
        """Airfields in the 1° buckets overlapping the window; longitudes are shifted to the window."""
        out: list[tuple[int, float, float]] = []
        by0 = math.floor(max(-90.0, lat_lo) / _BUCKET_DEG)
        by1 = math.floor(min(90.0, lat_hi) / _BUCKET_DEG)
        if lon_hi - lon_lo >= 360.0:
            lon_lo, lon_hi = -180.0, 180.0
        bx0 = math.floor(lon_lo / _BUCKET_DEG)
        bx1 = math.floor(lon_hi / _BUCKET_DEG)
        seen: set[int] = set()
        for by in range(by0, by1 + 1):
            for bx in range(bx0, bx1 + 1):
                wrapped = _wrap_bucket(bx)
                for i in self._buckets.get((by, wrapped), ()):
                    if i in seen:
                        continue
                    seen.add(i)
                    a = self.airfields[i]
                    lon = a.lon + (bx - wrapped) * _BUCKET_DEG  # a whole turn east or west, or none
                    out.append((i, a.lat, lon))
        return out


def _wrap_bucket(bx: int) -> int:
    span = round(360.0 / _BUCKET_DEG)
    return (bx + span // 2) % span - span // 2


def _read_csv(path: Path) -> list[Airfield]:
    out: list[Airfield] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                lat = float(row["lat"])
                lon = float(row["lon"])
                elev = float(row["elevation"]) if row["elevation"].strip() else 0.0
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{line}: {exc}") from exc
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or not math.isfinite(elev):
                raise ValueError(f"{path}:{line}: position or elevation out of range")
            out.append(
                Airfield(
                    icao=row["icao"].strip(),
                    iata=(row.get("iata") or "").strip(),
                    name=row["name"].strip(),
                    country=row["country"].strip(),
                    lat=lat,
                    lon=lon,
                    elevation_ft=elev,
                )
            )
    return out


@functools.cache
def default_airfields() -> AirfieldIndex:
    """The ``airportsdata`` index, loaded once per process (about 0.2 s)."""
    return AirfieldIndex.load()
