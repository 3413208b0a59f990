"""Detector state ↔ JSON-able values: lossless for the values states are made of."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import state_codec
from detectors.cleaning import CleanState
from detectors.loitering import LoiteringState
from models.errors import DecodeError
from models.position import VesselStatic


@state_codec.register
@dataclass(slots=True)
class Inner:
    x: float = 0.0
    tags: list[str] = field(default_factory=list)


@state_codec.register
@dataclass
class Outer:
    inner: Inner | None = None
    pairs: tuple[int, ...] = ()
    table: dict[str, Any] = field(default_factory=dict)
    items: list[Inner] = field(default_factory=list)
    flag: bool = False
    label: str | None = None


floats = st.floats(allow_nan=False) | st.sampled_from([math.inf, -math.inf])
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # what JSON (orjson) carries exactly
plain = st.none() | st.booleans() | ints | floats | st.text(max_size=8)
values = st.recursive(
    plain,
    lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
inners = st.builds(Inner, x=floats, tags=st.lists(st.text(max_size=4), max_size=3))
outers = st.builds(
    Outer,
    inner=st.none() | inners,
    pairs=st.tuples(ints, ints),
    table=st.dictionaries(st.text(max_size=5), values, max_size=3),
    items=st.lists(inners, max_size=3),
    flag=st.booleans(),
    label=st.none() | st.text(max_size=6),
)


def through_json(obj: Any) -> Any:
    return state_codec.decode(orjson.loads(orjson.dumps(state_codec.encode(obj))))


@settings(max_examples=150)
@given(values)
def test_plain_values_round_trip_through_json(value: Any) -> None:
    assert through_json(value) == value


@settings(max_examples=80)
@given(outers)
def test_nested_state_dataclasses_round_trip(obj: Outer) -> None:
    back = through_json(obj)
    assert type(back) is Outer and back == obj


def test_real_states_round_trip_without_registration() -> None:
    """Dataclasses of detectors/ and models/ are found by name: a new detector needs no wiring."""
    loiter = LoiteringState(entity_id="367584050", since_ts=1.5e9, hist=[0, 3, 1], revision=2)
    clean = CleanState(1.0, 36.9, -75.5, 1.0, 36.9, -75.5, alt_ts=None)
    static = VesselStatic("367584050", 1.6e9, name="DOLPHIN", ship_type=52)
    for obj in (loiter, clean, static):
        assert through_json(obj) == obj


def test_non_finite_floats_are_tagged_not_lost() -> None:
    assert state_codec.encode(-math.inf) == {"$f": "-inf"}
    assert math.isnan(state_codec.decode({"$f": "nan"}))


def test_unknown_or_untrusted_classes_are_refused() -> None:
    with pytest.raises(DecodeError, match="unknown_state_class"):
        state_codec.decode({"$t": "os.path.Whatever"})
    with pytest.raises(DecodeError, match="unknown_state_class"):
        state_codec.decode({"$t": "detectors.loitering.NoSuchState"})

    @dataclass
    class Local:
        a: int = 1

    with pytest.raises(TypeError):
        state_codec.encode(Local())
    with pytest.raises(TypeError):
        state_codec.encode({1: "not a string key"})
    with pytest.raises(TypeError):
        state_codec.encode(object())


def test_a_field_the_class_no_longer_has_is_an_error_not_silence() -> None:
    data = state_codec.encode(Inner(1.0))
    data["gone"] = 3
    with pytest.raises(DecodeError, match="bad_state"):
        state_codec.decode(data)
