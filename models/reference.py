"""Reference geography: distance to the nearest port and shore, and land, with no download.

Data (built by ``tools/build_reference.py``; origin and licences in ``config/reference/README.md``):

- ``ports.csv``: NGA World Port Index (3,696 ports), public domain;
- ``coastline.npz``: GSHHG intermediate-resolution rings (LGPL-3.0): the land/ocean shoreline,
  the Antarctic ice front, and lakes of 1000 km² or more (water) with their islands. Land is
  the even-odd interior of all rings.

Detectors ask for every slow position, and tracks revisit the same waters, so answers come
from a bounded memo (``functools.lru_cache``) of quantised cells. A cell of 0.02° remembers
the shore segments that can be nearest to *any* point inside it (sorted by their lower bound
over the cell), and the ring edges that cross it. A point is then answered in pure Python:

- land: a constant where no edge crosses the cell; else the cell's reference point status
  flipped by each edge crossed on a short path inside the cell (exact even-odd test);
- distance: 0.0 on land; a constant where the distance spread over the cell is within the
  tolerance (or beyond ``max_distance_m``: then a lower bound ≥ it); otherwise the exact
  point-to-segment distance over the candidates, in a local projection.

Cells with too many candidates or crossing edges split into 4 × 4 sub-cells, twice at most.
Cache misses use numpy (a bucket grid of segments, bounds of every segment over the cell).

Accuracy (spherical Earth, as :func:`models.geo.haversine_m`): shore distance within
max(100 m, 2 %) of the great-circle distance to the GSHHG shoreline up to ``max_distance_m``
(default 150 km; a few metres near the coast), farther answers are a lower bound ≥ it; port
distance exact (haversine) up to ``max_distance_m`` (default 200 km), farther is ``inf``.
``on_land`` is exact with respect to the (float32) GSHHG rings.
"""

from __future__ import annotations

import csv
import functools
import math
import zipfile
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from models.errors import ConfigError
from models.geo import nearest_of
from models.units import DEG_TO_RAD, EARTH_RADIUS_M, M_PER_DEG_LAT

if TYPE_CHECKING:
    from models.settings import Settings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = ["Port", "PortIndex", "ReferenceGeography", "ShoreIndex", "load_geography"]

_TWO_R: Final = 2.0 * EARTH_RADIUS_M
_K: Final = M_PER_DEG_LAT  # metres per degree of latitude

# Cell keys: depth in the low 2 bits, then column (20 bits), then row.
_COL_BITS: Final = 20
_COL_MASK: Final = (1 << _COL_BITS) - 1
_SUB: Final = 4  # a split cell has 4 × 4 children
_MAX_DEPTH: Final = 2

# Node kinds
_WATER: Final = 0
_LAND: Final = 1
_MIXED: Final = 2
_CONST: Final = 0
_EXACT: Final = 1

# Reference point of a cell for the land test, as a fraction of its size: deliberately not a
# round number, so that it never lies on a ring edge aligned with a meridian or parallel.
_REF_FX: Final = 0.6180339887498949
_REF_FY: Final = 0.4142135623730951


def _tolerance_m(distance_m: float) -> float:
    """The error allowed at a given distance (with a 20 % margin for the projection)."""
    return 0.8 * max(100.0, 0.02 * distance_m)


# ---------------------------------------------------------------- bucket grids (CSR)


class _BucketGrid:
    """Items (points or segments) registered in every bucket their bounding box overlaps."""

    def __init__(
        self,
        xmin: FloatArray,
        xmax: FloatArray,
        ymin: FloatArray,
        ymax: FloatArray,
        size_deg: float,
        *,
        bands: bool = False,
    ) -> None:
        """``bands``: one column of 360° (latitude bands), for ray casts along a parallel."""
        self.size = size_deg
        self.ncols = 1 if bands else round(360.0 / size_deg)
        self.nrows = round(180.0 / size_deg)
        zeros = np.zeros(len(xmin), dtype=np.int64)
        c0 = zeros if bands else self._col(xmin)
        c1 = zeros if bands else self._col(xmax)
        r0 = self._row(ymin)
        r1 = self._row(ymax)
        nc = c1 - c0 + 1
        nr = r1 - r0 + 1
        counts = nc * nr
        total = int(counts.sum())
        item = np.repeat(np.arange(len(xmin), dtype=np.int64), counts)
        start = np.cumsum(counts) - counts
        local = np.arange(total, dtype=np.int64) - np.repeat(start, counts)
        ncr = np.repeat(nc, counts)
        rows = np.repeat(r0, counts) + local // ncr
        cols = np.repeat(c0, counts) + local % ncr
        bucket = rows * self.ncols + cols
        order = np.argsort(bucket, kind="stable")
        self.items = item[order].astype(np.int32)
        self.ptr = np.zeros(self.nrows * self.ncols + 1, dtype=np.int64)
        np.cumsum(np.bincount(bucket, minlength=self.nrows * self.ncols), out=self.ptr[1:])

    def _col(self, x: FloatArray) -> IntArray:
        return np.clip(np.floor((x + 180.0) / self.size), 0, self.ncols - 1).astype(np.int64)

    def _row(self, y: FloatArray) -> IntArray:
        return np.clip(np.floor((y + 90.0) / self.size), 0, self.nrows - 1).astype(np.int64)

    def row_items(self, row: int) -> npt.NDArray[np.int32]:
        """All items of one row (for grids with a single column: a latitude band)."""
        return self.items[self.ptr[row * self.ncols] : self.ptr[(row + 1) * self.ncols]]

    def gather(self, lon0: float, lon1: float, lat0: float, lat1: float, *, unique: bool = True) -> IntArray:
        """Items whose bucket overlaps the window (longitudes may pass ±180); with
        ``unique=False`` an item spanning several buckets may come more than once."""
        r0 = max(0, math.floor((lat0 + 90.0) / self.size))
        r1 = min(self.nrows - 1, math.floor((lat1 + 90.0) / self.size))
        if lon1 - lon0 >= 360.0 - self.size:
            col_ranges = [(0, self.ncols - 1)]
        else:
            c0 = math.floor((lon0 + 180.0) / self.size)
            c1 = math.floor((lon1 + 180.0) / self.size)
            if c0 < 0:
                col_ranges = [(c0 + self.ncols, self.ncols - 1), (0, c1)]
            elif c1 >= self.ncols:
                col_ranges = [(c0, self.ncols - 1), (0, c1 - self.ncols)]
            else:
                col_ranges = [(c0, c1)]
        chunks = [
            self.items[self.ptr[r * self.ncols + a] : self.ptr[r * self.ncols + b + 1]]
            for r in range(r0, r1 + 1)
            for a, b in col_ranges
        ]
        if not chunks:
            return np.zeros(0, dtype=np.int64)
        found = np.concatenate(chunks).astype(np.int64)
        return np.unique(found) if unique else found


# ---------------------------------------------------------------- vectorised planar geometry


def _rect_segment_bounds(
    hw: FloatArray, hh: float, ax: FloatArray, ay: FloatArray, bx: FloatArray, by: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(min, max) distance between the rectangle [-hw, hw] × [-hh, hh] and each segment.

    Arrays broadcast together (``hw`` may differ per segment). The maximum over the rectangle
    of the distance to a segment is at a corner (the distance to a convex set is convex); the
    minimum is 0 when they meet, else at a segment endpoint (to the rectangle) or at a
    rectangle corner (to the segment).
    """
    shape = (4,) + (1,) * np.ndim(ax)
    cx = _CORNER_SX.reshape(shape) * hw
    cy = _CORNER_SY.reshape(shape) * hh
    dx = bx - ax
    dy = by - ay
    l2 = dx * dx + dy * dy
    inv = np.divide(1.0, l2, out=np.zeros(np.shape(l2)), where=l2 > 0.0)
    t = np.clip(((cx - ax) * dx + (cy - ay) * dy) * inv, 0.0, 1.0)
    ex = ax + t * dx - cx
    ey = ay + t * dy - cy
    corners2 = ex * ex + ey * ey
    dmax = np.sqrt(corners2.max(axis=0))
    gx_a = np.maximum(np.abs(ax) - hw, 0.0)
    gy_a = np.maximum(np.abs(ay) - hh, 0.0)
    gx_b = np.maximum(np.abs(bx) - hw, 0.0)
    gy_b = np.maximum(np.abs(by) - hh, 0.0)
    ends2 = np.minimum(gx_a * gx_a + gy_a * gy_a, gx_b * gx_b + gy_b * gy_b)
    dmin = np.sqrt(np.minimum(corners2.min(axis=0), ends2))
    # separating axes: x, y and the segment's normal; none separates ⇒ they meet
    apart = (
        (np.minimum(ax, bx) > hw)
        | (np.maximum(ax, bx) < -hw)
        | (np.minimum(ay, by) > hh)
        | (np.maximum(ay, by) < -hh)
        | (np.abs(ay * dx - ax * dy) > hw * np.abs(dy) + hh * np.abs(dx))
    )
    return np.asarray(np.where(apart, dmin, 0.0), dtype=np.float64), np.asarray(dmax, dtype=np.float64)


def _rect_segment_bounds_py(
    lon_c: float,
    lat_c: float,
    size: float,
    ax_: list[float],
    ay_: list[float],
    bx_: list[float],
    by_: list[float],
) -> tuple[list[float], list[float]]:
    """:func:`_rect_segment_bounds` for a few segments given in degrees around a cell centre."""
    lows: list[float] = []
    highs: list[float] = []
    hh = 0.5 * size * _K
    for ax, ay, bx, by in zip(ax_, ay_, bx_, by_, strict=True):
        ks = math.cos((lat_c + 0.5 * (ay + by)) * 0.5 * DEG_TO_RAD) * _K
        hw = 0.5 * size * ks
        ax = (ax - lon_c) * ks
        bx = (bx - lon_c) * ks
        ay = (ay - lat_c) * _K
        by = (by - lat_c) * _K
        dx = bx - ax
        dy = by - ay
        l2 = dx * dx + dy * dy
        inv = 1.0 / l2 if l2 > 0.0 else 0.0
        lo2 = math.inf
        hi2 = 0.0
        for cx, cy in ((-hw, -hh), (-hw, hh), (hw, -hh), (hw, hh)):
            t = ((cx - ax) * dx + (cy - ay) * dy) * inv
            t = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
            ex = ax + t * dx - cx
            ey = ay + t * dy - cy
            d2 = ex * ex + ey * ey
            lo2 = min(lo2, d2)
            hi2 = max(hi2, d2)
        apart = (
            min(ax, bx) > hw
            or max(ax, bx) < -hw
            or min(ay, by) > hh
            or max(ay, by) < -hh
            or abs(ay * dx - ax * dy) > hw * abs(dy) + hh * abs(dx)
        )
        if apart:
            for px, py in ((ax, ay), (bx, by)):
                gx = abs(px) - hw
                gy = abs(py) - hh
                gx = gx if gx > 0.0 else 0.0
                gy = gy if gy > 0.0 else 0.0
                lo2 = min(lo2, gx * gx + gy * gy)
            lows.append(math.sqrt(lo2))
        else:
            lows.append(0.0)
        highs.append(math.sqrt(hi2))
    return lows, highs


_CORNER_SX = np.array([-1.0, -1.0, 1.0, 1.0])
_CORNER_SY = np.array([-1.0, 1.0, -1.0, 1.0])


def _haversine_np(lat: float, lon: float, lats: FloatArray, lons: FloatArray) -> FloatArray:
    p1 = lat * DEG_TO_RAD
    p2 = lats * DEG_TO_RAD
    a = np.sin((p2 - p1) * 0.5) ** 2 + math.cos(p1) * np.cos(p2) * np.sin((lons - lon) * DEG_TO_RAD * 0.5) ** 2
    return np.asarray(_TWO_R * np.arcsin(np.sqrt(np.minimum(1.0, a))), dtype=np.float64)


def _cell_geometry(key: int, base_size: float) -> tuple[int, float, float, float]:
    """(depth, lon0, lat0, size) of a cell key; raises ValueError for positions off the globe."""
    depth = key & 3
    ix = (key >> 2) & _COL_MASK
    iy = key >> (2 + _COL_BITS)
    size = base_size / (_SUB**depth)
    ncols = round(360.0 / size)
    nrows = round(180.0 / size)
    if ix == ncols:  # lon == 180 is lon == -180
        ix = 0
    if iy == nrows:  # lat == 90
        iy -= 1
    if not (0 <= iy < nrows and 0 <= ix < ncols):
        raise ValueError("position outside lat −90…90, lon −180…180")
    return depth, ix * size - 180.0, iy * size - 90.0, size


def _key(lat: float, lon: float, inv: float, depth: int) -> int:
    return ((int((lat + 90.0) * inv) << _COL_BITS | int((lon + 180.0) * inv)) << 2) | depth


def _check_position(lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"position outside lat −90…90, lon −180…180: {lat}, {lon}")


# ---------------------------------------------------------------- shore

_Cross = tuple[float, float, float, float]  # segment (ax, ay, bx, by) in degrees
# candidate for the exact distance, in metres around the cell centre:
# (lower bound² over the cell, ax, ay, dx, dy, 1/|d|², east-west metres per degree)
_Candidate = tuple[float, float, float, float, float, float, float]


class _ShoreNode:
    """What one cell knows: land (uniform or a local ray cast) and distance (constant or candidates)."""

    __slots__ = (
        "arrays",
        "batch",
        "cross",
        "dist_kind",
        "land",
        "lat0",
        "lat_c",
        "lon0",
        "lon_c",
        "ref_idx",
        "ref_land",
        "segs",
        "size",
        "split",
        "value",
        "xr",
        "ys",
    )

    def __init__(self, lon0: float, lat0: float, size: float) -> None:
        self.lon0 = lon0
        self.lat0 = lat0
        self.size = size
        self.lon_c = lon0 + 0.5 * size
        self.lat_c = lat0 + 0.5 * size
        self.split = False
        self.land = _WATER
        self.dist_kind = _CONST
        self.value = 0.0
        self.segs: tuple[_Candidate, ...] = ()
        self.xr = 0.0
        self.ref_land = 0
        self.ref_idx = 0
        self.ys: list[float] = []
        self.cross: tuple[tuple[float, float, float, float], ...] = ()  # (ax, ay, by, dx/dy)
        # split cells only, to build their children: segments crossing the cell, candidate
        # segments (ax, ay, bx, by arrays) and, once a child is asked for, all children's bounds
        self.arrays: tuple[list[_Cross], tuple[FloatArray, ...]] | None = None
        self.batch: tuple[FloatArray, FloatArray] | None = None

    def point_on_land(self, lat: float, lon: float) -> bool:
        """Even-odd status: the reference point's, flipped by each edge crossed on the way here.

        The path goes from the reference point (xr, yr) along the meridian xr to (xr, lat),
        then along the parallel to (lon, lat); it stays inside the cell, so only the segments
        that overlap the cell can cross it.
        """
        inside = self.ref_land ^ ((bisect_right(self.ys, lat) - self.ref_idx) & 1)
        xr = self.xr
        for ax, ay, by, slope in self.cross:
            if (ay > lat) != (by > lat):
                xc = ax + (lat - ay) * slope
                if (xc > lon) != (xc > xr):
                    inside ^= 1
        return inside == 1

    def shore_distance(self, lat: float, lon: float) -> float:
        """0.0 on land, else the distance (``point_on_land`` then ``distance``, inlined)."""
        land = self.land
        if land == _LAND:
            return 0.0
        if land == _MIXED:
            inside = self.ref_land ^ ((bisect_right(self.ys, lat) - self.ref_idx) & 1)
            xr = self.xr
            for ax, ay, by, slope in self.cross:
                if (ay > lat) != (by > lat):
                    xc = ax + (lat - ay) * slope
                    if (xc > lon) != (xc > xr):
                        inside ^= 1
            if inside:
                return 0.0
        if self.dist_kind == _CONST:
            return self.value
        # self.distance(lat, lon), inlined
        dlon = lon - self.lon_c
        if dlon > 180.0:
            dlon -= 360.0
        elif dlon < -180.0:
            dlon += 360.0
        py = (lat - self.lat_c) * _K
        best = math.inf
        for lb2, ax, ay, dx, dy, inv, ks in self.segs:
            if lb2 >= best:
                break
            ux = dlon * ks - ax
            uy = py - ay
            t = (ux * dx + uy * dy) * inv
            if t <= 0.0:
                d2 = ux * ux + uy * uy
            elif t >= 1.0:
                ex = ux - dx
                ey = uy - dy
                d2 = ex * ex + ey * ey
            else:
                ex = ux - t * dx
                ey = uy - t * dy
                d2 = ex * ex + ey * ey
            if d2 < best:
                best = d2
        return math.sqrt(best)

    def distance(self, lat: float, lon: float) -> float:
        """Exact planar point-to-segment distance over the candidates (local projection)."""
        dlon = lon - self.lon_c
        if dlon > 180.0:
            dlon -= 360.0
        elif dlon < -180.0:
            dlon += 360.0
        py = (lat - self.lat_c) * _K
        best = math.inf
        for lb2, ax, ay, dx, dy, inv, ks in self.segs:
            if lb2 >= best:  # sorted by lower bound: no later segment can be nearer
                break
            ux = dlon * ks - ax
            uy = py - ay
            t = (ux * dx + uy * dy) * inv
            if t <= 0.0:
                d2 = ux * ux + uy * uy
            elif t >= 1.0:
                ex = ux - dx
                ey = uy - dy
                d2 = ex * ex + ey * ey
            else:
                ex = ux - t * dx
                ey = uy - t * dy
                d2 = ex * ex + ey * ey
            if d2 < best:
                best = d2
        return math.sqrt(best)


def _overlapping(cross: list[_Cross], lon0: float, lat0: float, lon1: float, lat1: float) -> list[_Cross]:
    return [
        s
        for s in cross
        if (s[0] >= lon0 or s[2] >= lon0)
        and (s[0] <= lon1 or s[2] <= lon1)
        and (s[1] >= lat0 or s[3] >= lat0)
        and (s[1] <= lat1 or s[3] <= lat1)
    ]


class ShoreIndex:
    """Distance to the nearest shore and land test over GSHHG rings (even-odd rule)."""

    CELL_DEG = 0.02
    MAX_CANDIDATES = 16  # more candidate segments than this in a cell: split it
    MAX_CROSSINGS = 8  # more segments crossing a mixed land/water cell than this: split it
    _BUCKET_DEG = 0.25
    _LAND_BUCKET_DEG = 0.1

    def __init__(
        self,
        lon: npt.ArrayLike,
        lat: npt.ArrayLike,
        ring_offsets: npt.ArrayLike,
        artificial_edges: npt.ArrayLike = (),
        *,
        max_distance_m: float = 150_000.0,
        cache_size: int = 20_000,
    ) -> None:
        """Rings as flat vertex arrays; ``artificial_edges``: global indices ``i`` of the edges
        ``(i, i+1)`` that only close a ring cut at ±180° (no shore; used for land only).
        ``cache_size``: cells remembered (LRU), about 2 kB each on real tracks (``[reference]
        memo_cells`` sets it for vigiamar's commands)."""
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
        offsets = np.asarray(ring_offsets, dtype=np.int64)
        if x.shape != y.shape or x.ndim != 1 or offsets.ndim != 1 or len(offsets) < 1:
            raise ValueError("lon, lat must be 1-D arrays of one length; ring_offsets 1-D")
        if offsets[0] != 0 or offsets[-1] != len(x) or np.any(np.diff(offsets) < 0):
            raise ValueError("ring_offsets must rise from 0 to the number of vertices")
        if len(x) and not (np.all(np.abs(x) <= 180.0) and np.all(np.abs(y) <= 90.0)):
            raise ValueError("vertices outside lon −180…180, lat −90…90")
        self.max_distance_m = float(max_distance_m)
        # segments (i, i+1) inside each ring
        is_start = np.ones(max(len(x) - 1, 0), dtype=bool)
        ends = offsets[1:] - 1
        is_start[ends[(ends >= 0) & (ends < len(is_start))]] = False
        starts = np.nonzero(is_start)[0]
        coast = np.ones(len(x), dtype=bool)
        art = np.asarray(artificial_edges, dtype=np.int64)
        coast[art[(art >= 0) & (art < len(x))]] = False
        self._seg = np.column_stack((x[starts], y[starts], x[starts + 1], y[starts + 1]))
        self._ax = self._seg[:, 0]
        self._ay = self._seg[:, 1]
        self._bx = self._seg[:, 2]
        self._by = self._seg[:, 3]
        self._coast = coast[starts]
        self.n_segments = len(starts)
        xmin = np.minimum(self._ax, self._bx)
        xmax = np.maximum(self._ax, self._bx)
        ymin = np.minimum(self._ay, self._by)
        ymax = np.maximum(self._ay, self._by)
        # shore segments for distances (artificial edges left out), all edges for land
        self._coast_seg = self._seg[self._coast]
        cs = self._coast
        self._grid = _BucketGrid(xmin[cs], xmax[cs], ymin[cs], ymax[cs], self._BUCKET_DEG)
        self._land_grid = _BucketGrid(xmin, xmax, ymin, ymax, self._LAND_BUCKET_DEG)
        # latitude bands (one per row of top cells) for the full ray cast of a reference point
        self._bands = _BucketGrid(xmin, xmax, ymin, ymax, self.CELL_DEG, bands=True)
        # the last search window covers max_distance_m and the cell: beyond, a lower bound will do
        self._last_window_deg = (1.02 * self.max_distance_m + 10_000.0) / _K
        # enough rings to tell 'farther than max_distance_m' up to 60° of latitude
        self._rings = self._bucket_rings(math.ceil(self.max_distance_m / (self._BUCKET_DEG * _K * 0.5)) + 2)
        self._inv = tuple(1.0 / (self.CELL_DEG / _SUB**d) for d in range(_MAX_DEPTH + 1))
        self._node: Callable[[int], _ShoreNode] = functools.lru_cache(maxsize=cache_size)(self._build_node)
        self._row_crossings: Callable[[int], list[float]] = functools.lru_cache(maxsize=2048)(self._build_row_crossings)

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> ShoreIndex:
        """Read ``coastline.npz`` (see ``tools/build_reference.py``)."""
        with np.load(Path(path), allow_pickle=False) as data:
            missing = {"lon", "lat", "ring_offsets"} - set(data.files)
            if missing:
                raise ValueError(f"{path}: missing arrays {sorted(missing)}")
            art = data["artificial_edges"] if "artificial_edges" in data.files else np.zeros(0, np.int64)
            return cls(data["lon"], data["lat"], data["ring_offsets"], art, **kwargs)

    # ------------------------------------------------------------ queries (hot path)

    def on_land(self, lat: float, lon: float) -> bool:
        if lon == 180.0:
            lon = -180.0
        y = lat + 90.0
        x = lon + 180.0
        inv0, inv1, inv2 = self._inv
        node = self._node((int(y * inv0) << _COL_BITS | int(x * inv0)) << 2)
        if node.split:
            node = self._node((int(y * inv1) << _COL_BITS | int(x * inv1)) << 2 | 1)
            if node.split:
                node = self._node((int(y * inv2) << _COL_BITS | int(x * inv2)) << 2 | 2)
        land = node.land
        if land == _MIXED:
            return node.point_on_land(lat, lon)
        return land == _LAND

    def distance_to_shore_m(self, lat: float, lon: float) -> float:
        """Metres to the nearest shoreline; 0.0 on land; a lower bound ≥ max_distance_m far out."""
        if lon == 180.0:
            lon = -180.0
        y = lat + 90.0
        x = lon + 180.0
        inv0, inv1, inv2 = self._inv
        node = self._node((int(y * inv0) << _COL_BITS | int(x * inv0)) << 2)
        if node.split:
            node = self._node((int(y * inv1) << _COL_BITS | int(x * inv1)) << 2 | 1)
            if node.split:
                node = self._node((int(y * inv2) << _COL_BITS | int(x * inv2)) << 2 | 2)
        return node.shore_distance(lat, lon)

    def cache_info(self) -> Any:
        """``functools`` cache statistics of the cell memo (hits, misses, currsize)."""
        return self._node.cache_info()  # type: ignore[attr-defined]

    def cache_clear(self) -> None:
        self._node.cache_clear()  # type: ignore[attr-defined]

    # ------------------------------------------------------------ building cells (cache misses)

    def _build_node(self, key: int) -> _ShoreNode:
        depth, lon0, lat0, size = _cell_geometry(key, self.CELL_DEG)
        if depth == 0:
            return self._build_top(lon0, lat0, size, round((lat0 + 90.0) / size))
        parent = self._node(_key(lat0 + size * 0.5, lon0 + size * 0.5, self._inv[depth - 1], depth - 1))
        if not parent.split:  # float rounding put the point on the other side of a cell edge
            return parent
        return self._build_child(parent, lon0, lat0, size, depth)

    def _windows(self, lat: float, lon: float) -> tuple[list[float], float]:
        """Search windows (degrees of latitude around the cell) from the bucket ring distance,
        and a lower bound of the distance from the cell to any segment (m)."""
        row = min(self._grid.nrows - 1, int((lat + 90.0) / self._BUCKET_DEG))
        col = min(self._grid.ncols - 1, int((lon + 180.0) / self._BUCKET_DEG))
        ring = int(self._rings[row, col])
        last = self._last_window_deg
        if ring == 0:
            return [w for w in (0.1, 0.4) if w < last] + [last], 0.0
        # no segment in the buckets less than `ring` away (Chebyshev, in bucket indices)
        far_lat = min(89.9, abs(lat) + (ring + 1) * self._BUCKET_DEG)
        lower = (ring - 1) * self._BUCKET_DEG * _K * math.cos(far_lat * DEG_TO_RAD)
        # some segment lies in a bucket at most `ring` buckets away in both directions
        first = (ring + 1) * self._BUCKET_DEG * 1.42 + 0.03
        return ([first, last] if first < last else [last]), lower

    def _bucket_rings(self, limit: int) -> npt.NDArray[np.int16]:
        """For each bucket, the Chebyshev ring (in buckets) of the nearest bucket with segments."""
        grid = self._grid
        occupied = (np.diff(grid.ptr) > 0).reshape(grid.nrows, grid.ncols)
        rings = np.full(occupied.shape, limit, dtype=np.int16)
        rings[occupied] = 0
        reach = occupied
        for r in range(1, limit):
            grown = reach | np.roll(reach, 1, axis=1) | np.roll(reach, -1, axis=1)
            grown[1:] |= grown[:-1].copy()
            grown[:-1] |= grown[1:].copy()
            rings[grown & ~reach] = r
            reach = grown
        return rings

    def _build_top(self, lon0: float, lat0: float, size: float, row: int) -> _ShoreNode:
        lon1 = lon0 + size
        lat1 = lat0 + size
        lon_c = lon0 + 0.5 * size
        xr = lon0 + size * _REF_FX
        yr = lat0 + size * _REF_FY
        # even-odd status of the reference point: crossings of the parallel yr east of it
        crossings = self._row_crossings(row)
        ref_land = (len(crossings) - bisect_right(crossings, xr)) & 1
        # the edges that cross the cell (any, artificial ones included)
        idx = self._land_grid.gather(lon0, lon1, lat0, lat1)
        ax, ay, bx, by = self._seg[idx].T
        overlap = (
            ((ax >= lon0) | (bx >= lon0))
            & ((ax <= lon1) | (bx <= lon1))
            & ((ay >= lat0) | (by >= lat0))
            & ((ay <= lat1) | (by <= lat1))
        )
        cross = [(a, b, c, d) for a, b, c, d in self._seg[idx[overlap]].tolist()]
        # distance: candidate shore segments from windows of growing size
        cand: tuple[FloatArray, ...] = ()
        lo = hi = math.inf
        windows, lower = self._windows(lat0 + 0.5 * size, lon_c)
        if lower >= self.max_distance_m:  # open sea: nothing to search
            windows, lo = [], lower
        for w in windows:
            lat_lo = lat0 - w
            lat_hi = lat1 + w
            c = math.cos(min(89.0, max(abs(lat_lo), abs(lat_hi))) * DEG_TO_RAD)
            wx = min(180.0, w / c)
            idx = self._grid.gather(lon0 - wx, lon1 + wx, lat_lo, lat_hi, unique=False)
            covered = 0.99 * w * _K  # every segment not gathered is farther than this from the cell
            if len(idx) == 0:
                lo = covered
                continue
            sax, say, sbx, sby = self._coast_seg[idx].T
            wraps = lon0 - wx < -180.0 or lon1 + wx > 180.0
            if wraps:  # the nearest copy across the antimeridian
                shift = 360.0 * np.round((lon_c - sax) / 360.0)
                sax = sax + shift
                sbx = sbx + shift
            near = self._prefilter(lon0, lat0, size, sax, say, sbx, sby)
            idx, first = np.unique(idx[near], return_index=True)
            sax, say, sbx, sby = self._coast_seg[idx].T
            if wraps:
                shift = shift[near][first]
                sax = sax + shift
                sbx = sbx + shift
            dmin, dmax = self._bounds(lon0, lat0, size, sax, say, sbx, sby)
            hi_w = float(dmax.min())
            if hi_w <= covered:
                keep = dmin <= hi_w
                cand = (sax[keep], say[keep], sbx[keep], sby[keep], dmin[keep])
                lo, hi = float(dmin[keep].min()), hi_w
                break
            lo = min(float(dmin.min()), covered)
        return self._make_node(lon0, lat0, size, 0, cand, lo, hi, cross or [], ref_land, xr, yr)

    def _build_child(self, parent: _ShoreNode, lon0: float, lat0: float, size: float, depth: int) -> _ShoreNode:
        assert parent.arrays is not None
        pcross, pcand = parent.arrays
        xr = lon0 + size * _REF_FX
        yr = lat0 + size * _REF_FY
        cross = _overlapping(pcross, lon0, lat0, lon0 + size, lat0 + size)
        ref_land = parent.land
        if ref_land == _MIXED:
            ref_land = 1 if parent.point_on_land(yr, xr) else 0
        if not pcand:
            cand: tuple[FloatArray, ...] = ()
            lo = hi = parent.value
        else:
            if parent.batch is None:
                parent.batch = self._children_bounds(parent, pcand)
            i = round((lat0 - parent.lat0) / size) * _SUB + round((lon0 - parent.lon0) / size)
            dmin = parent.batch[0][i]
            hi = float(parent.batch[1][i].min())
            keep = dmin <= hi
            cand = (*(a[keep] for a in pcand), dmin[keep])
            lo = float(dmin[keep].min())
        return self._make_node(lon0, lat0, size, depth, cand, lo, hi, cross, ref_land, xr, yr)

    @staticmethod
    def _children_bounds(parent: _ShoreNode, cand: tuple[FloatArray, ...]) -> tuple[FloatArray, FloatArray]:
        """Bounds of the candidates for all 4 × 4 children at once, rows ordered (lat, lon)."""
        ax, ay, bx, by = cand
        size = parent.size / _SUB
        steps = (np.arange(_SUB) + 0.5) * size
        lat_c = np.repeat(parent.lat0 + steps, _SUB)[:, None]
        lon_c = np.tile(parent.lon0 + steps, _SUB)[:, None]
        ks = np.cos(((parent.lat_c + 0.5 * (ay + by)) * 0.5) * DEG_TO_RAD) * _K
        return _rect_segment_bounds(
            0.5 * size * ks,
            0.5 * size * _K,
            (ax - lon_c) * ks,
            (ay - lat_c) * _K,
            (bx - lon_c) * ks,
            (by - lat_c) * _K,
        )

    @staticmethod
    def _prefilter(
        lon0: float, lat0: float, size: float, ax: FloatArray, ay: FloatArray, bx: FloatArray, by: FloatArray
    ) -> npt.NDArray[np.bool_]:
        """Cheap cut before the exact bounds: drop segments whose bounding box is farther from
        the cell than some segment's first vertex can be from any point of the cell."""
        lat_c = lat0 + 0.5 * size
        lon_c = lon0 + 0.5 * size
        ks = np.cos(((lat_c + 0.5 * (ay + by)) * 0.5) * DEG_TO_RAD) * _K
        half = 0.5 * size
        upper = np.hypot((ax - lon_c) * ks, (ay - lat_c) * _K) + half * np.hypot(ks, _K)
        gap_x = np.maximum(np.minimum(ax, bx) - (lon_c + half), (lon_c - half) - np.maximum(ax, bx))
        gap_y = np.maximum(np.minimum(ay, by) - (lat_c + half), (lat_c - half) - np.maximum(ay, by))
        lower = np.hypot(np.maximum(gap_x, 0.0) * ks, np.maximum(gap_y, 0.0) * _K)
        return np.asarray(lower <= upper.min() * 1.000001 + 1e-6)

    @staticmethod
    def _bounds(
        lon0: float, lat0: float, size: float, ax: FloatArray, ay: FloatArray, bx: FloatArray, by: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Min and max distance (m) from the cell to each segment, in a local projection whose
        east-west scale is taken at the mean latitude of the cell centre and the segment."""
        lat_c = lat0 + 0.5 * size
        lon_c = lon0 + 0.5 * size
        if len(ax) <= 12:  # numpy's per-call overhead dominates small arrays
            lows, highs = _rect_segment_bounds_py(
                lon_c, lat_c, size, ax.tolist(), ay.tolist(), bx.tolist(), by.tolist()
            )
            return np.array(lows), np.array(highs)
        ks = np.cos(((lat_c + 0.5 * (ay + by)) * 0.5) * DEG_TO_RAD) * _K
        return _rect_segment_bounds(
            0.5 * size * ks,
            0.5 * size * _K,
            (ax - lon_c) * ks,
            (ay - lat_c) * _K,
            (bx - lon_c) * ks,
            (by - lat_c) * _K,
        )

    def _make_node(
        self,
        lon0: float,
        lat0: float,
        size: float,
        depth: int,
        cand: tuple[FloatArray, ...],
        lo: float,
        hi: float,
        cross: list[_Cross],
        ref_land: int,
        xr: float,
        yr: float,
    ) -> _ShoreNode:
        node = _ShoreNode(lon0, lat0, size)
        # land
        if not cross:
            node.land = ref_land
        else:
            node.land = _MIXED
            node.xr = xr
            node.ref_land = ref_land
            node.ys = sorted(
                ay + (xr - ax) * (by - ay) / (bx - ax) for ax, ay, bx, by in cross if (ax > xr) != (bx > xr)
            )
            node.ref_idx = bisect_right(node.ys, yr)
            node.cross = tuple((ax, ay, by, (bx - ax) / (by - ay) if by != ay else 0.0) for ax, ay, bx, by in cross)
        # distance
        n_cand = len(cand[0]) if cand else 0
        if n_cand == 0 or lo >= self.max_distance_m:
            node.value = lo  # a lower bound, ≥ max_distance_m
        elif hi - lo <= 2.0 * _tolerance_m(lo):
            node.value = 0.5 * (lo + hi)  # within tolerance everywhere in the cell
        else:
            node.dist_kind = _EXACT
            node.segs = self._candidates(node.lon_c, node.lat_c, cand)
        dist_split = node.dist_kind == _EXACT and n_cand > self.MAX_CANDIDATES
        land_split = node.land == _MIXED and len(cross) > self.MAX_CROSSINGS
        if depth < _MAX_DEPTH and (dist_split or land_split):
            node.split = True
            node.arrays = (cross, cand[:4] if node.dist_kind == _EXACT else ())
        return node

    @staticmethod
    def _candidates(lon_c: float, lat_c: float, cand: tuple[FloatArray, ...]) -> tuple[_Candidate, ...]:
        out: list[_Candidate] = []
        for ax, ay, bx, by, dmin in zip(*(a.tolist() for a in cand), strict=True):
            ks = math.cos((lat_c + 0.5 * (ay + by)) * 0.5 * DEG_TO_RAD) * _K
            sax = (ax - lon_c) * ks
            say = (ay - lat_c) * _K
            dx = (bx - lon_c) * ks - sax
            dy = (by - lat_c) * _K - say
            l2 = dx * dx + dy * dy
            lb = max(0.0, dmin * 0.999 - 0.01)
            out.append((lb * lb, sax, say, dx, dy, 1.0 / l2 if l2 > 0.0 else 0.0, ks))
        out.sort()
        return tuple(out)

    def _build_row_crossings(self, row: int) -> list[float]:
        """Sorted longitudes where the parallel of the reference points of a row of top cells
        crosses a ring edge (half-open in latitude, as in the local ray casts)."""
        size = self.CELL_DEG
        y = (row * size - 90.0) + size * _REF_FY  # the same float as the cells' reference yr
        idx = self._bands.row_items(min(self._bands.nrows - 1, max(0, row)))
        ax, ay, bx, by = self._seg[idx].T
        m = (ay > y) != (by > y)
        ax, ay, bx, by = ax[m], ay[m], bx[m], by[m]
        xc = ax + (y - ay) * ((bx - ax) / (by - ay))
        return sorted(xc.tolist())


# ---------------------------------------------------------------- ports


@dataclass(frozen=True)
class Port:
    """One World Port Index entry."""

    wpi: int
    name: str
    country: str
    lat: float
    lon: float
    harbor_size: str
    harbor_type: str


_PORT_COLUMNS: Final = ("wpi", "name", "country", "lat", "lon", "harbor_size", "harbor_type")
# (lower bound of the distance from the cell, lat rad, lon rad, cos lat, index), by the bound
_PortCandidate = tuple[float, float, float, float, int]


class PortIndex:
    """Nearest port (great-circle distance) within ``max_distance_m``; farther is ``inf`` / ``None``."""

    CELL_DEG = 0.05
    _BUCKET_DEG = 1.0

    def __init__(self, ports: list[Port], *, max_distance_m: float = 200_000.0, cache_size: int = 65_536) -> None:
        self.ports = ports
        self.max_distance_m = float(max_distance_m)
        self._lat = np.array([p.lat for p in ports], dtype=np.float64)
        self._lon = np.array([p.lon for p in ports], dtype=np.float64)
        self._names = [p.name for p in ports]
        self._grid = _BucketGrid(self._lon, self._lon, self._lat, self._lat, self._BUCKET_DEG)
        self._inv = 1.0 / self.CELL_DEG
        self._cell: Callable[[int], tuple[_PortCandidate, ...]] = functools.lru_cache(maxsize=cache_size)(
            self._build_cell
        )

    def __len__(self) -> int:
        return len(self.ports)

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> PortIndex:
        """Read ``ports.csv`` (``wpi,name,country,lat,lon,harbor_size,harbor_type``)."""
        ports: list[Port] = []
        with Path(path).open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = set(_PORT_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}: missing columns {sorted(missing)}")
            for line, row in enumerate(reader, start=2):
                try:
                    port = Port(
                        wpi=int(row["wpi"]),
                        name=row["name"],
                        country=row["country"],
                        lat=float(row["lat"]),
                        lon=float(row["lon"]),
                        harbor_size=row["harbor_size"],
                        harbor_type=row["harbor_type"],
                    )
                    _check_position(port.lat, port.lon)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{path}:{line}: {exc}") from exc
                ports.append(port)
        return cls(ports, **kwargs)

    # ------------------------------------------------------------ queries (hot path)

    def _search(self, lat: float, lon: float) -> tuple[float, int]:
        inv = self._inv
        cands = self._cell((int((lat + 90.0) * inv) << _COL_BITS | int((lon + 180.0) * inv)) << 2)
        best, best_i = nearest_of(cands, lat, lon)
        if best > self.max_distance_m:
            return math.inf, -1
        return best, best_i

    def distance_to_port_m(self, lat: float, lon: float) -> float:
        return self._search(lat, lon)[0]

    def nearest(self, lat: float, lon: float) -> tuple[str, float] | None:
        """(port name, metres) of the nearest port within ``max_distance_m``, else None."""
        d, i = self._search(lat, lon)
        return None if i < 0 else (self._names[i], d)

    def nearest_port(self, lat: float, lon: float) -> tuple[Port, float] | None:
        d, i = self._search(lat, lon)
        return None if i < 0 else (self.ports[i], d)

    def cache_info(self) -> Any:
        return self._cell.cache_info()  # type: ignore[attr-defined]

    # ------------------------------------------------------------ building cells

    def _build_cell(self, key: int) -> tuple[_PortCandidate, ...]:
        _, lon0, lat0, size = _cell_geometry(key, self.CELL_DEG)
        lon1 = lon0 + size
        lat1 = lat0 + size
        lon_c = lon0 + 0.5 * size
        w = (self.max_distance_m / _K) + 2.0 * size + 0.01
        lat_lo = lat0 - w
        lat_hi = lat1 + w
        c = math.cos(min(89.0, max(abs(lat_lo), abs(lat_hi))) * DEG_TO_RAD)
        wx = min(180.0, w / c)
        idx = self._grid.gather(lon0 - wx, lon1 + wx, lat_lo, lat_hi, unique=False)
        if len(idx) == 0:
            return ()
        plat = self._lat[idx]
        plon = self._lon[idx]
        plon_near = plon + 360.0 * np.round((lon_c - plon) / 360.0)
        # nearest point of the cell (clamped), with a small slack: a lower bound
        dmin = _haversine_np_pairs(plat, plon_near, np.clip(plat, lat0, lat1), np.clip(plon_near, lon0, lon1))
        dmin = dmin * 0.999 - 1.0
        corners = [_haversine_np(cy, cx, plat, plon_near) for cy in (lat0, lat1) for cx in (lon0, lon1)]
        dmax = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3])) * 1.001 + 1.0
        upper = float(dmax.min())
        keep = (dmin <= upper) & (dmin <= self.max_distance_m)
        order = np.argsort(dmin[keep], kind="stable")
        kept = idx[keep][order]
        lows = dmin[keep][order]
        return tuple(
            (
                float(lo),
                float(self._lat[i] * DEG_TO_RAD),
                float(self._lon[i] * DEG_TO_RAD),
                math.cos(float(self._lat[i]) * DEG_TO_RAD),
                int(i),
            )
            for lo, i in zip(lows.tolist(), kept.tolist(), strict=True)
        )


def _haversine_np_pairs(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    p1 = lat1 * DEG_TO_RAD
    p2 = lat2 * DEG_TO_RAD
    a = np.sin((p2 - p1) * 0.5) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((lon2 - lon1) * DEG_TO_RAD * 0.5) ** 2
    return np.asarray(_TWO_R * np.arcsin(np.sqrt(np.minimum(1.0, a))), dtype=np.float64)


# ---------------------------------------------------------------- both, as the detectors' Geography


class ReferenceGeography:
    """Ports and shore together; implements :class:`detectors.base.Geography`."""

    def __init__(self, ports: PortIndex, shore: ShoreIndex) -> None:
        self.ports = ports
        self.shore = shore

    @classmethod
    def load(cls, ports_path: str | Path, coastline_path: str | Path) -> ReferenceGeography:
        return cls(PortIndex.load(ports_path), ShoreIndex.load(coastline_path))

    def distance_to_port_m(self, lat: float, lon: float) -> float:
        return self.ports.distance_to_port_m(lat, lon)

    def nearest_port(self, lat: float, lon: float) -> tuple[str, float] | None:
        return self.ports.nearest(lat, lon)

    def distance_to_shore_m(self, lat: float, lon: float) -> float:
        return self.shore.distance_to_shore_m(lat, lon)

    def on_land(self, lat: float, lon: float) -> bool:
        return self.shore.on_land(lat, lon)


def load_geography(settings: Settings) -> ReferenceGeography:
    """Load the files named by ``[reference]``; a missing or unreadable one raises ConfigError."""
    source = str(settings.path)
    ports_path = settings.resolve(settings.reference.ports)
    coast_path = settings.resolve(settings.reference.coastline)
    cells = settings.reference.memo_cells
    try:
        ports = PortIndex.load(ports_path, cache_size=cells)
    except FileNotFoundError as exc:
        raise ConfigError("reference.ports", f"file not found: {ports_path}", source) from exc
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError("reference.ports", f"cannot read {ports_path}: {exc}", source) from exc
    try:
        shore = ShoreIndex.load(coast_path, cache_size=cells)
    except FileNotFoundError as exc:
        raise ConfigError("reference.coastline", f"file not found: {coast_path}", source) from exc
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError("reference.coastline", f"cannot read {coast_path}: {exc}", source) from exc
    return ReferenceGeography(ports, shore)
