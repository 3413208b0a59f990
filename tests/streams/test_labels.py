"""Labelled-event files: both formats read the same, every problem names the file, line and field."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from models.timeutil import parse_iso
from streams.labels import LabelError, load_labels, parse_csv, parse_json
from tests.conftest import REPO

LABELS = REPO / "data" / "labels"
GFW = LABELS / "virginia_beach_2020-06-04_to_06_gfw.csv"
NEARSHORE = LABELS / "virginia_beach_2020-06-04_to_06_nearshore.csv"

CSV = """\
# kinds: loitering, rendezvous
# hand-written example
id,kind,entities,start,end,note
A1,loitering,367584050,2020-06-04T12:47:14Z,2020-06-04T15:11:54Z,"slow, 23 nm offshore"
A2,rendezvous,367000002;367000001,2020-06-05T10:00Z,2020-06-05T12:10:00+00:00,
"""


def test_bundled_label_files_load_and_state_their_origin() -> None:
    gfw = load_labels(GFW)
    assert gfw.kinds == ("loitering", "rendezvous")  # rendezvous declared: a checked negative
    assert [(lab.kind, lab.entities) for lab in gfw.labels] == [("loitering", ("367584050",))] * 2
    first = gfw.labels[0]
    assert (first.id, first.start_ts, first.end_ts) == (
        "L001",
        parse_iso("2020-06-04T12:44:54Z"),
        parse_iso("2020-06-04T15:50:25Z"),
    )
    assert "GFW loitering" in first.note and "23.2 nm" in first.note
    near = load_labels(NEARSHORE)
    assert len(near.labels) == 18 and {lab.kind for lab in near.labels} == {"loitering"}
    readme = (LABELS / "README.md").read_text()
    for name in (GFW.name, NEARSHORE.name, "tools/label_gfw.py", "MarineCadastre"):
        assert name in readme


def test_csv_and_json_forms_are_equivalent(tmp_path: Path) -> None:
    from_csv = parse_csv(CSV, "x.csv")
    doc = {
        "kinds": ["loitering", "rendezvous"],
        "labels": [
            {"id": "A1", "kind": "loitering", "entities": [367584050], "start": "2020-06-04T12:47:14Z",
             "end": "2020-06-04T15:11:54Z", "note": "slow, 23 nm offshore"},
            {"id": "A2", "kind": "rendezvous", "entities": ["367000001", "367000002"], "start": "2020-06-05T10:00Z",
             "end": "2020-06-05T12:10:00Z"},
        ],
    }  # fmt: skip
    path = tmp_path / "labels.json.gz"
    path.write_bytes(gzip.compress(orjson.dumps(doc)))
    from_json = load_labels(path)
    assert from_json.labels == from_csv.labels and from_json.kinds == from_csv.kinds
    pair = from_csv.labels[1]
    assert pair.entities == ("367000001", "367000002")  # order as written does not matter
    assert pair.note == "" and pair.duration_s == 7800


def test_without_a_kinds_line_the_present_kinds_are_covered() -> None:
    body = "kind,entities,start,end\nloitering,1,2020-06-04T00:00:00Z,2020-06-04T01:00:00Z\n"
    labels = parse_csv(body)
    assert labels.kinds == ("loitering",) and labels.labels[0].id == "L001"
    assert parse_json("[]").kinds == () and parse_json('{"kinds": ["ais_gap"]}').kinds == ("ais_gap",)


HEADER = "id,kind,entities,start,end,note\n"
ROW = "L1,loitering,367584050,2020-06-04T12:00:00Z,2020-06-04T13:00:00Z,\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + ROW.replace("loitering", "fishing"), "x.csv:2: kind: 'fishing' is not an alert kind"),
        (HEADER + ROW.replace("13:00:00Z", "11:00:00Z"), "x.csv:2: end 2020-06-04T11:00:00Z is before start"),
        (HEADER + ROW.replace("13:00:00Z", "13:00:00"), "x.csv:2: end: '2020-06-04T13:00:00' has no time zone"),
        (HEADER + ROW.replace("2020-06-04T12:00:00Z", "yesterday"), "x.csv:2: start: 'yesterday' is not an ISO 8601"),
        (HEADER + ROW.replace("367584050", "367584050;"), "x.csv:2: entities: empty entity id"),
        (HEADER + ROW.replace("367584050", "1;1"), "x.csv:2: entities: an id appears twice"),
        (HEADER + ROW.replace(",loitering,", ",,"), "x.csv:2: kind: missing"),
        (HEADER + ROW + ROW, "x.csv: id 'L1' is used twice"),
        (HEADER + ROW.rstrip("\n") + ",extra\n", "x.csv:2: 7 fields, the header has 6"),
        ("id,kind,entity,start,end\n", "x.csv:1: header lacks column 'entities'"),
        ("kind,entities,start,end,comment\n", "x.csv:1: unknown column 'comment'"),
        ("# only a comment\n", "x.csv: no header row"),
        ("# kinds: loitering, fishing\n" + HEADER, "x.csv:1: kinds: 'fishing' is not an alert kind"),
        ("# kinds: ais_gap\n" + HEADER + ROW, "kinds: labels of kind 'loitering' but it is not declared"),
    ],
)
def test_csv_problems_name_the_line_and_the_field(text: str, message: str) -> None:
    with pytest.raises(LabelError) as err:
        parse_csv(text, "x.csv")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "x.json: not valid JSON"),
        ('{"labels": [], "kind": []}', "unknown top-level key 'kind'"),
        ('{"kinds": "loitering"}', "'kinds' must be a list"),
        ('[{"kind": "loitering", "entities": ["1"], "start": "2020-06-04T00:00Z"}]', "x.json: label #1: end: missing"),
        ('[{"kind": "loitering", "entity": ["1"]}]', "label #1: unknown field 'entity'"),
        ('[{"kind": "loitering", "entities": {"a": 1}, "start": "x", "end": "y"}]', "entities: expected a list"),
        ("[3]", "label #1: expected an object, got int"),
        ('"labels"', "expected a list of labels"),
    ],
)
def test_json_problems_name_the_entry_and_the_field(text: str, message: str) -> None:
    with pytest.raises(LabelError) as err:
        parse_json(text, "x.json")
    assert message in str(err.value)


def test_file_level_problems(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="no such labels file"):
        load_labels(tmp_path / "missing.csv")
    odd = tmp_path / "labels.txt"
    odd.write_text(HEADER + ROW)
    with pytest.raises(LabelError, match=r"name the file \.csv or \.json"):
        load_labels(odd)
