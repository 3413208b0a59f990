"""Remote ID (ASTM F3411) JSON: both shapes, unit conversion at the edge, F3411's unknown
values, rejects by reason, detection, and the G-TEKV patrol replayed from Remote ID."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.position import Position
from models.settings import Settings
from models.timeutil import parse_iso
from streams.embedded import replay
from streams.sources.registry import detect_format, open_text
from streams.sources.remoteid import RemoteIdDecoder
from tests.conftest import read_lines

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "air" / "remoteid_gtekv_2020-04-17.jsonl.gz"


def decode(*objs: object) -> tuple[RemoteIdDecoder, list[Position]]:
    dec = RemoteIdDecoder("rid.jsonl")
    lines = [o if isinstance(o, str) else json.dumps(o) for o in objs]
    items = list(dec.decode(lines))
    assert dec.stats.balanced()
    return dec, [i for i in items if isinstance(i, Position)]


NETRID = {
    "id": "flight-1",
    "current_state": {
        "timestamp": {"value": "2023-05-01T10:00:00.5Z", "format": "RFC3339"},
        "position": {"lat": 50.9, "lng": 1.2, "alt": 100.0},
        "track": 90.0,
        "speed": 10.0,
        "vertical_speed": -1.0,
    },
    "details": {"uas_id": {"serial_number": "1596F3518A7D6A2BC55B"}, "operator_location": {"lat": 50.89, "lng": 1.19}},
}
BROADCAST = {
    "time": 1682935200,
    "UASID": "1596F3518A7D6A2BC55B",
    "Latitude": 50.9,
    "Longitude": 1.2,
    "AltitudeGeo": 100.0,
    "SpeedHorizontal": 10.0,
    "SpeedVertical": 1.0,
    "Direction": 270.0,
    "OperatorLatitude": 50.89,
    "OperatorLongitude": 1.19,
}


def test_network_remote_id_is_converted_to_feet_and_knots() -> None:
    dec, (p,) = decode(NETRID)
    assert (p.entity_type, p.entity_id, p.source) == ("aircraft", "1596F3518A7D6A2BC55B", "remoteid")
    assert p.ts == parse_iso("2023-05-01T10:00:00.5Z")
    assert (p.lat, p.lon, p.course_deg) == (50.9, 1.2, 90.0)
    assert p.altitude_ft == pytest.approx(328.084, abs=1e-3)  # 100 m
    assert p.speed_kn == pytest.approx(19.438, abs=1e-3)  # 10 m/s
    assert p.vertical_rate_fpm == pytest.approx(-196.85, abs=1e-2)  # 1 m/s down
    assert dec.stats.notes["operator_position"] == 1


def test_broadcast_remote_id_in_opendroneid_names() -> None:
    dec, (p, q) = decode(BROADCAST, {**BROADCAST, "time": 1682935201000})  # epoch s, then ms
    assert (p.ts, q.ts) == (1682935200.0, 1682935201.0)
    assert p.altitude_ft == pytest.approx(328.084, abs=1e-3)
    assert p.vertical_rate_fpm == pytest.approx(196.85, abs=1e-2)
    assert p.course_deg == 270.0
    assert dec.stats.positions == 2


def test_f3411_unknown_values_become_none() -> None:
    _, (p,) = decode(
        {**BROADCAST, "AltitudeGeo": -1000.0, "SpeedHorizontal": 255.0, "SpeedVertical": 63.0, "Direction": 361.0}
    )
    assert (p.altitude_ft, p.speed_kn, p.vertical_rate_fpm, p.course_deg) == (None, None, None, None)
    _, (q,) = decode({**BROADCAST, "AltitudeGeo": -1000.0, "AltitudeBaro": 50.0})
    assert q.altitude_ft == pytest.approx(164.04, abs=1e-2)  # falls back to barometric


def test_id_falls_back_to_registration_then_flight_id() -> None:
    netrid = {**NETRID, "details": {"uas_id": {"registration_id": "FRA-OP-123"}}}
    assert decode(netrid)[1][0].entity_id == "FRA-OP-123"
    assert decode({**NETRID, "details": {}})[1][0].entity_id == "flight-1"


def test_bad_input_is_rejected_by_reason() -> None:
    dec, pos = decode(
        "",
        "{not json",
        "[1]",
        {**BROADCAST, "Latitude": 0, "Longitude": 0},
        {**BROADCAST, "Latitude": None},
        {k: v for k, v in BROADCAST.items() if k != "UASID"},
        {k: v for k, v in BROADCAST.items() if k != "time"},
        {**BROADCAST, "time": "tomorrow"},
        {**BROADCAST, "Latitude": "50.9"},
        {**BROADCAST, "Latitude": 91.0},
        {**BROADCAST, "SpeedHorizontal": -3.0},
        {**BROADCAST, "AltitudeGeo": "high"},
        {**NETRID, "current_state": []},
        {**BROADCAST, "OperatorLatitude": "x"},  # a bad operator position does not lose the drone
    )
    assert len(pos) == 1
    assert dec.stats.rejects == {
        "bad_json": 1,
        "not_an_object": 1,
        "no_position": 2,
        "bad_id": 1,
        "no_time": 1,
        "bad_time": 1,
        "bad_lat": 1,
        "lat_out_of_range": 1,
        "bad_speed": 1,
        "bad_altitude": 1,
        "bad_current_state": 1,
    }
    assert dec.stats.ignored == {"blank": 1}
    assert dec.stats.notes["bad_operator_position"] == 1


def test_detection_tells_remote_id_from_vigiamar_jsonl() -> None:
    assert detect_format([json.dumps(NETRID)], "x") == "remoteid"
    assert detect_format([json.dumps(BROADCAST)], "x") == "remoteid"
    assert detect_format(['{"type": "aircraft", "id": "abc", "time": 0, "lat": 1, "lon": 2}'], "x") == "jsonl"


def test_the_fixture_replays_the_gtekv_patrol_orbit(settings: Settings) -> None:
    with open_text(FIXTURE) as text:
        assert detect_format(list(itertools.islice(text, 5)), str(FIXTURE)) == "remoteid"
    dec = RemoteIdDecoder(str(FIXTURE))
    list(dec.decode(read_lines(FIXTURE)))
    assert dec.stats.balanced() and dec.stats.positions == 271 and sum(dec.stats.rejects.values()) == 8
    report, _ = replay([FIXTURE], settings, on_alert=lambda a: None, on_reject=lambda r: None)
    orbits = [a for a in report.alerts_final.values() if a.kind == "air_orbit"]
    # the same patrol orbit the ADS-B CSV gives (tests/detectors/test_air_orbit.py): units
    # went m → ft and m/s → kn and back without changing the detection
    assert len(orbits) == 1
    assert abs(orbits[0].start_ts - parse_iso("2020-04-17T05:36:10Z")) <= 60
    assert abs(orbits[0].end_ts - parse_iso("2020-04-17T06:05:00Z")) <= 60
    assert orbits[0].entities[0].id == "TKV000000407918"


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["time", "UASID", "Latitude", "Longitude", "AltitudeGeo", "SpeedHorizontal", "Direction", "current_state"]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=True),
            st.text(max_size=5),
            st.lists(st.integers(), max_size=2),
        ),
    )
)
def test_fuzz_never_raises(obj: dict[str, object]) -> None:
    dec = RemoteIdDecoder("fuzz")
    list(dec.decode([json.dumps(obj)]))
    assert dec.stats.balanced()
