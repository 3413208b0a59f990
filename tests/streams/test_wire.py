"""What travels on the topics: frames, static records, partitions, CloudEvents headers, dead letters."""

from __future__ import annotations

import random

import orjson
import pytest

from detectors.lifecycle import AlertDraft, emit
from models.alert import DetectorInfo, EntityRef
from models.errors import DecodeError
from models.position import Position, VesselStatic
from streams.wire import (
    CONTROL_HEADER,
    END_OF_INPUT,
    INPUT_END_HEADER,
    Partitioner,
    alert_value,
    cloudevents_headers,
    dead_letter_headers,
    decode_alert,
    decode_frame,
    encode_frame,
    header_dict,
    input_end,
    is_end_of_input,
    murmur2,
    record_from_wire,
    record_to_wire,
)


def test_murmur2_is_the_partitioner_of_the_kafka_clients() -> None:
    from aiokafka.partitioner import murmur2 as aiokafka_murmur2  # faust's producer
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

    rng = random.Random(7)
    keys = [b"", b"a", b"366123456", b"4ca1f0", *(rng.randbytes(rng.randrange(40)) for _ in range(500))]
    for key in keys:
        assert murmur2(key) == kafka_python_murmur2(key) == aiokafka_murmur2(key)
    part = Partitioner(8)
    assert part("366123456") == (kafka_python_murmur2(b"366123456") & 0x7FFFFFFF) % 8


def test_frames_round_trip_positions_and_statics() -> None:
    pos = Position(
        "vessel", "367584050", 1591275134.0, 36.89, -75.49, speed_kn=0.4, course_deg=12.5, source="marinecadastre"
    )
    static = VesselStatic("367584050", 1591275000.0, name="DOLPHIN", call_sign="WDA1234", ship_type=52, length_m=20.0)
    frame = encode_frame([record_to_wire(pos), record_to_wire(static)])
    back = [record_from_wire(e) for e in decode_frame(frame)]
    assert back == [pos, static]


def test_one_record_per_message_is_a_frame_of_one() -> None:
    wire = Position("aircraft", "4ca1f0", 1.6e9, 48.8, 2.3).to_wire()
    assert decode_frame(orjson.dumps(wire)) == [wire]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(None, "empty_value"), (b"\xff\xfe", "bad_json"), (b"{oops", "bad_json"), (b"42", "not_a_record")],
)
def test_undecodable_messages_name_their_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_frame(raw)
    assert err.value.reason == reason


def test_bad_static_fields_are_refused() -> None:
    with pytest.raises(DecodeError, match="bad_ship_type"):
        record_from_wire({"type": "vessel_static", "id": "1", "time": "2020-01-01T00:00:00Z", "ship_type": "x"})
    with pytest.raises(DecodeError, match="bad_time"):
        record_from_wire({"type": "vessel_static", "id": "1", "time": 5})


def test_end_of_input_marker() -> None:
    assert is_end_of_input([(CONTROL_HEADER, END_OF_INPUT)])
    assert not is_end_of_input(None) and not is_end_of_input([("other", b"x")])
    assert input_end([(CONTROL_HEADER, END_OF_INPUT), (INPUT_END_HEADER, b"1591315199.5")]) == 1591315199.5
    assert input_end([(INPUT_END_HEADER, b"soon")]) is None and input_end([(INPUT_END_HEADER, b"nan")]) is None
    assert input_end([(CONTROL_HEADER, END_OF_INPUT)]) is None  # a marker from an older feed: the partition's own end


def test_alert_value_and_cloudevents_headers() -> None:
    info = DetectorInfo("loitering", "1.0", "abc")
    draft = AlertDraft(
        "loitering", (EntityRef("vessel", "367584050"),), 1591275134.0, 1591285623.0, 36.9, -75.5, "medium", 0.8, {}
    )
    alert = emit(info, draft, 3, "update")
    headers = header_dict(cloudevents_headers(alert))
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == f"{alert.id}:3"
    assert headers["ce_type"] == "org.vigiamar.alert.loitering"
    assert headers["ce_time"] == "2020-06-04T15:47:03Z"
    assert headers["ce_source"].startswith("urn:vigiamar:")
    assert headers["content-type"] == "application/json"
    assert decode_alert(alert_value(alert)) == alert


def test_dead_letter_headers_say_where_and_why() -> None:
    h = header_dict(dead_letter_headers("bad_lat", "positions.vessel", 3, 1234, "95.0", index=7))
    assert h == {
        "dlq_reason": "bad_lat", "dlq_topic": "positions.vessel", "dlq_partition": "3",
        "dlq_offset": "1234", "dlq_index": "7", "dlq_detail": "95.0",
    }  # fmt: skip
