"""``parse_iso``: the whole-second fast path gives exactly what ``datetime`` gives, and refuses what it refuses."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.timeutil import parse_iso, to_iso
from models.timeutil import parse_iso_full as reference  # the full parse, every form


def outcome(parse: object, text: str) -> object:
    try:
        return parse(text)  # type: ignore[operator]
    except ValueError:
        return ValueError


@settings(max_examples=400, deadline=None)
@given(st.datetimes())  # naive, years 1 to 9999
def test_whole_seconds_with_and_without_zone(dt: datetime) -> None:
    text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    for form in (text, text + "Z", text + "z"):
        got = parse_iso(form)
        assert got == reference(form) and type(got) is float, form


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.sampled_from("0123456789-T:Zz +.٣"), min_size=19, max_size=20).map("".join),
    st.sampled_from(["2020-06-30T00:22:12", "2024-02-29T23:59:59", "1970-01-01T00:00:00"]),
    st.integers(0, 18),
)
def test_any_19_or_20_characters_parse_or_fail_as_datetime_does(noise: str, valid: str, at: int) -> None:
    mutated = valid[:at] + noise[at] + valid[at + 1 :]  # one character changed, anything in place
    for text in (noise, mutated, mutated + "Z", valid[:at] + valid[at + 1 :] + "Z"):
        assert outcome(parse_iso, text) == outcome(reference, text), repr(text)


@pytest.mark.parametrize(
    "text",
    [
        "2021-02-29T00:00:00Z",  # not a leap year
        "2020-13-01T00:00:00Z",
        "2020-06-31T00:00:00",
        "2020-06-30T24:00:00Z",
        "2020-06-30T23:60:00Z",
        "2020-06-30T23:59:60Z",
        "0000-01-01T00:00:00Z",
        "2020-06-30 00:22:12Z",  # other separators: the full parse decides
        "2020-06-30T00:22:12.5Z",
        "2020-06-30T00:22:12+02:00",
        " 2020-06-30T00:22:12",
        "２０２０-06-30T00:22:12",  # non-ASCII digits
    ],
)
def test_edge_forms_agree_with_datetime(text: str) -> None:
    assert outcome(parse_iso, text) == outcome(reference, text)


def test_round_trip_of_the_wire_form() -> None:
    for ts in (0.0, 1593476532.0, 1593476532.25, -86400.0, 4102444799.0):
        assert parse_iso(to_iso(ts)) == ts
