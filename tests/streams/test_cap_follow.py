"""``vigiamar alerts`` output: highest revision per id wins; CAP 1.2 rendering."""

from __future__ import annotations

import io
from xml.etree import ElementTree as ET

import orjson

from detectors.lifecycle import AlertDraft, emit
from models.alert import Alert, AlertStatus, DetectorInfo, EntityRef, validate_alert_wire
from streams.cap import CAP_NS, to_cap
from streams.follow import Follower
from streams.wire import alert_value

NS = {"cap": CAP_NS}
ALERT_CHILDREN = ["identifier", "sender", "sent", "status", "msgType", "scope", "restriction", "references",
                  "incidents", "info"]  # fmt: skip
INFO_CHILDREN = ["language", "category", "event", "responseType", "urgency", "severity", "certainty", "eventCode",
                 "onset", "senderName", "headline", "description", "parameter", "area"]  # fmt: skip


def revision(n: int, status: AlertStatus, end: float = 1591285623.0) -> Alert:
    draft = AlertDraft(
        "loitering", (EntityRef("vessel", "367584050", "DOLPHIN"),), 1591275134.0, end, 36.9, -75.5, "high", 0.85,
        {"duration_s": 3600, "radius_m": 315, "distance_to_shore_m": None},
    )  # fmt: skip
    alert = emit(DetectorInfo("loitering", "1.0", "abc"), draft, n, status)
    return alert.with_routing(("us-mid-atlantic",), ("uscg-d5",))


def order(el: ET.Element) -> list[str]:
    names = [c.tag.split("}")[1] for c in el]
    return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]


def test_cap_documents_follow_the_schema_order_and_mappings() -> None:
    first, second, last = revision(1, "open"), revision(2, "update"), revision(3, "closed", 1591290000.0)
    doc = ET.fromstring(to_cap(first).split("\n", 1)[1])
    assert doc.tag == f"{{{CAP_NS}}}alert"
    assert order(doc) == [c for c in ALERT_CHILDREN if c != "references"]
    info = doc.find("cap:info", NS)
    assert info is not None and order(info) == INFO_CHILDREN
    assert doc.findtext("cap:msgType", namespaces=NS) == "Alert"
    assert doc.findtext("cap:sent", namespaces=NS) == "2020-06-04T15:47:03-00:00"  # CAP: no "Z"
    assert info.findtext("cap:severity", namespaces=NS) == "Severe"
    assert info.findtext("cap:certainty", namespaces=NS) == "Likely"
    circle = info.findtext("cap:area/cap:circle", namespaces=NS)
    assert circle == "36.900000,-75.500000 0.315"

    upd = ET.fromstring(to_cap(second, [(f"{first.id}-r1", first.end_ts)]).split("\n", 1)[1])
    assert upd.findtext("cap:msgType", namespaces=NS) == "Update"
    refs = upd.findtext("cap:references", namespaces=NS)
    assert refs == f"vigiamar@alerts.vigiamar,{first.id}-r1,2020-06-04T15:47:03-00:00"
    closed = ET.fromstring(to_cap(last).split("\n", 1)[1])
    assert closed.findtext("cap:msgType", namespaces=NS) == "Cancel"
    assert closed.findtext("cap:identifier", namespaces=NS) == f"{last.id}-r3"


def test_follower_prints_each_revision_once_and_never_an_older_one() -> None:
    r1, r2, r3 = revision(1, "open"), revision(2, "update"), revision(3, "closed")
    out = io.StringIO()
    follower = Follower("jsonl")
    for alert in (r1, r2, r1, r2, r3, r2, r3):  # at-least-once delivery: repeats after a restart
        text = follower.offer(alert_value(alert))
        if text is not None:
            out.write(text)
    follower.offer(b"not json")
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [r["revision"] for r in lines] == [1, 2, 3]
    assert all(validate_alert_wire(r) == [] for r in lines)
    assert follower.duplicates == 4 and follower.undecodable == 1


def test_follower_cap_and_table_formats() -> None:
    cap = Follower("cap")
    cap.offer(alert_value(revision(1, "open")))
    doc = cap.offer(alert_value(revision(2, "update")))
    assert doc is not None and "<references>" in doc and doc.startswith("<?xml")
    table = Follower("table")
    line = table.offer(alert_value(revision(1, "open")))
    assert line is not None and "loitering" in line and "367584050 (DOLPHIN)" in line and "uscg-d5" in line
