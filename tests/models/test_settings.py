"""Every file in config/ loads; bad values fail with the key's name and the allowed range."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from detectors.registry import detector_configs
from models.configuring import build_config
from models.errors import ConfigError
from models.settings import DEFAULT_CONFIG, load_settings
from models.zones import load_zone_file

CONFIG_DIR = DEFAULT_CONFIG.parent


def test_every_toml_in_config_loads_with_its_detectors() -> None:
    tomls = sorted(CONFIG_DIR.glob("*.toml"))
    assert DEFAULT_CONFIG in tomls
    for path in tomls:
        settings = load_settings(path)
        configs = detector_configs(settings.detectors, str(path))
        assert "loitering" in configs


def test_every_zone_file_loads_and_names_are_unique() -> None:
    files = sorted((CONFIG_DIR / "zones").glob("*.geojson"))
    assert files
    names = [z.name for f in files for z in load_zone_file(f)]
    assert len(names) == len(set(names))
    settings = load_settings()
    assert len(settings.zones) == len(names)
    assert any(z.role == "jurisdiction" for z in settings.zones.zones)


def test_every_json_in_config_parses() -> None:
    for path in CONFIG_DIR.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "zones").mkdir(exist_ok=True)
    path = tmp_path / "v.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[pipeline]\ngrace_s = -5\n", "pipeline.grace_s", "outside the allowed range [0, 86400]"),
        ("[pipeline]\ngrace_s = 'soon'\n", "pipeline.grace_s", "expected a number"),
        ("[pipeline]\ngrace = 5\n", "pipeline.grace", "unknown key"),
        ("[detectors.loitering]\nmax_speed_kn = 500\n", "detectors.loitering.max_speed_kn", "allowed range"),
        ("[detectors.loitering]\nenabled = 1\n", "detectors.loitering.enabled", "true or false"),
        ("[detectors.loitering]\nseverity = 'urgent'\n", "detectors.loitering.severity", "not one of"),
        ("[detectors.loiter]\n", "detectors.loiter", "unknown detector"),
        ("[wat]\n", "wat", "unknown section"),
        ("[pipeline\n", "(file)", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        settings = load_settings(path)
        detector_configs(settings.detectors, str(path))
    assert info.value.key == key
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_bad_zone_file_names_the_feature(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    bad = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "x", "role": "harbour"},
           "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}]}  # fmt: skip
    (tmp_path / "zones" / "bad.geojson").write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match=r"bad.geojson: features\[0\].properties.role"):
        load_settings(path)


def test_a_copied_config_keeps_the_bundled_zones_unless_it_has_its_own(tmp_path: Path) -> None:
    """Zone patterns resolve next to the config file, else in the bundled config/ (as every
    other path in it): a copy of vigiamar.toml elsewhere must not lose its zones silently."""
    bundled = load_settings()
    copy = tmp_path / "vigiamar.toml"
    copy.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    assert [z.name for z in load_settings(copy).zones.zones] == [z.name for z in bundled.zones.zones]
    (tmp_path / "zones").mkdir()
    assert len(load_settings(copy).zones) == 0  # a zones folder of its own, empty: no zones
    own = {"type": "Feature", "properties": {"name": "mine", "role": "watch"},
           "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}  # fmt: skip
    (tmp_path / "zones" / "mine.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [own]}))
    assert [z.name for z in load_settings(copy).zones.zones] == ["mine"]


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(AttributeError):
        settings.pipeline.grace_s = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.detectors["loitering"]["max_speed_kn"] = 9  # type: ignore[index]


@dataclass(frozen=True)
class _BareTuples:
    """Fields annotated ``tuple`` alone, as a class compiled by mypyc reports ``tuple[int, ...]``."""

    codes: tuple = (1, 5)  # type: ignore[type-arg]
    names: tuple = ("a",)  # type: ignore[type-arg]
    anything: tuple = ()  # type: ignore[type-arg]


def test_a_bare_tuple_field_takes_its_items_type_from_its_default() -> None:
    cfg = build_config(_BareTuples, {"codes": [3, 4], "names": ["x"], "anything": [1, "y"]}, "t")
    assert cfg == _BareTuples((3, 4), ("x",), (1, "y"))
    with pytest.raises(ConfigError, match=r"t\.codes"):
        build_config(_BareTuples, {"codes": ["3"]}, "t")
    with pytest.raises(ConfigError, match=r"t\.names"):
        build_config(_BareTuples, {"names": [1]}, "t")


def test_every_detector_config_refuses_a_wrong_item_in_a_list(tmp_path: Path) -> None:
    """Whether its classes are compiled (models.compiled) or not."""
    path = tmp_path / "bad.toml"
    path.write_text('[detectors.loitering]\nexcluded_nav_statuses = ["moored"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"detectors\.loitering\.excluded_nav_statuses"):
        detector_configs(load_settings(path).detectors, str(path))
