"""Detector and track state ↔ JSON-able values, so a faust Table (changelog) can hold them.

States are dataclasses of plain values: ``None``, ``bool``, ``int``, ``float`` (non-finite
included), ``str``, lists, tuples, string-keyed dicts and nested state dataclasses. The
encoding is generic and lossless for those::

    encode(LoiteringState(...)) == {"$t": "detectors.loitering.LoiteringState", "n": 3, ...}
    decode(encode(x)) == x

Tags: ``{"$t": name, ...fields}`` a registered dataclass, ``{"$f": "inf"}`` a non-finite
float, ``{"$tuple": [...]}`` a tuple, ``{"$d": {...}}`` a dict. Only registered classes are
ever instantiated by :func:`decode`; a class is registered explicitly with
:func:`register`, or on first use when it is a dataclass defined in one of the
:data:`TRUSTED_PACKAGES` (so a new detector's state needs no extra wiring).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, Final, TypeVar

from models.errors import DecodeError

T = TypeVar("T")

TRUSTED_PACKAGES: Final[tuple[str, ...]] = ("detectors.", "models.")

_REGISTRY: dict[str, type[Any]] = {}
_FIELDS: dict[type[Any], tuple[tuple[str, ...], tuple[str, ...]]] = {}  # (init fields, other fields)
_NAMES: dict[type[Any], str] = {}


def class_name(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register(cls: type[T]) -> type[T]:
    """Allow ``cls`` (a dataclass) in encoded state; usable as a class decorator."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass")
    _REGISTRY[class_name(cls)] = cls
    _NAMES[cls] = class_name(cls)
    fields = dataclasses.fields(cls)
    _FIELDS[cls] = (tuple(f.name for f in fields if f.init), tuple(f.name for f in fields if not f.init))
    return cls


def _lookup(name: str) -> type[Any]:
    cls = _REGISTRY.get(name)
    if cls is not None:
        return cls
    module, _, qualname = name.rpartition(".")
    if not module.startswith(TRUSTED_PACKAGES) or not qualname.isidentifier():
        raise DecodeError("unknown_state_class", name)
    try:
        found = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError) as exc:
        raise DecodeError("unknown_state_class", name) from exc
    if not (isinstance(found, type) and dataclasses.is_dataclass(found)):
        raise DecodeError("unknown_state_class", name)
    return register(found)


def _plain(v: Any) -> bool:
    t = type(v)
    return t is int or t is str or t is bool or v is None or (t is float and math.isfinite(v))


def encode(value: Any) -> Any:
    """A JSON-able form of ``value`` (see the module docstring for what is allowed)."""
    if _plain(value):
        return value
    if isinstance(value, float):
        return {"$f": repr(value)}  # inf, -inf, nan
    if isinstance(value, bool | int | str):  # subclasses (enums) as their plain value
        return value
    if isinstance(value, list):
        return list(value) if all(map(_plain, value)) else [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("only dicts with string keys can be encoded")
        return {"$d": {k: encode(v) for k, v in value.items()}}
    cls = type(value)
    if dataclasses.is_dataclass(cls):
        if cls not in _FIELDS:
            if not cls.__module__.startswith(TRUSTED_PACKAGES):
                raise TypeError(f"{class_name(cls)} is not a registered state class")
            register(cls)
        init, other = _FIELDS[cls]
        out: dict[str, Any] = {"$t": _NAMES[cls]}
        for name in init + other:
            v = getattr(value, name)
            out[name] = v if _plain(v) else encode(v)
        return out
    raise TypeError(f"cannot encode {cls.__name__} in detector state")


def decode(data: Any) -> Any:
    """The value :func:`encode` produced ``data`` from. Raises :class:`DecodeError`."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        raise DecodeError("bad_state", type(data).__name__)
    if "$t" in data:
        return _decode_dataclass(data)
    if "$f" in data:
        text = data["$f"]
        if text not in ("inf", "-inf", "nan"):
            raise DecodeError("bad_state", f"float {text!r}")
        return float(text)
    if "$tuple" in data:
        return tuple(decode(v) for v in data["$tuple"])
    if "$d" in data:
        return {str(k): decode(v) for k, v in data["$d"].items()}
    raise DecodeError("bad_state", "untagged object")


def _decode_dataclass(data: dict[str, Any]) -> Any:
    cls = _lookup(str(data["$t"]))
    init, other = _FIELDS[cls]
    unknown = set(data) - {"$t", *init, *other}
    if unknown:
        raise DecodeError("bad_state", f"{cls.__qualname__} has no field {sorted(unknown)[0]!r}")
    kwargs = {name: decode(data[name]) for name in init if name in data}
    try:
        obj = cls(**kwargs)
    except TypeError as exc:
        raise DecodeError("bad_state", f"{cls.__qualname__}: {exc}") from exc
    for name in other:
        if name in data:
            object.__setattr__(obj, name, decode(data[name]))
    return obj
