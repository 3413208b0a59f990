"""streams.runtime: the collector thresholds every vigiamar command starts with."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from models.errors import ConfigError
from streams.cli import main
from streams.runtime import GC_ENV, GC_GEN0_THRESHOLD, tune_gc


@pytest.fixture(autouse=True)
def _restore_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_raises_the_young_threshold_and_keeps_the_older_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GC_ENV, raising=False)
    gc.set_threshold(700, 10, 10)
    assert tune_gc() == (700, 10, 10)
    assert gc.get_threshold() == (GC_GEN0_THRESHOLD, 10, 10)


def test_the_environment_sets_another_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.set_threshold(700, 10, 10)
    monkeypatch.setenv(GC_ENV, "700")  # CPython's own: the tuning off
    tune_gc()
    assert gc.get_threshold() == (700, 10, 10)
    monkeypatch.setenv(GC_ENV, " 120000 ")
    tune_gc()
    assert gc.get_threshold()[0] == 120_000


@pytest.mark.parametrize("raw", ["lots", "0", "-5", "1.5"])
def test_a_bad_value_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    gc.set_threshold(700, 10, 10)
    monkeypatch.setenv(GC_ENV, raw)
    with pytest.raises(ConfigError, match=GC_ENV):
        tune_gc()
    assert gc.get_threshold() == (700, 10, 10)


def test_every_command_starts_with_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    gc.set_threshold(700, 10, 10)
    monkeypatch.delenv(GC_ENV, raising=False)
    assert main(["config", "check"]) == 0
    assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
    monkeypatch.setenv(GC_ENV, "lots")
    assert main(["config", "check"]) != 0
    assert GC_ENV in capsys.readouterr().err
