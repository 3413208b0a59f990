"""``vigiamar worker | feed | alerts``: help with examples, exit code 2 for unusable input."""

from __future__ import annotations

import pytest

from streams.cli import main


@pytest.mark.parametrize("command", ["worker", "feed", "alerts"])
def test_help_has_copy_pasteable_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--brokers" in text and "VIGIAMAR_BROKERS" in text
    assert f"examples:\n  vigiamar {command}" in text


def test_feed_of_a_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feed", "--brokers", "127.0.0.1:1", "no/such/file.csv"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_alerts_for_an_unknown_agency_exits_2_and_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "--brokers", "127.0.0.1:1", "--agency", "atlantis"]) == 2
    err = capsys.readouterr().err
    assert "unknown agency 'atlantis'" in err and "uscg-d5" in err


def test_brokers_default_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.cli import build_parser

    monkeypatch.setenv("VIGIAMAR_BROKERS", "kafka-a:9092,kafka-b:9092")
    assert build_parser().parse_args(["worker"]).brokers == "kafka-a:9092,kafka-b:9092"
    monkeypatch.delenv("VIGIAMAR_BROKERS")
    assert build_parser().parse_args(["alerts"]).brokers == "localhost:9092"
