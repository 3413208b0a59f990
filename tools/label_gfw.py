"""Label events in an AIS slice with Global Fishing Watch's published definitions.

An independent reference implementation, deliberately sharing no code with vigiamar's
detectors (plain numpy over whole arrays, not per-fix state machines), so that a backtest of
vigiamar against its output measures something. The published definitions applied:

* **Loitering** (GFW FAQ "What is a loitering event?", GFW technical documentation
  ch. "Loitering", table ``product_events_loitering``): a vessel travelling at an average
  speed under 2 kn, for more than 1 h, at an average distance from shore of at least 20 nm.
* **Encounter** (GFW FAQ "What is a vessel encounter?"; Miller et al. 2018, *Identifying
  global patterns of transshipment behavior*, Front. Mar. Sci. 5:240): two vessels within
  500 m of one another for at least 2 h, median speed under 2 kn, at least 10 km from a
  coastal anchorage. Labelled with vigiamar's kind ``rendezvous``.

What this script has to choose where the definitions are silent (stated again in
``data/labels/README.md``):

* Speed. The inputs may hold positions only (MMSI, time, lat, lon), so speed is the
  displacement from a fix to the first fix at least ``--speed-window-s`` later, divided by
  the time between them (robust to GPS jitter at anchor). GFW uses reported SOG.
* Loitering: GFW averages speed per clock hour; here over the hour centred on each fix, so
  a stop straddling two clock hours is not lost. Fixes whose hour average is under the limit
  form runs (one vessel, no silence over ``--max-gap-s``); a run is extended over contiguous
  slow fixes and trimmed to its first and last slow fix. "Average speed under 2 kn" is then
  checked over the run.
* Encounters: each vessel's track is interpolated to a 10-minute grid (as in Miller et al.),
  never across a silence over ``--max-gap-s``; a pair is "together" in a slot when under
  500 m; runs of consecutive slots of at least 2 h become encounters. The median speed is
  that of the pair's slot-to-slot speeds over the run.
* Distance from shore: great-circle-ish (local equirectangular) distance to the GSHHG
  intermediate shoreline (``config/reference/coastline.npz``), 0 on land. Anchorages: GFW's
  anchorage list is not available offline, so NGA World Port Index ports
  (``config/reference/ports.csv``) stand in for it.

Usage::

    python tools/label_gfw.py data/samples/virginia_beach_2020-06-04_to_06.csv.gz \\
        --out data/labels/virginia_beach_2020-06-04_to_06_gfw.csv
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
COASTLINE = REPO / "config" / "reference" / "coastline.npz"
PORTS = REPO / "config" / "reference" / "ports.csv"

R_M = 6_371_008.8
NM_M = 1852.0
KN_MS = NM_M / 3600.0
SLOT_S = 600

F = npt.NDArray[np.float64]


def read_positions(paths: list[Path]) -> tuple[npt.NDArray[np.int64], F, F, F]:
    """MMSI, unix time, lat, lon of every row, sorted by (MMSI, time), exact duplicates dropped."""
    mmsi: list[int] = []
    ts: list[float] = []
    lat: list[float] = []
    lon: list[float] = []
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
            for row in csv.DictReader(fh):
                mmsi.append(int(row["MMSI"]))
                ts.append(datetime.fromisoformat(row["BaseDateTime"]).replace(tzinfo=UTC).timestamp())
                lat.append(float(row["LAT"]))
                lon.append(float(row["LON"]))
    m, t, la, lo = np.array(mmsi), np.array(ts), np.array(lat), np.array(lon)
    order = np.lexsort((t, m))
    m, t, la, lo = m[order], t[order], la[order], lo[order]
    keep = np.ones(len(m), bool)
    keep[1:] = (m[1:] != m[:-1]) | (t[1:] != t[:-1])  # one fix per vessel and second
    return m[keep], t[keep], la[keep], lo[keep]


def haversine(lat1: F, lon1: F, lat2: F, lon2: F) -> F:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi, dlmb = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * R_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


# --- reference geography (own code, same public data files) ----------------------------------
def shore_distance_m(lat: F, lon: F, margin_deg: float = 1.0) -> F:
    """Distance to the GSHHG shoreline (local projection around each point), 0 on land."""
    z = np.load(COASTLINE)
    clon, clat, offs = z["lon"].astype(float), z["lat"].astype(float), z["ring_offsets"]
    lo0, lo1 = lon.min() - margin_deg, lon.max() + margin_deg
    la0, la1 = lat.min() - margin_deg, lat.max() + margin_deg
    # segments (i, i+1) inside a ring whose bounding box touches the area
    starts = np.arange(len(clon) - 1)
    same_ring = np.ones(len(starts), bool)
    same_ring[offs[1:-1] - 1] = False  # edge from a ring's last vertex to the next ring's first
    ax, ay, bx, by = clon[:-1], clat[:-1], clon[1:], clat[1:]
    near = (
        same_ring
        & (np.maximum(ax, bx) >= lo0)
        & (np.minimum(ax, bx) <= lo1)
        & (np.maximum(ay, by) >= la0)
        & (np.minimum(ay, by) <= la1)
    )
    ax, ay, bx, by = ax[near], ay[near], bx[near], by[near]
    out = np.empty(len(lat))
    k = np.cos(np.radians(lat))
    m_per_deg = np.pi * R_M / 180.0
    for s in range(0, len(lat), 2000):
        sl = slice(s, s + 2000)
        px, py, kk = lon[sl, None], lat[sl, None], k[sl, None]
        x1, y1 = (ax - px) * kk * m_per_deg, (ay - py) * m_per_deg
        x2, y2 = (bx - px) * kk * m_per_deg, (by - py) * m_per_deg
        dx, dy = x2 - x1, y2 - y1
        den = dx * dx + dy * dy
        u = np.clip(-(x1 * dx + y1 * dy) / np.where(den > 0, den, 1.0), 0.0, 1.0)
        cx, cy = x1 + u * dx, y1 + u * dy
        out[sl] = np.sqrt((cx * cx + cy * cy).min(axis=1))
        # even-odd land test: crossings of a ray towards +x (east)
        crosses = ((y1 > 0) != (y2 > 0)) & ((x1 + (0 - y1) * dx / np.where(dy != 0, dy, 1.0)) > 0)
        land = crosses.sum(axis=1) % 2 == 1
        out[sl] = np.where(land, 0.0, out[sl])
    return out


def port_distance_m(lat: F, lon: F) -> F:
    with PORTS.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    plat = np.array([float(r["lat"]) for r in rows])
    plon = np.array([float(r["lon"]) for r in rows])
    d = haversine(lat[:, None], lon[:, None], plat[None, :], plon[None, :])
    return np.asarray(d.min(axis=1))


# --- speed and runs --------------------------------------------------------------------------
def sort_key(mmsi: npt.NDArray[np.int64], t: F) -> F:
    """(vessel, time) as one sorted float, exact to well under a second.

    Rows are sorted by (MMSI, time). The vessel's rank (not the 9-digit MMSI, whose product
    with a time scale would exceed float64's 53-bit mantissa) times 1e10 plus seconds since
    the first fix.
    """
    rank = np.unique(mmsi, return_inverse=True)[1].astype(float)
    return np.asarray(rank * 1e10 + (t - t.min()))


def window_speed_kn(mmsi: npt.NDArray[np.int64], t: F, lat: F, lon: F, window_s: float, max_gap_s: float) -> F:
    """Displacement speed from each fix to the first fix of the same vessel ``window_s`` later."""
    key = sort_key(mmsi, t)
    j = np.searchsorted(key, key + window_s)
    j = np.minimum(j, len(t) - 1)
    ok = (mmsi[j] == mmsi) & (t[j] > t) & (t[j] - t <= max_gap_s)
    d = haversine(lat, lon, lat[j], lon[j])
    dt = np.where(ok, t[j] - t, np.nan)
    return np.asarray(d / dt / KN_MS)


def window_reach(mmsi: npt.NDArray[np.int64], t: F, window_s: float, max_gap_s: float) -> F:
    """Time of the fix each speed window ends on (the fix's own time where there is none)."""
    key = sort_key(mmsi, t)
    j = np.minimum(np.searchsorted(key, key + window_s), len(t) - 1)
    ok = (mmsi[j] == mmsi) & (t[j] > t) & (t[j] - t <= max_gap_s)
    return np.where(ok, t[j], t)


def centred_mean(mmsi: npt.NDArray[np.int64], t: F, values: F, half_s: float) -> F:
    """Mean of the vessel's non-NaN ``values`` within ``half_s`` of each fix (NaN where none)."""
    key = sort_key(mmsi, t)
    lo = np.searchsorted(key, key - half_s, side="left")
    hi = np.searchsorted(key, key + half_s, side="right")
    valid = ~np.isnan(values)
    csum = np.concatenate(([0.0], np.cumsum(np.where(valid, values, 0.0))))
    ccnt = np.concatenate(([0], np.cumsum(valid)))
    n = ccnt[hi] - ccnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (csum[hi] - csum[lo]) / n, np.nan)


def runs(mask: npt.NDArray[np.bool_], breaks: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, stop) index ranges where ``mask`` holds, cut where ``breaks[i]`` (i starts a new run)."""
    edges = np.diff(np.concatenate(([False], mask, [False])).astype(int))
    out: list[tuple[int, int]] = []
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        cut = a + 1 + np.flatnonzero(breaks[a + 1 : b])
        bounds = [a, *cut.tolist(), b]
        out += list(itertools.pairwise(bounds))
    return out


def iso(ts: float) -> str:
    return datetime.fromtimestamp(round(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- loitering -------------------------------------------------------------------------------
def loitering(args: argparse.Namespace, mmsi: npt.NDArray[np.int64], t: F, lat: F, lon: F) -> list[dict[str, str]]:
    """GFW-style: fixes whose hour-average speed is under the limit, joined into runs, trimmed to slow fixes."""
    speed = window_speed_kn(mmsi, t, lat, lon, args.speed_window_s, args.max_gap_s)
    reach = window_reach(mmsi, t, args.speed_window_s, args.max_gap_s)
    # 1. average speed over the hour centred on each fix (same vessel); no measurable speed: not slow
    in_slow_hour = centred_mean(mmsi, t, speed, 1800.0) < args.loiter_speed_kn
    slow_fix = speed < args.loiter_speed_kn  # NaN is not slow
    # 2. runs of fixes in slow hours, one vessel, no silence over max_gap_s (a missing hour ends a run)
    new_vessel = np.concatenate(([True], mmsi[1:] != mmsi[:-1]))
    gap = np.concatenate(([True], np.diff(t) > args.max_gap_s))
    cut = new_vessel | gap
    labels = []
    for a, b in runs(in_slow_hour, cut):
        # 3. extend over contiguous slow fixes in the neighbouring (not slow on average) hours,
        #    then trim to the first and last slow fix: start and end fall on fixes, not hours
        while a > 0 and not cut[a] and slow_fix[a - 1]:
            a -= 1
        while b < len(t) and not cut[b] and slow_fix[b]:
            b += 1
        idx = a + np.flatnonzero(slow_fix[a:b])
        if len(idx) == 0:
            continue
        first, last = int(idx[0]), int(idx[-1])
        start, end = t[first], reach[last]  # the last slow fix was still in place at its window's end
        if end - start < args.loiter_min_s:
            continue
        sl = slice(first, last + 1)
        mean_speed = float(np.nanmean(speed[sl]))
        if not mean_speed < args.loiter_speed_kn:
            continue
        mean_shore_nm = float(shore_distance_m(lat[sl], lon[sl]).mean() / NM_M)
        if mean_shore_nm < args.loiter_shore_nm:
            continue
        port_km = float(port_distance_m(np.array([lat[sl].mean()]), np.array([lon[sl].mean()]))[0] / 1000)
        if port_km < args.loiter_port_km:
            continue
        labels.append(
            {
                "kind": "loitering",
                "entities": str(mmsi[first]),
                "start": iso(start),
                "end": iso(end),
                "note": (
                    f"{args.name} loitering: {(end - start) / 3600:.2f} h, mean speed {mean_speed:.2f} kn,"
                    f" mean shore distance {mean_shore_nm:.1f} nm, nearest WPI port {port_km:.1f} km,"
                    f" {last - first + 1} fixes"
                ),
            }
        )
    return labels


# --- encounters ------------------------------------------------------------------------------
def slot_tracks(
    mmsi: npt.NDArray[np.int64], t: F, lat: F, lon: F, max_gap_s: float
) -> tuple[npt.NDArray[np.int64], F, F, F, F]:
    """Positions interpolated to a 10-minute grid: (vessel, slot, lat, lon, speed_kn to the next slot)."""
    vs, ss, las, los = [], [], [], []
    for v in np.unique(mmsi):
        sel = mmsi == v
        tv, lav, lov = t[sel], lat[sel], lon[sel]
        if len(tv) < 2:
            continue
        grid = np.arange(np.ceil(tv[0] / SLOT_S) * SLOT_S, tv[-1] + 1, SLOT_S)
        k = np.searchsorted(tv, grid, side="right")  # tv[k-1] <= g < tv[k]
        k = np.clip(k, 1, len(tv) - 1)
        exact = tv[k - 1] == grid
        bridged = (tv[k] - tv[k - 1]) <= max_gap_s
        ok = exact | bridged
        grid, k = grid[ok], k[ok]
        vs.append(np.full(len(grid), v))
        ss.append((grid // SLOT_S).astype(np.int64))
        las.append(np.interp(grid, tv, lav))
        los.append(np.interp(grid, tv, lov))
    v, s, la, lo = (np.concatenate(x) for x in (vs, ss, las, los))
    nxt = np.concatenate((s[1:] == s[:-1] + 1, [False])) & np.concatenate((v[1:] == v[:-1], [False]))
    speed = np.full(len(s), np.nan)
    idx = np.flatnonzero(nxt)
    speed[idx] = haversine(la[idx], lo[idx], la[idx + 1], lo[idx + 1]) / SLOT_S / KN_MS
    return v, s, la, lo, speed


def encounters(args: argparse.Namespace, mmsi: npt.NDArray[np.int64], t: F, lat: F, lon: F) -> list[dict[str, str]]:
    v, s, la, lo, speed = slot_tracks(mmsi, t, lat, lon, args.max_gap_s)
    order = np.lexsort((v, s))
    v, s, la, lo, speed = v[order], s[order], la[order], lo[order], speed[order]
    bounds = np.flatnonzero(np.diff(np.concatenate(([-1], s, [s[-1] + 1]))))
    close: dict[tuple[int, int], list[tuple[int, float, float, float, float]]] = {}
    for a, b in itertools.pairwise(bounds):
        if b - a < 2:
            continue
        d = haversine(la[a:b, None], lo[a:b, None], la[None, a:b], lo[None, a:b])
        i, j = np.nonzero(np.triu(d < args.encounter_distance_m, k=1))
        for p, q in zip(i + a, j + a, strict=True):
            close.setdefault((int(v[p]), int(v[q])), []).append(
                (int(s[p]), (la[p] + la[q]) / 2, (lo[p] + lo[q]) / 2, speed[p], speed[q])
            )
    labels = []
    min_slots = int(args.encounter_min_s // SLOT_S)
    for (va, vb), slots in sorted(close.items()):
        arr = np.array(slots)
        sl = arr[:, 0].astype(np.int64)
        breaks = np.concatenate(([True], np.diff(sl) != 1))
        for a, b in runs(np.ones(len(sl), bool), breaks):
            if sl[b - 1] - sl[a] < min_slots:
                continue
            seg = arr[a:b]
            median_speed = float(np.nanmedian(np.concatenate((seg[:, 3], seg[:, 4]))))
            if not median_speed < args.encounter_speed_kn:
                continue
            clat, clon = np.array([seg[:, 1].mean()]), np.array([seg[:, 2].mean()])
            port_km = float(port_distance_m(clat, clon)[0] / 1000)
            if port_km < args.encounter_anchorage_km:
                continue
            shore_nm = float(shore_distance_m(seg[:, 1], seg[:, 2]).mean() / NM_M)
            if shore_nm < args.encounter_shore_nm:
                continue
            labels.append(
                {
                    "kind": "rendezvous",
                    "entities": f"{va};{vb}",
                    "start": iso(sl[a] * SLOT_S),
                    "end": iso(sl[b - 1] * SLOT_S),
                    "note": (
                        f"{args.name} encounter: {(sl[b - 1] - sl[a]) * SLOT_S / 3600:.2f} h under"
                        f" {args.encounter_distance_m:.0f} m, median speed {median_speed:.2f} kn,"
                        f" mean shore distance {shore_nm:.1f} nm, nearest WPI port {port_km:.1f} km"
                    ),
                }
            )
    return labels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", type=Path, help="MarineCadastre CSV (MMSI,BaseDateTime,LAT,LON)")
    p.add_argument("--out", type=Path, default=None, help="labels CSV (default stdout)")
    p.add_argument("--speed-window-s", type=float, default=600.0)
    p.add_argument("--max-gap-s", type=float, default=3600.0)
    p.add_argument("--loiter-speed-kn", type=float, default=2.0)
    p.add_argument("--loiter-min-s", type=float, default=3600.0)
    p.add_argument("--loiter-shore-nm", type=float, default=20.0, help="minimum mean distance from shore")
    p.add_argument("--loiter-port-km", type=float, default=0.0, help="minimum distance from a WPI port")
    p.add_argument("--encounter-distance-m", type=float, default=500.0)
    p.add_argument("--encounter-min-s", type=float, default=7200.0)
    p.add_argument("--encounter-speed-kn", type=float, default=2.0)
    p.add_argument("--encounter-anchorage-km", type=float, default=10.0, help="minimum distance from a WPI port")
    p.add_argument("--encounter-shore-nm", type=float, default=0.0, help="minimum mean distance from shore")
    p.add_argument("--name", default="GFW", help="definition name written in each label's note")
    args = p.parse_args(argv)
    mmsi, t, lat, lon = read_positions(args.inputs)
    labels = loitering(args, mmsi, t, lat, lon) + encounters(args, mmsi, t, lat, lon)
    labels.sort(key=lambda r: (r["start"], r["kind"], r["entities"]))
    out = args.out.open("w", encoding="utf-8", newline="") if args.out else sys.stdout
    argv_text = " ".join(sys.argv[1:] if argv is None else argv)
    out.write("# kinds: loitering, rendezvous\n")
    out.write(f"# made by: python tools/label_gfw.py {argv_text}\n")
    out.write("# origin and method: data/labels/README.md\n")
    w = csv.DictWriter(out, fieldnames=["id", "kind", "entities", "start", "end", "note"], lineterminator="\n")
    w.writeheader()
    for n, row in enumerate(labels, start=1):
        w.writerow({"id": f"L{n:03d}", **row})
    if args.out:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
