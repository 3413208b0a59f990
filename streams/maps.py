"""One self-contained HTML map of alerts (``vigiamar replay --map``, ``vigiamar backtest --map``).

The page needs no network: Leaflet 1.9.4 (BSD-2-Clause, vendored in ``streams/static/leaflet``
from the npm package) and the data are inlined; the background is the GSHHG shoreline of the
configured reference data, clipped to the area. An OpenStreetMap layer can be switched on
where the browser is online.

Drawn for every alert: a marker at its position (colour by kind; in a backtest, green ring =
matched a label, red dashed = false alarm), the tracks of its entities from ``context_s``
before to ``context_s`` after the alert (thin grey), the alert span highlighted on them (thick,
kind colour), and a popup with the evidence and each threshold check. In a backtest, missed
labels are purple dashed markers with their span in purple. The page reports what it drew
in ``#vm-status`` (``data-alerts``, ``data-misses``), which the tests read.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from models.alert import Alert
from models.position import Position
from models.timeutil import to_iso
from streams.explain import threshold_checks, unchecked_evidence
from streams.labels import Label

STATIC = Path(__file__).resolve().parent / "static" / "leaflet"
TEMPLATE = Path(__file__).resolve().parent / "static" / "map_template.html"
DEFAULT_CONTEXT_S = 3600.0
TRACK_GAP_S = 1800.0  # polylines break at silences longer than this
MARGIN_DEG = 0.15

KIND_COLOURS = {
    "loitering": "#e8a33d",
    "rendezvous": "#2b7bba",
    "dark_rendezvous": "#173f5f",
    "ais_gap": "#7f7f7f",
    "spoofing": "#c2185b",
    "zone_entry": "#2e9e6b",
    "air_orbit": "#8e5cc4",
    "air_loiter": "#cab2d6",
    "air_low_slow": "#b15928",
    "air_landing": "#6a3d9a",
    "air_sea_rendezvous": "#17becf",
}

Track = list[tuple[float, float, float]]  # (ts, lat, lon)


@dataclass(frozen=True)
class MapSummary:
    alerts: int
    misses: int
    path: Path


# --- tracks --------------------------------------------------------------------------------------
def windows_for(
    alerts: Iterable[Alert], labels: Iterable[Label] = (), context_s: float = DEFAULT_CONTEXT_S
) -> dict[str, list[tuple[float, float]]]:
    """Entity id -> time windows whose positions the map needs."""
    out: dict[str, list[tuple[float, float]]] = {}
    for a in alerts:
        for e in a.entities:
            out.setdefault(e.id, []).append((a.start_ts - context_s, a.end_ts + context_s))
    for lab in labels:
        for eid in lab.entities:
            out.setdefault(eid, []).append((lab.start_ts - context_s, lab.end_ts + context_s))
    return out


def collect_tracks(
    paths: Sequence[Path], windows: Mapping[str, Sequence[tuple[float, float]]], input_format: str | None = None
) -> dict[str, Track]:
    """Decoded positions of the windows' entities inside their windows (a second, cheap pass)."""
    from models.position import Reject
    from streams.embedded import RunReport, merged_items

    tracks: dict[str, Track] = {k: [] for k in windows}
    with ExitStack() as stack:
        for item in merged_items(list(paths), input_format, stack, RunReport()):
            if isinstance(item, Reject) or not isinstance(item, Position):
                continue
            spans = windows.get(item.entity_id)
            if spans and any(t0 <= item.ts <= t1 for t0, t1 in spans):
                tracks[item.entity_id].append((item.ts, item.lat, item.lon))
    for track in tracks.values():
        track.sort()
    return tracks


# --- the page ------------------------------------------------------------------------------------
def write_map(
    path: Path,
    alerts: Iterable[Alert],
    tracks: Mapping[str, Track],
    *,
    title: str = "vigiamar alerts",
    subtitle: str = "",
    outcomes: Mapping[str, str] | None = None,
    misses: Sequence[Label] = (),
    configs: Mapping[str, Any] | None = None,
    coastline: Path | None = None,
) -> MapSummary:
    """Write the HTML map; ``outcomes`` (alert id -> "match" | "false_alarm") marks a backtest."""
    alert_list = sorted(alerts, key=lambda a: (a.start_ts, a.kind, a.id))
    data: dict[str, Any] = {
        "alerts": [
            _alert_item(a, (outcomes or {}).get(a.id, "alert"), (configs or {}).get(a.detector.name))
            for a in alert_list
        ],
        "misses": [m for m in (_miss_item(lab, tracks) for lab in misses) if m is not None],
        "tracks": {k: _split(v) for k, v in tracks.items() if v},
        "colours": KIND_COLOURS,
        "backtest": outcomes is not None,
    }
    bbox = _bbox(data)
    data["bbox"] = bbox
    data["coast"] = coast_rings(coastline, bbox) if coastline is not None and bbox else []
    page = _page(title, subtitle, data)
    path.write_text(page, encoding="utf-8")
    return MapSummary(len(data["alerts"]), len(data["misses"]), path)


def _split(track: Track) -> list[list[list[float]]]:
    """A track as polylines of [ts, lat, lon], broken at long silences."""
    parts: list[list[list[float]]] = []
    last = None
    for ts, lat, lon in track:
        if last is None or ts - last > TRACK_GAP_S:
            parts.append([])
        parts[-1].append([round(ts), round(lat, 5), round(lon, 5)])
        last = ts
    return parts


def _alert_item(a: Alert, outcome: str, cfg: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "lat": round(a.lat, 5),
        "lon": round(a.lon, 5),
        "start": a.start_ts,
        "end": a.end_ts,
        "entities": [e.id for e in a.entities],
        "outcome": outcome,
        "label": f"{to_iso(a.start_ts)[5:16].replace('T', ' ')} {a.kind} {', '.join(e.id for e in a.entities)}",
        "popup": _popup(a, outcome, cfg),
    }


def _miss_item(lab: Label, tracks: Mapping[str, Track]) -> dict[str, Any] | None:
    pts = [(la, lo) for eid in lab.entities for ts, la, lo in tracks.get(eid, ()) if lab.start_ts <= ts <= lab.end_ts]
    if not pts:
        return None
    lat = sum(p[0] for p in pts) / len(pts)
    lon = sum(p[1] for p in pts) / len(pts)
    rows = [
        ("label", lab.id),
        ("kind", lab.kind),
        ("entities", ", ".join(lab.entities)),
        ("span", f"{to_iso(lab.start_ts)} → {to_iso(lab.end_ts)} ({_hm(lab.duration_s)})"),
        ("note", lab.note or "-"),
    ]
    popup = "<b>MISSED: no alert matched this label</b>" + _rows_html(rows)
    return {
        "id": lab.id,
        "kind": lab.kind,
        "lat": round(lat, 5),
        "lon": round(lon, 5),
        "start": lab.start_ts,
        "end": lab.end_ts,
        "entities": list(lab.entities),
        "popup": popup,
        "label": f"{to_iso(lab.start_ts)[5:16].replace('T', ' ')} MISSED {lab.kind} {', '.join(lab.entities)}",
    }


def _hm(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _rows_html(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='vm-kv'>{body}</table>"


def _popup(a: Alert, outcome: str, cfg: Any) -> str:
    head = {"match": "matched a label", "false_alarm": "FALSE ALARM: no label matched", "alert": ""}[outcome]
    ents = ", ".join(f"{e.id} {e.name}" if e.name else e.id for e in a.entities)
    rows = [
        ("id", f"{a.id} (rev {a.revision}, {a.status})"),
        ("entities", ents),
        ("span", f"{to_iso(a.start_ts)} → {to_iso(a.end_ts)} ({_hm(a.duration_s)})"),
        ("where", f"{a.lat:.5f}, {a.lon:.5f}"),
        ("severity", f"{a.severity}, confidence {a.confidence:.2f}"),
        ("zones / agencies", f"{', '.join(a.zones) or '-'} / {', '.join(a.agencies) or '-'}"),
        ("detector", f"{a.detector.name} {a.detector.version} ({a.detector.config_hash})"),
    ]
    checks = threshold_checks(a, cfg)
    check_rows = "".join(
        f"<tr class='{'ok' if c.holds else 'no' if c.holds is False else ''}'><td>{html.escape(c.figure)}</td>"
        f"<td>{html.escape(_v(c.value))}</td><td>{html.escape(c.op)}</td>"
        f"<td>{html.escape(_v(c.threshold))}</td><td>{html.escape(c.threshold_key)}</td></tr>"
        for c in checks
    )
    rest = unchecked_evidence(a, checks)
    rest_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td colspan=4>{html.escape(_v(v))}</td></tr>" for k, v in rest.items()
    )
    table = (
        "<table class='vm-ev'><tr><th>figure</th><th>value</th><th></th><th>threshold</th><th>key</th></tr>"
        f"{check_rows}{rest_rows}</table>"
    )
    title = f"<b>{html.escape(a.kind)}</b>" + (f" <i>{html.escape(head)}</i>" if head else "")
    return title + _rows_html(rows) + "<div class='vm-h'>why it fired</div>" + table


def _v(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "n/a" if value is None else str(value)


def _bbox(data: Mapping[str, Any]) -> list[float] | None:
    lats: list[float] = []
    lons: list[float] = []
    for item in (*data["alerts"], *data["misses"]):
        lats.append(item["lat"])
        lons.append(item["lon"])
    for parts in data["tracks"].values():
        for part in parts:
            lats += [p[1] for p in part]
            lons += [p[2] for p in part]
    if not lats:
        return None
    return [min(lats) - MARGIN_DEG, min(lons) - MARGIN_DEG, max(lats) + MARGIN_DEG, max(lons) + MARGIN_DEG]


def coast_rings(coastline: Path, bbox: Sequence[float]) -> list[dict[str, Any]]:
    """GSHHG rings clipped to the bbox, as Leaflet polygons (land, or water for lakes)."""
    import numpy as np
    import shapely

    south, west, north, east = bbox
    try:
        z = np.load(coastline)
    except (OSError, ValueError):
        return []
    lon, lat, offs, level = z["lon"], z["lat"], z["ring_offsets"], z["ring_level"]
    out: list[dict[str, Any]] = []
    for k in range(len(offs) - 1):
        a, b = int(offs[k]), int(offs[k + 1])
        rl, ro = lat[a:b], lon[a:b]
        if b - a < 4 or rl.max() < south or rl.min() > north or ro.max() < west or ro.min() > east:
            continue
        poly = shapely.make_valid(shapely.Polygon(np.column_stack((ro, rl))))
        clipped = shapely.clip_by_rect(poly, west, south, east, north)
        land = int(level[k]) in (1, 3, 5)
        for g in getattr(clipped, "geoms", [clipped]):
            if g.is_empty or g.geom_type != "Polygon":
                continue
            coords = [[round(y, 4), round(x, 4)] for x, y in g.exterior.coords]
            out.append({"land": land, "level": int(level[k]), "p": coords})
    out.sort(key=lambda r: r["level"])  # lakes above land, islands above lakes
    return out


# --- HTML -----------------------------------------------------------------------------------------
def _leaflet_css() -> str:
    css = (STATIC / "leaflet.css").read_text(encoding="utf-8")
    for name in ("layers.png", "layers-2x.png"):
        uri = "data:image/png;base64," + base64.b64encode((STATIC / name).read_bytes()).decode()
        css = css.replace(f"url(images/{name})", f"url({uri})")
    return css


def _page(title: str, subtitle: str, data: Mapping[str, Any]) -> str:
    blob = orjson.dumps(data).decode().replace("</", "<\\/")
    return (
        TEMPLATE.read_text(encoding="utf-8")
        .replace("%%TITLE%%", html.escape(title))
        .replace("%%SUBTITLE%%", html.escape(subtitle))
        .replace("%%LEAFLET_CSS%%", _leaflet_css())
        .replace("%%LEAFLET_JS%%", (STATIC / "leaflet.js").read_text(encoding="utf-8"))
        .replace("%%DATA%%", blob)
    )


def map_for_run(
    out: Path,
    alerts: Iterable[Alert],
    inputs: Sequence[Path],
    settings: Any,
    *,
    input_format: str | None = None,
    outcomes: Mapping[str, str] | None = None,
    misses: Sequence[Label] = (),
    title: str = "vigiamar alerts",
    subtitle: str = "",
    context_s: float = DEFAULT_CONTEXT_S,
) -> MapSummary:
    """The map of a finished run: reads the inputs again for the tracks around every alert."""
    from detectors.registry import detector_configs

    alert_list = list(alerts)
    tracks = collect_tracks(inputs, windows_for(alert_list, misses, context_s), input_format)
    configs = detector_configs(settings.detectors, str(settings.path))
    return write_map(
        out,
        alert_list,
        tracks,
        title=title,
        subtitle=subtitle,
        outcomes=outcomes,
        misses=misses,
        configs=configs,
        coastline=settings.resolve(settings.reference.coastline),
    )
