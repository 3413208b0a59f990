"""NMEA 0183 AIS decoder: real feeds (shared/data/nmea), constructed sentences, and a fuzz test."""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any

import pyais
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyais.encode import encode_dict

from models.errors import MissingTimeError
from models.position import Position, Reject, VesselStatic
from models.timeutil import parse_iso
from streams.sources.base import Item
from streams.sources.nmea import NmeaDecoder

NMEA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "nmea"
needs_data = pytest.mark.skipif(
    not NMEA_DIR.is_dir(), reason=f"shared NMEA data not found at {NMEA_DIR} (clone shared/ beside main/)"
)
T0 = 1_600_000_000.0  # 2020-09-13T12:26:40Z
MMSI = 366053209


# -- helpers ------------------------------------------------------------------------------------


def checksum(body: str) -> str:
    return f"{reduce(xor, body.encode(), 0):02X}"


def sentence(
    payload: str,
    fill: int = 0,
    *,
    count: int = 1,
    num: int = 1,
    seq: str = "",
    channel: str = "A",
    talker: str = "AIVDM",
) -> str:
    body = f"{talker},{count},{num},{seq},{channel},{payload},{fill}"
    return f"!{body}*{checksum(body)}"


def tag_block(**fields: object) -> str:
    body = ",".join(f"{key}:{value}" for key, value in fields.items())
    return f"\\{body}*{checksum(body)}\\"


def payloads(data: dict[str, Any]) -> list[tuple[str, int]]:
    """AIS payload parts (armoured text, fill bits) encoded by pyais."""
    parts = []
    for line in encode_dict(data, talker_id="AI", sentence_type="VDM"):
        fields = line.split("*")[0].split(",")
        parts.append((fields[5], int(fields[6])))
    return parts


def one_line(data: dict[str, Any], ts: float = T0) -> str:
    ((payload, fill),) = payloads(data)
    return tag_block(c=int(ts)) + sentence(payload, fill)


def decode(lines: Iterable[str], **kwargs: Any) -> tuple[list[Item], NmeaDecoder]:
    decoder = NmeaDecoder("test", **kwargs)
    items = list(decoder.decode(lines))
    assert decoder.stats.balanced(), decoder.stats
    return items, decoder


def only(items: list[Item], kind: type) -> list[Any]:
    return [item for item in items if isinstance(item, kind)]


def read(name: str) -> list[str]:
    return (NMEA_DIR / name).read_text(encoding="utf-8").splitlines()


GPGGA = "$GPGGA,184353.07,1929.045,S,02410.506,E,1,04,2.6,100.00,M,-33.9,M,,0000*6D"
POSITION = {
    "type": 1,
    "mmsi": MMSI,
    "status": 0,
    "speed": 12.3,
    "lat": 36.5,
    "lon": -75.25,
    "course": 45.6,
    "heading": 90,
}


# -- real feeds ---------------------------------------------------------------------------------


@needs_data
def test_receiver_feed_sample_counts():
    items, dec = decode(read("pyais_nmea_data_sample.txt"), assume_ts=T0)
    s = dec.stats
    assert s.lines == 898
    assert s.rejects == {"empty_payload": 100, "incomplete_multipart": 20, "position_not_available": 4}
    orphans = [r for r in only(items, Reject) if r.reason == "incomplete_multipart"]
    assert all(r.raw.startswith("!AIVDM,2,1,") and "\n" not in r.raw for r in orphans)
    # 778 single-part messages: types 1 (667), 3 (76), 18 (19) are positions, 4 of them lat 91 / lon 181.
    assert s.positions == 667 + 76 + 19 - 4
    assert s.statics == 2  # type 24
    assert s.ignored == {"type_15": 7, "type_4": 6, "type_20": 1}
    assert all(item.ts == T0 for item in items if not isinstance(item, Reject))
    assert s.fragments == 0


@needs_data
def test_feed_without_any_time_is_a_clear_error():
    dec = NmeaDecoder("sample")
    seen: list[Item] = []
    with pytest.raises(MissingTimeError, match="no event time in input"):
        for item in dec.decode(read("pyais_nmea_data_sample.txt")):
            seen.append(item)
    assert not only(seen, Position)
    assert dec.stats.rejects["no_time"] == 764
    assert dec.stats.balanced()


@needs_data
def test_tag_blocks_time_and_interleaved_group():
    items, dec = decode(read("libais_tagblock.nmea"))
    (static,) = only(items, VesselStatic)
    assert (static.mmsi, static.name, static.call_sign, static.ts) == (
        "219005012",
        "ROSINANTE",
        "XPD5019",
        1418169601.0,
    )
    assert [p.ts for p in only(items, Position)] == [1418172113.0, 1418171722.0, 1418171561.0]
    assert dec.stats.fragments == 1 and dec.stats.record_lines == 4


@needs_data
def test_uscg_receiver_metadata_times_and_junk_types():
    items, dec = decode(read("libais_test.aivdm"))
    s = dec.stats
    assert (s.ignored["comment"], s.ignored["blank"]) == (47, 35)
    invalid = [r for r in only(items, Reject) if r.reason == "invalid_type"]
    assert len(invalid) == 17 and all(r.raw.split(",")[5].startswith("L") for r in invalid)
    assert "no_time" not in s.rejects
    first = only(items, Position)[0]
    assert (first.entity_id, first.ts) == ("354490000", 1272412827.0)
    statics = {v.name: v for v in only(items, VesselStatic) if v.imo}
    assert statics["SEA HAWK"].ts == 1272672016.0 and statics["BALSA58"].call_sign == "3FJR7"
    assert s.fragments == 2


@needs_data
def test_pyais_sample_bad_tag_blocks_and_two_part_savdm():
    items, dec = decode(read("pyais_sample.ais"), assume_ts=T0)
    s = dec.stats
    assert s.rejects["bad_tag_block_checksum"] == 4
    assert s.rejects["not_nmea"] == 1  # IamNotAnAisMessage1111
    assert s.rejects["bad_checksum"] == 1  # $PGHP,1,2009,… with the 2008 line's checksum
    (static,) = only(items, VesselStatic)
    assert (static.name, static.call_sign, static.ts) == ("MARE ISLAND", "WDC2198", 1428621738.0)


@needs_data
def test_gatehouse_pghp_times_following_sentences():
    items, dec = decode(read("pyais_gatehouse.nmea"))
    when = parse_iso("2008-05-09T00:00:00.010Z")
    positions = only(items, Position)
    assert len(positions) == 4 and all(p.ts == pytest.approx(when) for p in positions)
    (bad,) = only(items, Reject)
    assert (bad.where, bad.reason) == ("7", "bad_checksum") and bad.raw.startswith("$PGHP,1,2009")
    assert dec.stats.ignored["gatehouse_time"] == 3


@needs_data
def test_mixed_file_non_ais_sentences_and_junk():
    _, dec = decode(read("pyais_mixed.txt"), assume_ts=T0)
    assert dec.stats.ignored["non_ais_sentence"] == 4  # $GPGGA $GPRTE $IIMWV $GPR00
    assert dec.stats.rejects["not_nmea"] == 2  # IamNotAnAisMessage1111, foobar
    assert dec.stats.rejects["bad_tag_block_checksum"] == 3


@needs_data
@pytest.mark.parametrize(
    "name",
    [
        "pyais_nmea_data_sample.txt",
        "pyais_sample.ais",
        "pyais_mixed.txt",
        "pyais_gatehouse.nmea",
        "libais_test.aivdm",
        "libais_typeexamples.nmea",
        "libais_tagblock.nmea",
    ],
)
def test_every_shared_file_balances(name):
    items, dec = decode(read(name), assume_ts=T0)
    assert dec.stats.lines == len(read(name))
    assert len(only(items, Reject)) == sum(dec.stats.rejects.values())


# -- not-available values -----------------------------------------------------------------------


def test_valid_values_pass_through():
    items, _ = decode([one_line(POSITION | {"status": 15})])
    (p,) = items
    assert isinstance(p, Position)
    assert (p.entity_id, p.ts, p.lat, p.lon) == (str(MMSI), T0, 36.5, -75.25)
    assert (p.speed_kn, p.course_deg, p.heading_deg, p.nav_status, p.source) == (12.3, 45.6, 90.0, 15, "nmea")


@pytest.mark.parametrize(
    ("change", "attr"),
    [({"speed": 102.3}, "speed_kn"), ({"course": 360}, "course_deg"), ({"heading": 511}, "heading_deg")],
)
@pytest.mark.parametrize("ais_type", [1, 3, 18])
def test_not_available_kinematics_become_none(change, attr, ais_type):
    (p,), _ = decode([one_line(POSITION | {"type": ais_type} | change)])
    assert isinstance(p, Position) and getattr(p, attr) is None
    assert p.lat == 36.5  # the rest of the report is kept


@pytest.mark.parametrize("change", [{"lat": 91}, {"lon": 181}, {"lat": 91, "lon": 181}])
def test_position_not_available_is_rejected(change):
    (r,), _ = decode([one_line(POSITION | change)])
    assert isinstance(r, Reject) and r.reason == "position_not_available"


def test_long_range_type_27_not_available():
    data = {"type": 27, "mmsi": MMSI, "status": 3, "lat": 10.0, "lon": 20.0, "speed": 63, "course": 511}
    (p,), _ = decode([one_line(data)])
    assert isinstance(p, Position)
    assert (p.lat, p.lon, p.nav_status) == (10.0, 20.0, 3)
    assert (p.speed_kn, p.course_deg, p.heading_deg) == (None, None, None)


# -- static data --------------------------------------------------------------------------------


def test_type_5_static_two_parts():
    data = {
        "type": 5,
        "mmsi": MMSI,
        "shipname": "TEST SHIP",
        "callsign": "AB12",
        "imo": 0,
        "ship_type": 70,
        "to_bow": 50,
        "to_stern": 20,
        "to_port": 5,
        "to_starboard": 6,
    }
    (p1, f1), (p2, f2) = payloads(data)
    lines = [
        tag_block(c=int(T0)) + sentence(p1, f1, count=2, num=1, seq="3"),
        sentence(p2, f2, count=2, num=2, seq="3"),
    ]
    (v,), dec = decode(lines)
    assert v == VesselStatic(str(MMSI), T0, "TEST SHIP", "AB12", None, 70, 70.0, 11.0, "nmea")
    assert dec.stats.fragments == 1 and dec.stats.record_lines == 1


def test_type_24_halves():
    a = one_line({"type": 24, "partno": 0, "mmsi": MMSI, "shipname": "LITTLE ONE"})
    b = one_line(
        {
            "type": 24,
            "partno": 1,
            "mmsi": MMSI,
            "callsign": "XY9",
            "ship_type": 37,
            "to_bow": 5,
            "to_stern": 4,
            "to_port": 1,
            "to_starboard": 2,
        }
    )
    (va, vb), _ = decode([a, b])
    assert (va.name, va.call_sign, va.length_m) == ("LITTLE ONE", None, None)
    assert (vb.name, vb.call_sign, vb.ship_type, vb.length_m, vb.width_m) == (None, "XY9", 37, 9.0, 3.0)


# -- checksums and framing ----------------------------------------------------------------------


def test_bad_sentence_checksum_is_rejected_although_pyais_accepts_it():
    good = sentence(payloads(POSITION)[0][0])
    bad = good[:-2] + ("00" if not good.endswith("00") else "01")
    assert pyais.decode(bad).mmsi == MMSI  # pyais alone takes it
    (r,), _ = decode([bad], assume_ts=T0)
    assert isinstance(r, Reject) and r.reason == "bad_checksum"


def test_bad_tag_block_checksum_is_rejected():
    line = one_line(POSITION)
    block, rest = line[1:].split("\\", 1)
    (r,), _ = decode(["\\" + block[:-2] + "00\\" + rest], assume_ts=T0)
    assert isinstance(r, Reject) and r.reason == "bad_tag_block_checksum"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("IamNotAnAisMessage1111", "not_nmea"),
        ("foobar", "not_nmea"),
        ("\x00\x01\xff!garbage", "not_nmea"),
        ("!AIVDM,1,1,,B,15N4cJ005Jrek0H@9nDW5608EP,013", "missing_checksum"),
        (sentence("", 0), "empty_payload"),
        ("!AIVDM,1,1,,A,,0*26", "empty_payload"),
        (sentence("16UK7Fi0?w4tQF0l4Q@>401v1PS;", count=0), "bad_fragment_fields"),
        (sentence("16UK7Fi0?w4tQF0l4Q@>401v1PS;", count=1, num=2), "bad_fragment_fields"),
        (sentence("Lpuo<p0<CpgaHa@euMlc"), "invalid_type"),
        (sentence("15N4cJ005Jr"), "short_payload"),
        (sentence("15N4cJ{05Jrek0H@9nDW5608EP"), "bad_payload"),
        (sentence("15N4cJ005Jrek0H@9nDW5608EP", 7), "bad_fill_bits"),
        ("!" + "AIVDM,1,1,,A" + "*" + checksum("AIVDM,1,1,,A"), "truncated"),
        (GPGGA[:-1] + "E", "bad_checksum"),
        ("\\c:1600000000*00!AIVDM", "bad_tag_block"),
    ],
)
def test_junk_is_rejected_with_a_reason(line, reason):
    (r,), _ = decode([line], assume_ts=T0)
    assert isinstance(r, Reject) and r.reason == reason and r.raw == line


def test_blank_comment_and_non_ais_lines_are_ignored():
    lines = ["", "   ", "# a comment", GPGGA, "$IIMWV,271.0,R,000.2,N,A*3B"]
    items, dec = decode(lines, assume_ts=T0)
    assert items == []
    assert dec.stats.ignored == {"blank": 2, "comment": 1, "non_ais_sentence": 2}


def test_other_message_types_are_ignored_by_type():
    base = one_line({"type": 4, "mmsi": 3669702, "year": 2020, "month": 1, "day": 1})
    items, dec = decode([base])
    assert items == [] and dec.stats.ignored == {"type_4": 1}


def test_non_ship_mmsi_is_kept_and_noted():
    items, dec = decode([one_line(POSITION | {"mmsi": 970123456}), one_line(POSITION)])
    assert len(only(items, Position)) == 2
    assert dec.stats.notes["non_ship_mmsi"] == 1


# -- event time ---------------------------------------------------------------------------------


def test_tag_block_time_in_milliseconds():
    ((payload, fill),) = payloads(POSITION)
    (p,), _ = decode([tag_block(s="rX", c=int(T0) * 1000 + 250) + sentence(payload, fill)])
    assert p.ts == T0 + 0.25


@pytest.mark.parametrize(
    "prefix",
    [
        "2020-09-13T12:26:40Z,",
        "2020-09-13T12:26:40Z;",
        "2020-09-13T12:26:40Z ",
        "1600000000\t",
        "1600000000,",
        "1600000000000;",
        "2020-09-13 12:26:40\t",
    ],
)
def test_leading_timestamp_column(prefix):
    ((payload, fill),) = payloads(POSITION)
    (p,), _ = decode([prefix + sentence(payload, fill)])
    assert isinstance(p, Position) and p.ts == T0


def test_receiver_metadata_last_field_is_the_time():
    ((payload, fill),) = payloads(POSITION)
    line = sentence(payload, fill) + ",d-093,S2212,t235959.00,T59.00339837,r09STOL1,1600000000"
    (p,), _ = decode([line])
    assert p.ts == T0


def test_time_preference_tag_block_then_column_then_metadata():
    ((payload, fill),) = payloads(POSITION)
    s = sentence(payload, fill)
    lines = [
        f"1600000100,{tag_block(c=1600000200)}{s},b1,1600000300",
        f"1600000100,{s},b1,1600000300",
        f"{s},b1,1600000300",
    ]
    items, _ = decode(lines, assume_ts=T0)
    assert [p.ts for p in items] == [1600000200.0, 1600000100.0, 1600000300.0]


def test_pghp_times_following_sentences_and_assume_ts_is_last():
    ((payload, fill),) = payloads(POSITION)
    body = "PGHP,1,2020,9,13,12,26,40,500,338,2,,1,09"
    plain = sentence(payload, fill)
    lines = [plain, f"${body}*{checksum(body)}", plain, plain]
    items, _ = decode(lines, assume_ts=1.0e9)
    assert [p.ts for p in items] == [1.0e9, T0 + 0.5, T0 + 0.5]


def test_sentences_without_time_are_rejected_when_others_have_time():
    ((payload, fill),) = payloads(POSITION)
    items, _ = decode([sentence(payload, fill), one_line(POSITION)])
    assert [type(i) for i in items] == [Reject, Position] and items[0].reason == "no_time"


def test_input_without_any_time_raises_missing_time():
    ((payload, fill),) = payloads(POSITION)
    dec = NmeaDecoder("untimed.nmea")
    with pytest.raises(MissingTimeError) as info:
        list(dec.decode(["# header", sentence(payload, fill), sentence(payload, fill)]))
    assert info.value.source == "untimed.nmea"
    assert dec.stats.rejects == {"no_time": 2} and dec.stats.balanced()


# -- multi-part reassembly ----------------------------------------------------------------------


def _two_part(mmsi: int, name: str) -> list[tuple[str, int]]:
    return payloads(
        {
            "type": 5,
            "mmsi": mmsi,
            "shipname": name,
            "callsign": "C1",
            "imo": 1234567,
            "ship_type": 30,
            "to_bow": 10,
            "to_stern": 10,
            "to_port": 2,
            "to_starboard": 2,
        }
    )


def test_interleaved_multipart_messages_by_sequence_id():
    (a1, af1), (a2, af2) = _two_part(MMSI, "ALPHA")
    (b1, bf1), (b2, bf2) = _two_part(MMSI + 1, "BRAVO")
    lines = [
        sentence(a1, af1, count=2, num=1, seq="1"),
        sentence(b1, bf1, count=2, num=1, seq="2"),
        one_line(POSITION),
        sentence(b2, bf2, count=2, num=2, seq="2"),
        sentence(a2, af2, count=2, num=2, seq="1"),
    ]
    items, dec = decode(lines, assume_ts=T0)
    assert [getattr(i, "name", None) for i in items] == [None, "BRAVO", "ALPHA"]
    assert items[2].imo == "1234567"
    assert dec.stats.fragments == 2 and dec.stats.record_lines == 3


def test_incomplete_multipart_evicted_after_max_group_lines_and_at_end():
    (a1, af1), _ = _two_part(MMSI, "ALPHA")
    (b1, bf1), _ = _two_part(MMSI, "BRAVO")
    lines = [
        sentence(a1, af1, count=2, num=1, seq="1"),
        one_line(POSITION),
        one_line(POSITION),
        one_line(POSITION),
        sentence(b1, bf1, count=2, num=1, seq="2"),
    ]
    items, dec = decode(lines, max_group_lines=2)
    kinds = [(type(i).__name__, getattr(i, "reason", None)) for i in items]
    assert kinds[0] == ("Position", None) and kinds[1] == ("Reject", "incomplete_multipart")
    assert kinds[-1] == ("Reject", "incomplete_multipart")  # the one still open at end of input
    assert dec.stats.rejects["incomplete_multipart"] == 2 and dec.stats.rejected_lines == 2


def test_eviction_follows_the_first_line_of_each_message():
    (a1, _), _ = _two_part(MMSI, "ALPHA")
    lines = [
        sentence(a1, 0, count=3, num=1, seq="1"),  # message 1 starts on line 1
        sentence(a1, 0, count=2, num=1, seq="2"),  # message 2 starts on line 2
        sentence(a1, 0, count=3, num=2, seq="1"),  # message 1 goes on, still started on line 1
        one_line(POSITION),
        one_line(POSITION),
        one_line(POSITION),
    ]
    items, _ = decode(lines, max_group_lines=3)
    assert [getattr(i, "where", "pos") for i in items] == ["1", "pos", "2", "pos", "pos"]
    assert [getattr(i, "raw", "").count("\n") for i in items if isinstance(i, Reject)] == [1, 0]


def test_same_key_restarting_rejects_old_parts_in_one_reject():
    (a1, af1), _ = _two_part(MMSI, "ALPHA")
    lines = [
        sentence(a1, af1, count=3, num=1, seq="4"),
        sentence(a1, 0, count=3, num=2, seq="4"),
        sentence(a1, af1, count=3, num=1, seq="4"),
    ]
    items, dec = decode(lines, assume_ts=T0)
    (r,) = [i for i in items if isinstance(i, Reject) and i.where == "1"]
    assert r.reason == "incomplete_multipart" and r.raw == "\n".join(lines[:2])
    assert dec.stats.rejected_lines == 3  # the two old parts now, the restarted one at end of input


def test_stray_later_part_is_rejected():
    (_, _), (a2, af2) = _two_part(MMSI, "ALPHA")
    (r,), _ = decode([sentence(a2, af2, count=2, num=2, seq="1")], assume_ts=T0)
    assert r.reason == "incomplete_multipart"


# -- fuzz ---------------------------------------------------------------------------------------


def _seed_lines() -> list[str]:
    lines = [
        one_line(POSITION),
        one_line(POSITION | {"heading": 511}),
        "!AIVDM,1,1,,A,,0*26",
        "# comment",
        "",
        "$PGHP,1,2008,5,9,0,0,0,10,338,2,,1,09*17",
        GPGGA,
    ]
    (a1, af1), (a2, af2) = _two_part(MMSI, "ALPHA")
    lines += [
        tag_block(g="1-2-77", c=int(T0)) + sentence(a1, af1, count=2, num=1, seq="5"),
        tag_block(g="2-2-77") + sentence(a2, af2, count=2, num=2, seq="5"),
    ]
    if NMEA_DIR.is_dir():
        for name in ("libais_tagblock.nmea", "pyais_sample.ais", "libais_test.aivdm", "pyais_gatehouse.nmea"):
            lines += read(name)[:60]
    return lines


SEED = _seed_lines()


@st.composite
def mutated_lines(draw: st.DrawFn) -> list[str]:
    picked = draw(st.lists(st.sampled_from(SEED), min_size=1, max_size=30))
    out: list[str] = []
    for line in picked:
        op = draw(st.sampled_from(["keep", "truncate", "flip", "garbage", "unicode", "dup", "splice"]))
        if op == "truncate" and line:
            line = line[: draw(st.integers(0, len(line) - 1))]
        elif op == "flip" and line:
            i = draw(st.integers(0, len(line) - 1))
            line = line[:i] + draw(st.characters(max_codepoint=0x2FF)) + line[i + 1 :]
        elif op == "garbage":
            i = draw(st.integers(0, len(line)))
            line = line[:i] + draw(st.text(alphabet="!$\\*,:-0123456789ABCDEFgc@`w", max_size=12)) + line[i:]
        elif op == "unicode":
            line = draw(st.text(max_size=40))
        elif op == "dup":
            out.append(line)
        elif op == "splice" and out:
            line = out[-1][: len(out[-1]) // 2] + line[len(line) // 2 :]
        out.append(line)
    if draw(st.booleans()):  # interleave: shuffle the lines
        out = draw(st.permutations(out))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=mutated_lines(), max_group=st.integers(1, 60))
def test_fuzz_never_crashes_and_always_balances(lines, max_group):
    dec = NmeaDecoder("fuzz", assume_ts=T0, max_group_lines=max_group)
    items = list(dec.decode(lines))
    assert dec.stats.balanced(), dec.stats
    assert dec.stats.lines == len(lines)
    assert all(isinstance(i, Position | VesselStatic | Reject) for i in items)
    assert "internal_error" not in dec.stats.rejects

    untimed = NmeaDecoder("fuzz")  # without an assumed time only MissingTimeError may escape
    try:
        for _ in untimed.decode(lines):
            pass
    except MissingTimeError:
        pass
    assert untimed.stats.balanced()
