"""MAVLink .tlog decoder: frames written by pymavlink's own encoder (v1 and v2), unit
conversion at the edge, damaged logs, detection by extension, and the fixture replayed."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymavlink.dialects.v20 import common

from models.position import Position
from models.settings import Settings
from models.timeutil import parse_iso
from streams.embedded import replay
from streams.sources.mavlink import MavlinkDecoder
from streams.sources.registry import detect_format

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "air" / "mavlink_gtekv_2020-04-17.tlog"
T0 = 1_587_108_000.0  # 2020-04-17T07:20:00Z


def record(ts: float, msg: object, sysid: int = 7, v1: bool = False) -> bytes:
    mav = common.MAVLink(None, srcSystem=sysid, srcComponent=1)
    return round(ts * 1e6).to_bytes(8, "big") + msg.pack(mav, force_mavlink1=v1)  # type: ignore[attr-defined]


def gpi(lat: float, lon: float, alt_m: float, vn: float, ve: float, vd: float) -> object:
    mav = common.MAVLink(None)
    return mav.global_position_int_encode(
        0,
        round(lat * 1e7),
        round(lon * 1e7),
        round(alt_m * 1000),
        0,
        round(vn * 100),
        round(ve * 100),
        round(vd * 100),
        0,
    )


def decode(data: bytes) -> tuple[MavlinkDecoder, list[Position]]:
    dec = MavlinkDecoder("test.tlog")
    items = list(dec.decode_bytes(data))
    assert dec.stats.balanced()
    return dec, [i for i in items if isinstance(i, Position)]


def test_global_position_int_in_record_units() -> None:
    mav = common.MAVLink(None)
    data = record(T0, mav.heartbeat_encode(2, 3, 0, 0, 4)) + record(T0 + 0.25, gpi(50.95, 0.94, 100.0, 3.0, 4.0, -2.0))
    dec, (p,) = decode(data)
    assert (p.entity_type, p.entity_id, p.source) == ("aircraft", "mavlink-7", "mavlink")
    assert p.ts == T0 + 0.25  # the tlog reception time
    assert (p.lat, p.lon) == (pytest.approx(50.95), pytest.approx(0.94))
    assert p.altitude_ft == pytest.approx(328.084, abs=1e-3)  # 100 m MSL
    assert p.speed_kn == pytest.approx(5.0 * 3600 / 1852, abs=1e-6)  # |(3, 4)| = 5 m/s
    assert p.course_deg == pytest.approx(math.degrees(math.atan2(4.0, 3.0)))  # ground track, not yaw
    assert p.vertical_rate_fpm == pytest.approx(393.7, abs=0.1)  # 2 m/s up (vz is down)
    assert dec.stats.ignored == {"msg_HEARTBEAT": 1}


def test_mavlink1_frames_and_other_systems() -> None:
    data = record(T0, gpi(50.0, 1.0, 10.0, 0.0, 0.0, 0.0), sysid=3, v1=True) + record(
        T0 + 1, gpi(50.0, 1.0, 10.0, 0.1, 0.0, 0.0), sysid=4
    )
    _, (a, b) = decode(data)
    assert (a.entity_id, b.entity_id) == ("mavlink-3", "mavlink-4")
    assert a.course_deg is None  # hovering: no ground track from a zero velocity
    assert b.course_deg is None  # 0.1 m/s is below the noise floor


def test_damaged_logs_are_rejected_and_decoding_resumes() -> None:
    good = record(T0, gpi(50.0, 1.0, 10.0, 1.0, 0.0, 0.0))
    bad_crc = bytearray(record(T0 + 1, gpi(50.0, 1.0, 10.0, 1.0, 0.0, 0.0)))
    bad_crc[20] ^= 0xFF
    no_fix = record(T0 + 2, gpi(0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    unknown = bytearray(record(T0 + 3, gpi(50.0, 1.0, 10.0, 1.0, 0.0, 0.0)))
    unknown[8 + 7 : 8 + 10] = (60000).to_bytes(3, "little")  # a message id outside the dialect
    junk = b"\x00\x01not a record"
    truncated = record(T0 + 5, gpi(50.0, 1.0, 10.0, 1.0, 0.0, 0.0))[:-6]
    dec, pos = decode(good + bytes(bad_crc) + no_fix + bytes(unknown) + junk + good + truncated)
    assert len(pos) == 2
    assert dec.stats.rejects == {"bad_crc": 1, "no_fix": 1, "bad_frame": 1, "truncated": 1}
    assert dec.stats.ignored == {"unknown_message": 1}


def test_the_fixture_file_decodes_by_extension(tmp_path: Path, settings: Settings) -> None:
    assert detect_format(["\x00garbled"], str(FIXTURE)) == "mavlink"
    assert detect_format([], "flight.TLOG.gz") == "mavlink"
    dec = MavlinkDecoder(str(FIXTURE))
    items = list(dec.decode([]))
    s = dec.stats
    assert s.balanced()
    assert s.positions == 150 and s.ignored["msg_HEARTBEAT"] == 150 and s.ignored["msg_SYS_STATUS"] == 1
    assert s.rejects == {"no_fix": 1, "bad_crc": 1, "bad_frame": 1, "truncated": 1}
    pos = [i for i in items if isinstance(i, Position)]
    assert pos[0].ts == T0 and pos[-1].ts == parse_iso("2020-04-17T07:44:50Z")
    # gzip is read transparently, as for every other input
    gz = tmp_path / "gtekv.tlog.gz"
    gz.write_bytes(gzip.compress(FIXTURE.read_bytes(), mtime=0))
    again = MavlinkDecoder(str(gz))
    assert sum(isinstance(i, Position) for i in again.decode([])) == 150
    # replayed: the drone's last orbits before landing at Lydd; the landing is at an airfield
    report, _ = replay([FIXTURE], settings, on_alert=lambda a: None, on_reject=lambda r: None)
    kinds = sorted(a.kind for a in report.alerts_final.values())
    assert "air_orbit" in kinds and "air_landing" not in kinds


def test_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    from models.errors import InputError

    with pytest.raises(InputError):
        list(MavlinkDecoder(str(tmp_path / "missing.tlog")).decode([]))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 3))
def test_fuzz_never_raises_and_balances(noise: bytes, where: int) -> None:
    good = record(T0, gpi(50.0, 1.0, 10.0, 1.0, 0.0, 0.0))
    parts = [good, good, good]
    parts.insert(min(where, 3), noise)
    dec = MavlinkDecoder("fuzz.tlog")
    list(dec.decode_bytes(b"".join(parts)))
    assert dec.stats.balanced()
