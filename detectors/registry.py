"""Maps config names (``[detectors.<name>]``) to detector classes and builds the enabled ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from detectors.base import Environment, TrackDetector
from detectors.loitering import LoiteringConfig, LoiteringDetector
from models.configuring import build_config
from models.errors import ConfigError


@dataclass(frozen=True)
class Registration:
    config_cls: type[Any]
    factory: Callable[[Any, Environment], TrackDetector]


TRACK_DETECTORS: dict[str, Registration] = {
    "loitering": Registration(LoiteringConfig, LoiteringDetector),
}


def detector_configs(tables: Mapping[str, Mapping[str, Any]], source: str | None = None) -> dict[str, Any]:
    """Validated config objects for every registered detector (defaults where no table is given)."""
    unknown = sorted(set(tables) - set(TRACK_DETECTORS))
    if unknown:
        raise ConfigError(f"detectors.{unknown[0]}", f"unknown detector (known: {', '.join(TRACK_DETECTORS)})", source)
    return {
        name: build_config(reg.config_cls, tables.get(name), f"detectors.{name}", source)
        for name, reg in TRACK_DETECTORS.items()
    }


def build_track_detectors(
    tables: Mapping[str, Mapping[str, Any]], env: Environment, source: str | None = None
) -> list[TrackDetector]:
    """The enabled per-track detectors, in registry order."""
    configs = detector_configs(tables, source)
    return [
        TRACK_DETECTORS[name].factory(cfg, env)
        for name, cfg in configs.items()
        if getattr(cfg, "enabled", True)
    ]
