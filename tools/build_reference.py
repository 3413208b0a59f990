"""Build the reference geography shipped in ``config/reference/`` from the ``tracktable-data`` wheel.

Run it (from the repository root) with a Python that has ``tracktable-data==1.7.3.1``,
``pyshp`` and ``numpy`` installed; the project itself needs none of them at run time::

    python -m venv /tmp/probe
    /tmp/probe/bin/pip install tracktable-data==1.7.3.1 pyshp numpy
    /tmp/probe/bin/python tools/build_reference.py            # writes config/reference/*

Options: ``--resolution {c,l,i,h,f}`` (default ``i``), ``--min-lake-km2`` (default 1000),
``--out DIR`` (default ``config/reference``), ``--source DIR`` (default: the installed
``tracktable_data/python_info_data``). The output is deterministic: re-running it gives the
same bytes.

Outputs:

``ports.csv``
    NGA World Port Index: ``wpi,name,country,lat,lon,harbor_size,harbor_type``, sorted by
    WPI number.
``coastline.npz``
    GSHHG rings as compact arrays (see ``models/reference.py`` for the reader):

    - ``lon``, ``lat`` float32: the vertices of every ring, rings closed (last == first);
    - ``ring_offsets`` int32 (n_rings + 1): ring ``k`` is ``lon[ring_offsets[k]:ring_offsets[k+1]]``;
    - ``ring_level`` uint8: GSHHG level of each ring (1 land/ocean, 2 lake, 3 island in lake,
      4 pond in island, 5 Antarctic ice front);
    - ``artificial_edges`` int32: global index ``i`` of the edges ``(i, i+1)`` that only close a
      ring split at the antimeridian or at the South Pole / prime meridian (not a shore: ignored
      for distances, kept for the point-in-polygon test);
    - ``meta`` (a JSON string, uint8 bytes): source, resolution, levels, counts.

    Land is the even-odd interior of all rings: the levels nest (land ⊃ lake ⊃ island ⊃ pond).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

TRACKTABLE_DATA_VERSION = "1.7.3.1"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamp inside the .npz: same bytes on every run

PORT_COLUMNS = ("wpi", "name", "country", "lat", "lon", "harbor_size", "harbor_type")
_WPI_FIELDS = {
    "wpi": "World Port Index Number",
    "name": "Main Port Name",
    "country": "Country Code",
    "lat": "Latitude",
    "lon": "Longitude",
    "harbor_size": "Harbor Size",
    "harbor_type": "Harbor Type",
}


def default_source() -> Path:
    import tracktable_data  # the wheel this builder reads from; not a project dependency

    return Path(tracktable_data.__file__).resolve().parent / "python_info_data"


# ---------------------------------------------------------------- ports


def build_ports(source: Path, out: Path) -> int:
    with (source / "ports.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    records: list[tuple[int, list[str]]] = []
    for row in rows:
        wpi = int(row[_WPI_FIELDS["wpi"]])
        lat = float(row[_WPI_FIELDS["lat"]])
        lon = float(row[_WPI_FIELDS["lon"]])
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"WPI {wpi}: position out of range: {lat}, {lon}")
        values = [
            str(wpi),
            row[_WPI_FIELDS["name"]].strip(),
            row[_WPI_FIELDS["country"]].strip(),
            repr(lat),
            repr(lon),
            row[_WPI_FIELDS["harbor_size"]].strip(),
            row[_WPI_FIELDS["harbor_type"]].strip(),
        ]
        records.append((wpi, values))
    records.sort(key=lambda r: r[0])
    if len({wpi for wpi, _ in records}) != len(records):
        raise ValueError("duplicate WPI numbers")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PORT_COLUMNS)
    writer.writerows(values for _, values in records)
    out.write_bytes(buf.getvalue().encode("utf-8"))
    return len(records)


# ---------------------------------------------------------------- coastline


def _read_level(source: Path, resolution: str, level: int) -> list[tuple[list[Any], np.ndarray]]:
    import shapefile  # pyshp

    base = source / "GSHHS_shp" / resolution / f"GSHHS_{resolution}_L{level}"
    out: list[tuple[list[Any], np.ndarray]] = []
    with shapefile.Reader(str(base)) as reader:
        for shape_rec in reader.iterShapeRecords():
            shape = shape_rec.shape
            pts = np.asarray(shape.points, dtype=np.float64)
            parts = [*shape.parts, len(pts)]
            if len(parts) != 2:
                raise ValueError(f"{base}: record {shape_rec.record[0]} has {len(parts) - 1} parts")
            out.append((list(shape_rec.record), pts))
    return out


def _select_rings(source: Path, resolution: str, min_lake_km2: float) -> list[tuple[int, str, np.ndarray]]:
    """(level, id, points) for L1, L5 and the big lakes with their islands and ponds."""
    # record fields: id, level, source, parent_id, sibling_id, area (km²)
    rings: list[tuple[int, str, np.ndarray]] = []
    for level in (1, 5):
        rings.extend((level, str(rec[0]), pts) for rec, pts in _read_level(source, resolution, level))
    if min_lake_km2 >= 0:
        kept: set[str] = set()
        for level in (2, 3, 4):
            for rec, pts in _read_level(source, resolution, level):
                ident, parent, area = str(rec[0]), str(rec[3]), float(rec[5])
                if (level == 2 and area >= min_lake_km2) or (level > 2 and parent in kept):
                    kept.add(ident)
                    rings.append((level, ident, pts))
    return rings


def _artificial(level: int, ident: str, pts: np.ndarray) -> np.ndarray:
    """Local indices i of edges (i, i+1) that close a ring split at ±180° (or 0° / −90° in Antarctica)."""
    if not ident.endswith(("-E", "-W")):
        return np.zeros(0, dtype=np.int64)
    x, y = pts[:, 0], pts[:, 1]
    cuts = [-180.0, 180.0, 0.0] if level >= 5 else [-180.0, 180.0]
    vertical = (x[:-1] == x[1:]) & np.isin(x[:-1], cuts)
    polar = (y[:-1] == y[1:]) & (y[:-1] == -90.0)
    return np.nonzero(vertical | polar)[0]


def build_coastline(source: Path, resolution: str, min_lake_km2: float, out: Path) -> dict[str, Any]:
    rings = _select_rings(source, resolution, min_lake_km2)
    lon_parts: list[np.ndarray] = []
    lat_parts: list[np.ndarray] = []
    offsets = [0]
    levels: list[int] = []
    artificial: list[np.ndarray] = []
    for level, ident, pts in rings:
        if len(pts) < 4 or not np.array_equal(pts[0], pts[-1]):
            raise ValueError(f"ring {ident} is not closed")
        artificial.append(_artificial(level, ident, pts) + offsets[-1])
        lon_parts.append(pts[:, 0].astype(np.float32))
        lat_parts.append(pts[:, 1].astype(np.float32))
        offsets.append(offsets[-1] + len(pts))
        levels.append(level)
    counts = {f"L{lv}": sum(1 for r in rings if r[0] == lv) for lv in sorted({r[0] for r in rings})}
    meta = {
        "source": f"tracktable-data {TRACKTABLE_DATA_VERSION}: python_info_data/GSHHS_shp/{resolution}",
        "dataset": "GSHHG (Wessel & Smith), shapefile distribution, version 2.3.x (>= 2.3.1)",
        "licence": "LGPL-3.0",
        "resolution": resolution,
        "levels": sorted({r[0] for r in rings}),
        "rings_per_level": counts,
        "min_lake_km2": min_lake_km2,
        "vertices": offsets[-1],
        "land_rule": "even-odd interior of all rings",
    }
    arrays = {
        "lon": np.concatenate(lon_parts),
        "lat": np.concatenate(lat_parts),
        "ring_offsets": np.asarray(offsets, dtype=np.int32),
        "ring_level": np.asarray(levels, dtype=np.uint8),
        "artificial_edges": np.concatenate(artificial).astype(np.int32),
        "meta": np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8),
    }
    write_npz(out, arrays)
    return meta


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``numpy.savez_compressed`` but byte-for-byte reproducible (fixed zip timestamps)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    repo = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=None, help="tracktable_data/python_info_data folder")
    parser.add_argument("--out", type=Path, default=repo / "config" / "reference")
    parser.add_argument("--resolution", choices=tuple("clihf"), default="i")
    parser.add_argument(
        "--min-lake-km2", type=float, default=1000.0, help="keep GSHHG lakes this big (negative: no lakes)"
    )
    args = parser.parse_args(argv)
    source: Path = args.source or default_source()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    n_ports = build_ports(source, out / "ports.csv")
    meta = build_coastline(source, args.resolution, args.min_lake_km2, out / "coastline.npz")
    _report(n_ports, meta, [out / "ports.csv", out / "coastline.npz"])
    return 0


def _report(n_ports: int, meta: dict[str, Any], files: Iterable[Path]) -> None:
    print(f"{n_ports} ports; {meta['vertices']} coastline vertices; rings {meta['rings_per_level']}")
    for f in files:
        print(f"  {f}: {f.stat().st_size} B")


if __name__ == "__main__":
    sys.exit(main())
