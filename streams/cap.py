"""An alert revision as a CAP 1.2 message (OASIS Common Alerting Protocol), a view of the record.

Mapping: ``identifier`` = ``<id>-r<revision>``; ``msgType`` Alert (open), Update (update),
Cancel (closed: the pattern no longer holds); ``references`` = the earlier revisions of the
same alert the caller has seen; ``sent`` = the revision's ``end`` (event time, so the same
input always renders the same XML); severity low/medium/high → Minor/Moderate/Severe;
certainty from confidence; the place as a CAP circle; entities, zones and evidence as
``parameter`` elements. Times use ``-00:00`` for UTC, as CAP requires (no ``Z``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from models.alert import Alert

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SENDER = "vigiamar@alerts.vigiamar"
MSG_TYPE = {"open": "Alert", "update": "Update", "closed": "Cancel"}
SEVERITY = {"low": "Minor", "medium": "Moderate", "high": "Severe"}
EVENT = {
    "loitering": "Vessel loitering at sea",
    "rendezvous": "Vessel rendezvous at sea",
    "dark_rendezvous": "Rendezvous with a dark vessel",
    "ais_gap": "AIS transmission gap",
    "spoofing": "Position or identity spoofing",
    "zone_entry": "Entry into a watched zone",
    "air_orbit": "Aircraft orbiting",
    "air_loiter": "Aircraft loitering over an area",
    "air_low_slow": "Aircraft low and slow",
    "air_landing": "Aircraft landing away from an airfield",
    "air_sea_rendezvous": "Air–sea rendezvous",
}


def cap_time(ts: float) -> str:
    return datetime.fromtimestamp(round(ts), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def identifier(alert: Alert) -> str:
    return f"{alert.id}-r{alert.revision}"


def certainty(confidence: float) -> str:
    if confidence >= 0.8:
        return "Likely"
    if confidence >= 0.5:
        return "Possible"
    return "Unlikely"


def to_cap(alert: Alert, earlier: Sequence[tuple[str, float]] = ()) -> str:
    """The CAP 1.2 XML document of one revision; ``earlier``: (identifier, sent) seen before."""
    root = ET.Element("alert", {"xmlns": CAP_NS})
    _sub(root, "identifier", identifier(alert))
    _sub(root, "sender", SENDER)
    _sub(root, "sent", cap_time(alert.end_ts))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", MSG_TYPE.get(alert.status, "Update"))
    _sub(root, "scope", "Restricted")
    _sub(root, "restriction", "Law enforcement and coast guard use: " + ", ".join(alert.agencies or ("unrouted",)))
    if earlier and alert.revision > 1:
        _sub(root, "references", " ".join(f"{SENDER},{ident},{cap_time(sent)}" for ident, sent in earlier))
    _sub(root, "incidents", alert.id)
    info = ET.SubElement(root, "info")
    _sub(info, "language", "en-US")
    _sub(info, "category", "Security")
    _sub(info, "event", EVENT.get(alert.kind, alert.kind))
    _sub(info, "responseType", "Monitor" if alert.status != "closed" else "AllClear")
    _sub(info, "urgency", "Past" if alert.status == "closed" else "Immediate")
    _sub(info, "severity", SEVERITY.get(alert.severity, "Unknown"))
    _sub(info, "certainty", certainty(alert.confidence))
    _sub(info, "eventCode", alert.kind, value_name="vigiamar:kind")
    _sub(info, "onset", cap_time(alert.start_ts))
    _sub(info, "senderName", "vigiamar")
    who = ", ".join(f"{e.type} {e.id}" + (f" ({e.name})" if e.name else "") for e in alert.entities)
    _sub(info, "headline", f"{EVENT.get(alert.kind, alert.kind)}: {who}"[:160])
    _sub(info, "description", _description(alert, who))
    params = [
        ("alert_id", alert.id),
        ("revision", str(alert.revision)),
        ("status", alert.status),
        ("confidence", f"{alert.confidence:.3f}"),
        ("detector", f"{alert.detector.name} {alert.detector.version} {alert.detector.config_hash}"),
    ]
    params += [(f"entity:{e.type}", e.id + (f" {e.name}" if e.name else "")) for e in alert.entities]
    params += [("zone", z) for z in alert.zones]
    params += [(f"evidence:{k}", str(v)) for k, v in sorted(alert.evidence.items()) if v is not None]
    for name, value in params:
        param = ET.SubElement(info, "parameter")
        _sub(param, "valueName", name)
        _sub(param, "value", value)
    area = ET.SubElement(info, "area")
    _sub(area, "areaDesc", ", ".join(alert.zones) or f"{alert.lat:.4f}, {alert.lon:.4f}")
    radius_km = max(float(alert.evidence.get("radius_m") or 1000.0) / 1000.0, 0.1)
    _sub(area, "circle", f"{alert.lat:.6f},{alert.lon:.6f} {radius_km:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _description(alert: Alert, who: str) -> str:
    span = f"from {cap_time(alert.start_ts)} to {cap_time(alert.end_ts)}"
    state = {"open": "detected", "update": "continuing", "closed": "ended"}.get(alert.status, alert.status)
    return f"{alert.kind} {state}: {who}, {span}, near {alert.lat:.4f}, {alert.lon:.4f}."


def _sub(parent: ET.Element, tag: str, text: str, value_name: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if value_name is not None:  # CAP's valueName/value pairs (eventCode)
        _sub(el, "valueName", value_name)
        _sub(el, "value", text)
    else:
        el.text = text
    return el
