"""Maps config names (``[detectors.<name>]``) to detector classes and builds the enabled ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from detectors.air_landing import AirLandingConfig, AirLandingDetector
from detectors.air_loiter import AirLoiterConfig, AirLoiterDetector
from detectors.air_low_slow import AirLowSlowConfig, AirLowSlowDetector
from detectors.air_orbit import AirOrbitConfig, AirOrbitDetector
from detectors.air_sea_rendezvous import AirSeaRendezvousConfig, AirSeaRendezvousDetector
from detectors.ais_gap import AisGapConfig, AisGapDetector
from detectors.base import Environment, TrackDetector
from detectors.cells import AreaDetector, PairDetector
from detectors.dark_rendezvous import DarkRendezvousConfig, DarkRendezvousDetector
from detectors.loitering import LoiteringConfig, LoiteringDetector
from detectors.rendezvous import RendezvousConfig, RendezvousDetector
from detectors.spoofing import SpoofingConfig, SpoofingDetector
from detectors.zone_entry import ZoneEntryConfig, ZoneEntryDetector
from models.configuring import build_config
from models.errors import ConfigError


@dataclass(frozen=True)
class Registration:
    config_cls: type[Any]
    factory: Callable[[Any, Environment], TrackDetector]


TRACK_DETECTORS: dict[str, Registration] = {
    "loitering": Registration(LoiteringConfig, LoiteringDetector),
    "air_orbit": Registration(AirOrbitConfig, AirOrbitDetector),
    "air_loiter": Registration(AirLoiterConfig, AirLoiterDetector),
    "air_low_slow": Registration(AirLowSlowConfig, AirLowSlowDetector),
    "air_landing": Registration(AirLandingConfig, AirLandingDetector),
    "ais_gap": Registration(AisGapConfig, AisGapDetector),
    "spoofing": Registration(SpoofingConfig, SpoofingDetector),
    "zone_entry": Registration(ZoneEntryConfig, ZoneEntryDetector),
}


@dataclass(frozen=True)
class PairRegistration:
    """A detector run by the cell engine (:mod:`detectors.cell_engine`), not per track."""

    config_cls: type[Any]
    factory: Callable[[Any, Environment], PairDetector | AreaDetector]
    area: bool = False  # an AreaDetector (logs and silences) rather than a PairDetector


PAIR_DETECTORS: dict[str, PairRegistration] = {
    "rendezvous": PairRegistration(RendezvousConfig, RendezvousDetector),
    "dark_rendezvous": PairRegistration(DarkRendezvousConfig, DarkRendezvousDetector, area=True),
    "air_sea_rendezvous": PairRegistration(AirSeaRendezvousConfig, AirSeaRendezvousDetector),
}


def detector_configs(tables: Mapping[str, Mapping[str, Any]], source: str | None = None) -> dict[str, Any]:
    """Validated config objects for every registered detector (defaults where no table is given)."""
    known: dict[str, Registration | PairRegistration] = {**TRACK_DETECTORS, **PAIR_DETECTORS}
    unknown = sorted(set(tables) - set(known))
    if unknown:
        raise ConfigError(f"detectors.{unknown[0]}", f"unknown detector (known: {', '.join(known)})", source)
    return {
        name: build_config(reg.config_cls, tables.get(name), f"detectors.{name}", source) for name, reg in known.items()
    }


def build_track_detectors(
    tables: Mapping[str, Mapping[str, Any]], env: Environment, source: str | None = None
) -> list[TrackDetector]:
    """The enabled per-track detectors, in registry order."""
    configs = detector_configs(tables, source)
    return [
        TRACK_DETECTORS[name].factory(cfg, env)
        for name, cfg in configs.items()
        if name in TRACK_DETECTORS and getattr(cfg, "enabled", True)
    ]


def build_pair_detectors(
    tables: Mapping[str, Mapping[str, Any]], env: Environment, source: str | None = None
) -> tuple[list[PairDetector], list[AreaDetector]]:
    """The enabled detectors of the cell engine: (pair detectors, area detectors), in registry order."""
    configs = detector_configs(tables, source)
    pair: list[PairDetector] = []
    area: list[AreaDetector] = []
    for name, reg in PAIR_DETECTORS.items():
        cfg = configs[name]
        if getattr(cfg, "enabled", True):
            det = reg.factory(cfg, env)
            if reg.area:
                area.append(det)  # type: ignore[arg-type]
            else:
                pair.append(det)  # type: ignore[arg-type]
    return pair, area
