"""SBS-1 / BaseStation decoder: a real flight in port-30003 form, the velocity join, every
reject reason, format detection, and a fuzz test (never raises, lines always balance)."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from models.position import Position, Reject
from models.settings import Settings
from models.timeutil import parse_iso
from streams.embedded import replay
from streams.sources.registry import detect_format, open_text
from streams.sources.sbs import SbsDecoder
from tests.conftest import read_lines

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "air" / "sbs_fhmac_2021-10-07.sbs.gz"
DAY = "2021/10/07"


def line(mtype: int, hexid: str = "39B002", clock: str = "13:40:00.000", **f: str) -> str:
    cols = [""] * 22
    cols[0:10] = ["MSG", str(mtype), "1", "1", hexid, "1", DAY, clock, DAY, clock]
    for key, idx in (("callsign", 10), ("alt", 11), ("gs", 12), ("track", 13), ("lat", 14), ("lon", 15), ("vr", 16)):
        cols[idx] = f.get(key, "")
    cols[21] = f.get("ground", "0")
    return ",".join(cols)


def decode(lines: list[str]) -> tuple[SbsDecoder, list[Position], list[Reject]]:
    dec = SbsDecoder("test.sbs")
    items = list(dec.decode(lines))
    assert dec.stats.balanced()
    return dec, [i for i in items if isinstance(i, Position)], [i for i in items if isinstance(i, Reject)]


def test_position_joined_with_the_latest_velocity_and_callsign() -> None:
    dec, pos, rej = decode(
        [
            line(1, callsign="FHMAC   "),
            line(4, clock="13:40:00.500", gs="53", track="324.2", vr="128"),
            line(3, clock="13:40:01.250", alt="775", lat="48.4872", lon="2.1106"),
        ]
    )
    assert rej == []
    (p,) = pos
    assert (p.entity_type, p.entity_id, p.callsign, p.source) == ("aircraft", "39b002", "FHMAC", "sbs")
    assert p.ts == parse_iso("2021-10-07T13:40:01.250Z")
    assert (p.lat, p.lon, p.altitude_ft) == (48.4872, 2.1106, 775.0)  # feet, as sent
    assert (p.speed_kn, p.course_deg, p.vertical_rate_fpm) == (53.0, 324.2, 128.0)  # kn, °, ft/min
    assert dec.stats.ignored == {"ident": 1, "velocity": 1}


def test_old_or_later_velocity_is_not_joined() -> None:
    _, pos, _ = decode(
        [
            line(4, clock="13:39:40.000", gs="53", track="324", vr="0"),  # 20 s old
            line(3, clock="13:40:00.000", alt="775", lat="48.48", lon="2.11"),
            line(4, clock="13:40:01.000", gs="60", track="10", vr="0"),  # after the position
        ]
    )
    assert pos[0].speed_kn is None and pos[0].course_deg is None


def test_velocity_of_another_aircraft_is_not_joined() -> None:
    _, pos, _ = decode([line(4, hexid="4CA1B2", gs="450", track="90"), line(3, alt="775", lat="48.48", lon="2.11")])
    assert pos[0].speed_kn is None


def test_surface_position_carries_its_own_speed_and_track() -> None:
    _, pos, _ = decode([line(2, gs="12", track="370", lat="49.0097", lon="2.5479", ground="-1")])
    assert (pos[0].speed_kn, pos[0].course_deg, pos[0].altitude_ft) == (12.0, 10.0, None)


def test_tis_b_address_is_kept_with_its_tilde() -> None:
    _, pos, _ = decode([line(3, hexid="~A1B2C3", alt="1000", lat="48.5", lon="2.2")])
    assert pos[0].entity_id == "~a1b2c3"


def test_every_bad_line_is_rejected_with_its_reason() -> None:
    dec, pos, rej = decode(
        [
            "",
            "SEL,,1,1,39B002,1,2021/10/07,13:40:00.000,2021/10/07,13:40:00.000,FHMAC",
            "CLK,,,,,,2021/10/07,13:40:00.000,2021/10/07,13:40:00.000",
            line(5, alt="1800"),
            line(3, hexid="39B00Z", alt="1", lat="48", lon="2"),
            line(3, alt="1"),
            line(3, alt="1", lat="north", lon="2"),
            line(3, alt="1", lat="95", lon="2"),
            line(3, alt="x", lat="48", lon="2"),
            line(4, gs="fast"),
            line(3, clock="13:61:00", alt="1", lat="48", lon="2"),
            line(3, clock="", alt="1", lat="48", lon="2").replace(DAY, "2021-10-07"),
            "MSG,3,1,1,39B002,1,2021/10/07,13:40:00.000",
            line(9, alt="1"),
            "garbage",
        ]
    )
    assert pos == []
    assert dec.stats.rejects == {
        "bad_hex_ident": 1,
        "no_position": 1,
        "bad_lat": 1,
        "lat_out_of_range": 1,
        "bad_altitude": 1,
        "bad_ground_speed": 1,
        "bad_time": 2,
        "wrong_field_count": 1,
        "bad_transmission_type": 1,
        "not_sbs": 1,
    }
    assert dec.stats.ignored == {"blank": 1, "sbs_sel": 1, "sbs_clk": 1, "msg_5": 1}
    assert all(r.source == "test.sbs" and r.where.isdigit() for r in rej)


def test_the_fixture_decodes_and_balances() -> None:
    dec = SbsDecoder(str(FIXTURE))
    items = list(dec.decode(read_lines(FIXTURE)))
    s = dec.stats
    assert s.balanced()
    assert s.positions == 2284  # every F-HMAC row with a position, 13:21:56–14:00:00
    assert s.ignored["velocity"] == 2259 and s.ignored["ident"] == 77
    assert sum(s.rejects.values()) == 8  # the malformed lines appended on purpose
    pos = [i for i in items if isinstance(i, Position)]
    assert all(p.entity_id == "39b002" and p.callsign == "FHMAC" for p in pos)
    assert sum(p.speed_kn is not None for p in pos) > 0.95 * len(pos)


def test_detected_and_replayed_like_the_csv(settings: Settings) -> None:
    with open_text(FIXTURE) as text:
        assert detect_format(list(itertools.islice(text, 5)), str(FIXTURE)) == "sbs"
    report, _ = replay([FIXTURE], settings, on_alert=lambda a: None, on_reject=lambda r: None)
    kinds = {a.kind: a for a in report.alerts_final.values()}
    # the same descent to 150 ft south of Paris the CSV gives (tests/detectors/test_air_paris.py)
    landing = kinds["air_landing"]
    assert abs(landing.start_ts - parse_iso("2021-10-07T13:45:19Z")) <= 30
    assert "air_low_slow" in kinds


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="MSG,0123456789.:/-~ABCDEFabcdef\n", max_size=120), max_size=20))
def test_fuzz_never_raises_and_balances(lines: list[str]) -> None:
    dec = SbsDecoder("fuzz")
    list(dec.decode(lines))
    assert dec.stats.balanced()
