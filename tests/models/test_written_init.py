"""Dataclasses whose ``__init__`` is written out (``init=False``) take exactly their fields.

In the compiled build (``make compiled``), a dataclass's generated ``__init__`` is Python code
made at import time, so it runs interpreted: about 300 ns a call against 40 ns for a written
one. The records made for every position (``Position``, the cell engine's ``Sample`` and
``SampleNote``, loitering's state, …) therefore write theirs out. This test keeps each written
``__init__`` equal to what ``@dataclass`` would generate: the same parameters in field order,
the same defaults, a fresh list where the field has a ``default_factory``, and every field set.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Any

import pytest

import detectors
import models
from models import compiled


def written_init_classes() -> list[type]:
    found = []
    for package in (models, detectors):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for obj in vars(module).values():
                if (
                    isinstance(obj, type)
                    and obj.__module__ == module.__name__
                    and dataclasses.is_dataclass(obj)
                    and not obj.__dataclass_params__.init  # type: ignore[attr-defined]
                ):
                    found.append(obj)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


CLASSES = written_init_classes()


def test_the_per_position_records_write_their_init() -> None:
    names = {c.__qualname__ for c in CLASSES}
    assert {"Position", "Sample", "SampleNote", "LoiteringState", "LogEntry"} <= names


@pytest.mark.skipif(compiled.active(), reason="no exact signature when compiled: the sources pass checks it")
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_written_init_takes_the_fields_in_order_with_their_defaults(cls: type) -> None:
    assert not hasattr(cls, "__post_init__"), "a written __init__ would not call it"
    fields = dataclasses.fields(cls)
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields, strict=True):
        assert p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, f.name
        if f.default is not dataclasses.MISSING:
            assert p.default == f.default and type(p.default) is type(f.default), f.name
        elif f.default_factory is not dataclasses.MISSING:
            assert p.default is None, f"{f.name}: None stands for a fresh default_factory() value"
        else:
            assert p.default is inspect.Parameter.empty, f.name


def _value(annotation: Any, name: str, index: int) -> Any:
    """A distinct value of the field's declared type (compiled classes check the type).

    The sources' annotations are text; the compiled build's are classes, ``type`` for a
    union (all of them optional here): None then.
    """
    if not isinstance(annotation, str):
        simple = {float: float(index) + 0.5, int: index, str: f"{name}-{index}", list: [index]}
        return simple.get(annotation)
    text = annotation
    if text.startswith("list"):
        return [index]
    if "float" in text:
        return float(index) + 0.5
    if "int" in text:
        return index
    return f"{name}-{index}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_written_init_sets_every_field(cls: type) -> None:
    fields = dataclasses.fields(cls)
    given = _values(fields)
    obj = cls(**given)
    assert {f.name: getattr(obj, f.name) for f in fields} == given
    assert dataclasses.replace(obj) == obj  # replace() goes through the written __init__ too


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
def test_default_factories_give_each_object_its_own_value(cls: type) -> None:
    factories = [f for f in dataclasses.fields(cls) if f.default_factory is not dataclasses.MISSING]
    required = _values([f for f in dataclasses.fields(cls) if _required(f)])
    a, b = cls(**required), cls(**required)
    for f in factories:
        assert getattr(a, f.name) == f.default_factory()  # type: ignore[misc]
        assert getattr(a, f.name) is not getattr(b, f.name), f.name


def _values(fields: Any) -> dict[str, Any]:
    given = {f.name: _value(f.type, f.name, i) for i, f in enumerate(fields)}
    if "entity_type" in given:  # literals
        given["entity_type"] = "vessel"
    if "etype" in given:
        given["etype"] = "aircraft"
    if "sample" in given:
        from detectors.cells import Sample

        given["sample"] = Sample("vessel:1", "vessel", "1", 0.0, 0.0, 0.0, None, 0, 0.0)
    return given


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
