"""Fixtures shared by the whole suite."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from detectors.base import Environment
from detectors.pipeline import Pipeline
from models.alert import Alert
from models.position import Position, VesselStatic
from models.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_DATA = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real public position data); tests needing it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        return list(fh)


def real_track(name: str) -> list[Position]:
    """The positions of a MarineCadastre slice in tests/data."""
    from streams.sources.marinecadastre import MarineCadastreDecoder

    path = TEST_DATA / name
    return [i for i in MarineCadastreDecoder(str(path)).decode(read_lines(path)) if isinstance(i, Position)]


def thinned(items: Iterable[Position | VesselStatic], every_s: float) -> list[Position | VesselStatic]:
    """Each entity's fixes at least ``every_s`` apart: what a satellite receiver might hear of a track."""
    last: dict[str, float] = {}
    out: list[Position | VesselStatic] = []
    for item in items:
        if isinstance(item, Position):
            if item.entity_id in last and item.ts - last[item.entity_id] < every_s:
                continue
            last[item.entity_id] = item.ts
        out.append(item)
    return out


def run_pipeline(
    records: Iterable[Position | VesselStatic],
    settings: Settings,
    env: Environment | None = None,
    **kwargs: object,
) -> list[Alert]:
    """Every alert revision the pipeline emits for ``records`` (end of input included)."""
    pipeline = Pipeline(settings, env, **kwargs)  # type: ignore[arg-type]
    out: list[Alert] = []
    for record in records:
        out.extend(pipeline.push(record))
    out.extend(pipeline.finish())
    return out


def final_revisions(alerts: Iterable[Alert]) -> list[Alert]:
    """The highest revision of each alert id, ordered by start time."""
    best: dict[str, Alert] = {}
    for alert in alerts:
        if alert.id not in best or alert.revision > best[alert.id].revision:
            best[alert.id] = alert
    return sorted(best.values(), key=lambda a: (a.start_ts, a.id))


@pytest.fixture
def pipeline_runner(settings: Settings) -> Callable[..., list[Alert]]:
    def run(records: Iterable[Position | VesselStatic], env: Environment | None = None, **kw: object) -> list[Alert]:
        return run_pipeline(records, settings, env, **kw)

    return run
