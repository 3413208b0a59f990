"""Settings from ``config/vigiamar.toml``: loaded once, validated, frozen.

Sections other than ``[detectors.*]`` are typed here. Detector tables are kept as
validated-later mappings because each detector module owns its config class; the
detector registry builds them with :func:`models.configuring.build_config`.
"""

from __future__ import annotations

import glob
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from models.configuring import bounds, build_config
from models.errors import ConfigError
from models.zones import Zone, ZoneIndex, load_zone_file

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "vigiamar.toml"
_LABEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:-]{0,63}$")


@dataclass(frozen=True)
class PipelineConfig:
    grace_s: float = field(default=60.0, metadata=bounds(0, 86400))
    track_ttl_s: float = field(default=172800.0, metadata=bounds(60, 30 * 86400))


@dataclass(frozen=True)
class CleaningConfig:
    vessel_max_speed_kn: float = field(default=50.0, metadata=bounds(5, 1000))
    aircraft_max_speed_kn: float = field(default=700.0, metadata=bounds(50, 3000))
    min_jump_m: float = field(default=500.0, metadata=bounds(0, 100000))
    reanchor_after: int = field(default=3, metadata=bounds(1, 100))
    derive_window_s: float = field(default=60.0, metadata=bounds(0, 3600))

    def max_speed_kn(self, entity_type: str) -> float:
        return self.aircraft_max_speed_kn if entity_type == "aircraft" else self.vessel_max_speed_kn


@dataclass(frozen=True)
class ReferenceConfig:
    ports: str = "reference/ports.csv"
    coastline: str = "reference/coastline.npz"
    # cells each index remembers (shore and land: 0.02°, ports: 0.05°), least recently used dropped
    memo_cells: int = field(default=65_536, metadata=bounds(1_000, 10_000_000))


@dataclass(frozen=True)
class RoutingConfig:
    default_agency: str = "regional-coordination"
    severity_floor: str = field(default="low", metadata=bounds(choices=("low", "medium", "high")))
    # Release labels (detectors/routing.py): label -> the agencies an alert carrying it may reach.
    release_labels: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    release_by_kind: Mapping[str, str] = field(default_factory=dict, hash=False)  # alert kind -> label
    release_default: str = ""  # label of every alert no kind or zone labels ("": unrestricted)

    def __post_init__(self) -> None:
        from models.alert import ALERT_KINDS

        for key in ("release_labels", "release_by_kind"):
            if not isinstance(getattr(self, key), Mapping):
                raise ValueError(f"{key}: expected a table")
        labels: dict[str, tuple[str, ...]] = {}
        for name, agencies in dict(self.release_labels).items():
            if not _LABEL_NAME.match(str(name)):
                raise ValueError(f"release_labels: {name!r} is not a label name (letters, digits, ' ._:-')")
            if not isinstance(agencies, list | tuple) or not agencies:
                raise ValueError(f"release_labels.{name}: expected a non-empty list of agencies")
            if not all(isinstance(a, str) and a for a in agencies):
                raise ValueError(f"release_labels.{name}: agencies must be non-empty strings")
            labels[name] = tuple(agencies)
        by_kind = dict(self.release_by_kind)
        for kind, label in by_kind.items():
            if kind not in ALERT_KINDS:
                raise ValueError(f"release_by_kind.{kind}: not an alert kind ({', '.join(ALERT_KINDS)})")
            if label not in labels:
                raise ValueError(f"release_by_kind.{kind}: release label {label!r} is not in release_labels")
        if self.release_default and self.release_default not in labels:
            raise ValueError(f"release_default: release label {self.release_default!r} is not in release_labels")
        object.__setattr__(self, "release_labels", MappingProxyType(labels))
        object.__setattr__(self, "release_by_kind", MappingProxyType(by_kind))


@dataclass(frozen=True)
class ZonesConfig:
    files: tuple[str, ...] = ("zones/*.geojson",)


@dataclass(frozen=True)
class Settings:
    """Everything a shell needs to run the detectors, resolved against the config's folder."""

    path: Path
    pipeline: PipelineConfig
    cleaning: CleaningConfig
    reference: ReferenceConfig
    routing: RoutingConfig
    zones: ZoneIndex
    detectors: Mapping[str, Mapping[str, Any]]
    extra: Mapping[str, Any]

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path named in the config: relative to the config file, else to the bundled config/.

        The fallback lets an analyst copy vigiamar.toml elsewhere, change thresholds, and
        keep using the reference data that ships with vigiamar.
        """
        p = Path(relative)
        if p.is_absolute():
            return p
        here = self.base_dir / p
        if here.exists():
            return here
        bundled = DEFAULT_CONFIG.parent / p
        return bundled if bundled.exists() else here


_TYPED = {
    "pipeline": PipelineConfig,
    "cleaning": CleaningConfig,
    "reference": ReferenceConfig,
    "routing": RoutingConfig,
    "zones": ZonesConfig,
}
# Sections read by other parts (streaming topics, metrics); kept verbatim and checked there.
_PASSTHROUGH = ("topics", "kafka", "metrics")


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate a config file; every problem raises :class:`ConfigError` naming the key."""
    cfg_path = Path(path) if path is not None else DEFAULT_CONFIG
    source = str(cfg_path)
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("(file)", "config file not found", source) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("(file)", f"cannot read: {exc}", source) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", f"not valid TOML: {exc}", source) from exc

    unknown = sorted(set(raw) - set(_TYPED) - {"detectors", *_PASSTHROUGH})
    if unknown:
        raise ConfigError(unknown[0], "unknown section", source)
    typed: dict[str, Any] = {
        name: build_config(cls, _table(raw, name, source), name, source) for name, cls in _TYPED.items()
    }
    detectors = _table(raw, "detectors", source)
    for name, table in detectors.items():
        if not isinstance(table, dict):
            raise ConfigError(f"detectors.{name}", "expected a table", source)
    zones_cfg: ZonesConfig = typed["zones"]
    zones = _load_zones(cfg_path.parent, zones_cfg.files)
    return Settings(
        path=cfg_path.resolve(),
        pipeline=typed["pipeline"],
        cleaning=typed["cleaning"],
        reference=typed["reference"],
        routing=typed["routing"],
        zones=zones,
        detectors=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in detectors.items()}),
        extra=MappingProxyType({k: raw[k] for k in _PASSTHROUGH if k in raw}),
    )


def _fixed_parts(pattern: str) -> list[str]:
    """The folders of a glob pattern before its first wildcard (``zones/*.geojson``: ``zones``)."""
    parts = Path(pattern).parts[:-1]
    out: list[str] = []
    for part in parts:
        if any(c in part for c in "*?["):
            break
        out.append(part)
    return out


def _table(raw: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(name, "expected a table", source)
    return value


def _load_zones(base: Path, patterns: tuple[str, ...]) -> ZoneIndex:
    """The zone files each pattern names: next to the config file when the pattern's folder is
    there (an empty one: no zones), else in the bundled config/ (as :meth:`Settings.resolve`),
    so a copy of vigiamar.toml elsewhere keeps the zones."""
    zones: list[Zone] = []
    for pattern in patterns:
        if Path(pattern).is_absolute():
            paths = sorted(Path(p) for p in glob.glob(pattern))
        else:
            folder = Path(*_fixed_parts(pattern))
            root = base if (base / folder).is_dir() else DEFAULT_CONFIG.parent
            paths = sorted(root.glob(pattern))
        for path in paths:
            zones.extend(load_zone_file(path))
    names = [z.name for z in zones]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError("zones", f"zone name {dupes[0]!r} is used twice")
    return ZoneIndex(zones)
