"""Configured areas (watch zones, exclusion areas, jurisdictions) as prepared shapely geometries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import shapely
from shapely.geometry import shape
from shapely.strtree import STRtree

from models.errors import ConfigError

ZONE_ROLES: Final = ("watch", "exclusion", "jurisdiction")


@dataclass(frozen=True)
class Zone:
    name: str
    role: str
    geometry: Any  # shapely Polygon / MultiPolygon, prepared
    agency: str | None = None
    properties: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


CELL_DEG: Final = 0.05
CACHE_CELLS: Final = 200_000
_ROW_STRIDE: Final = 1 << 16  # more than the 7,200 columns of 0.05°: one int per cell


class ZoneIndex:
    """All zones in one STRtree; point queries return zones in a stable (name) order.

    Point queries are answered per grid cell: a cell lying wholly inside a zone, or wholly
    outside it, is answered from a cache; only cells that a zone's boundary crosses test
    the point exactly. Results are exact; tracks revisit cells, so most queries are a
    dictionary lookup.
    """

    def __init__(self, zones: list[Zone]) -> None:
        self.zones = sorted(zones, key=lambda z: z.name)
        for zone in self.zones:
            shapely.prepare(zone.geometry)
        self._tree = STRtree([z.geometry for z in self.zones]) if self.zones else None
        # cell key row * _ROW_STRIDE + column -> (zones containing it, zones its boundary crosses)
        self._cells: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def __len__(self) -> int:
        return len(self.zones)

    def at(self, lat: float, lon: float, role: str | None = None) -> list[Zone]:
        if self._tree is None:
            return []
        row = int(lat // CELL_DEG)
        col = int(lon // CELL_DEG)
        cell = self._cells.get(row * _ROW_STRIDE + col)
        if cell is None:
            cell = self._classify(row, col)
        inside, boundary = cell
        if not boundary:
            if not inside:
                return []  # most of the sea: no zone near
            hits: Sequence[int] = inside
        else:
            found = list(inside)
            for i in boundary:
                if shapely.contains_xy(self.zones[i].geometry, lon, lat) or shapely.intersects_xy(
                    self.zones[i].geometry, lon, lat
                ):
                    found.append(i)
            if not found:
                return []
            found.sort()
            hits = found
        return [self.zones[i] for i in hits if role is None or self.zones[i].role == role]

    def _classify(self, row: int, col: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        assert self._tree is not None
        lat0, lon0 = row * CELL_DEG, col * CELL_DEG
        box = shapely.box(lon0, lat0, lon0 + CELL_DEG, lat0 + CELL_DEG)
        inside: list[int] = []
        boundary: list[int] = []
        for i in sorted(int(h) for h in self._tree.query(box, predicate="intersects")):
            (inside if self.zones[i].geometry.contains(box) else boundary).append(i)
        if len(self._cells) >= CACHE_CELLS:
            self._cells.clear()
        cell = (tuple(inside), tuple(boundary))
        self._cells[row * _ROW_STRIDE + col] = cell
        return cell

    def names_at(self, lat: float, lon: float, role: str | None = None) -> tuple[str, ...]:
        return tuple(z.name for z in self.at(lat, lon, role))

    def by_role(self, role: str) -> list[Zone]:
        return [z for z in self.zones if z.role == role]


def load_zone_file(path: Path) -> list[Zone]:
    """Read a GeoJSON FeatureCollection; each feature needs properties ``name`` and ``role``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), f"cannot read GeoJSON: {exc}") from exc
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise ConfigError(str(path), "expected a GeoJSON FeatureCollection")
    zones = []
    for i, feat in enumerate(features):
        key = f"{path.name}: features[{i}]"
        props = (feat or {}).get("properties") or {}
        name = props.get("name")
        role = props.get("role", "watch")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{key}.properties.name", "missing zone name")
        if role not in ZONE_ROLES:
            raise ConfigError(f"{key}.properties.role", f"{role!r} is not one of {', '.join(ZONE_ROLES)}")
        try:
            geom = shape(feat["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{key}.geometry", f"not a GeoJSON geometry: {exc}") from exc
        if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
            raise ConfigError(f"{key}.geometry", f"{geom.geom_type} is not a polygon")
        if not geom.is_valid:
            raise ConfigError(f"{key}.geometry", f"invalid polygon: {shapely.is_valid_reason(geom)}")
        agency = props.get("agency")
        if role == "jurisdiction" and not agency:
            raise ConfigError(f"{key}.properties.agency", "a jurisdiction zone names its agency")
        zones.append(Zone(name=name, role=role, geometry=geom, agency=agency, properties=dict(props)))
    return zones
