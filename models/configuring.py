"""Build frozen config dataclasses from TOML tables, validating every key once.

A config class declares its keys as dataclass fields; bounds go in field metadata
(``field(default=2.0, metadata=bounds(0, 50))``). Unknown keys, wrong types and values
out of bounds raise :class:`ConfigError` naming the full key and the allowed range.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from models.errors import ConfigError

T = TypeVar("T")


def bounds(low: float | None = None, high: float | None = None, choices: tuple[str, ...] = ()) -> dict[str, Any]:
    """Field metadata: inclusive numeric bounds, or the allowed string values."""
    return {"low": low, "high": high, "choices": choices}


def build_config(cls: type[T], table: Mapping[str, Any] | None, key: str, source: str | None = None) -> T:
    """Instantiate ``cls`` from ``table``; every problem names ``key.field``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    table = dict(table or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name, f in fields.items():
        if hints[name] is tuple:
            hints[name] = _tuple_hint(f)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(fields))})", source)
    values: dict[str, Any] = {}
    for name, value in table.items():
        full = f"{key}.{name}"
        values[name] = _check_value(value, hints[name], full, fields[name].metadata, source)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(key, str(exc), source) from exc


def _tuple_hint(f: dataclasses.Field[Any]) -> Any:
    """``tuple[X, ...]`` for a field annotated ``tuple`` alone, X the type of its default's items.

    A class compiled by mypyc (:mod:`models.compiled`) reports ``tuple[int, ...]`` as ``tuple``;
    every such field of vigiamar's config has a default of one item type, which stands in."""
    kinds = {type(v) for v in f.default} if isinstance(f.default, tuple) else set()
    return types.GenericAlias(tuple, (kinds.pop() if len(kinds) == 1 else Any, ...))


def _check_value(value: Any, hint: Any, key: str, meta: Mapping[str, Any], source: str | None) -> Any:
    value = _coerce(value, hint, key, source)
    low, high = meta.get("low"), meta.get("high")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric and ((low is not None and value < low) or (high is not None and value > high)):
        raise ConfigError(key, f"{value} is outside the allowed range {_range(low, high)}", source)
    choices = meta.get("choices") or ()
    if choices:
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if item not in choices:
                raise ConfigError(key, f"{item!r} is not one of {', '.join(map(repr, choices))}", source)
    return value


def _range(low: float | None, high: float | None) -> str:
    return f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"


def _coerce(value: Any, hint: Any, key: str, source: str | None) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, source)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"expected a list, got {type(value).__name__}", source)
        return tuple(_coerce(v, args[0], key, source) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}", source)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {value!r}", source)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(key, f"expected a number, got {value!r}", source)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}", source)
        return value
    return value


def config_hash(cfg: Any) -> str:
    """Short stable hash of a config dataclass: which thresholds produced an alert."""
    data = json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str)
    return hashlib.blake2b(data.encode(), digest_size=6).hexdigest()
