"""``[topics]`` and ``[kafka]``: validated once, errors name the key."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from models.errors import ConfigError
from models.settings import Settings
from streams.admin import wanted_topics
from streams.topics import stream_settings


def with_extra(settings: Settings, **sections: Any) -> Settings:
    return dataclasses.replace(settings, extra={**settings.extra, **sections})


def test_shipped_config_has_valid_streaming_sections(settings: Settings) -> None:
    stream = stream_settings(settings)
    assert stream.topics.partitions >= 1
    assert settings.routing.default_agency in stream.agencies
    topics = wanted_topics(stream)
    assert topics["positions.vessel"] == topics["positions.air"] == stream.topics.partitions
    assert {f"alerts.{a}" for a in stream.agencies} <= set(topics)


def test_an_agency_named_only_in_a_release_label_gets_its_topic(settings: Settings) -> None:
    """The router sends it released alerts when no responsible agency may see them."""
    routing = dataclasses.replace(settings.routing, release_labels={"REL-X": ("dea-jiatf", "uscg-d5")})
    stream = stream_settings(dataclasses.replace(settings, routing=routing))
    assert "dea-jiatf" in stream.agencies
    assert wanted_topics(stream)["alerts.dea-jiatf"] == stream.topics.alert_partitions


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"topics": {"partitions": 0}}, "topics.partitions"),
        ({"topics": {"alerts": "bad name!"}}, "topics.alerts"),
        ({"topics": {"cells": "alerts"}}, "topics"),
        ({"topics": {"nope": 1}}, "topics.nope"),
        ({"kafka": {"frame_size": "big"}}, "kafka.frame_size"),
        ({"kafka": {"app_id": ""}}, "kafka.app_id"),
        ({"kafka": []}, "kafka"),
    ],
)
def test_bad_values_name_their_key(settings: Settings, sections: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        stream_settings(with_extra(settings, **sections))
    assert err.value.key == key


def test_the_faust_app_takes_its_timeouts_from_the_kafka_section(settings: Settings) -> None:
    """A produce request the broker never answers fails after ``request_timeout_s`` (faust's
    own default is 20 min), so the worker sends it again instead of stalling its flushes."""
    from streams.app import FaustOptions, faust_app

    stream = stream_settings(with_extra(settings, kafka={"request_timeout_s": 25.0}))
    app = faust_app(stream, "127.0.0.1:9", FaustOptions(app_id="t"))
    assert app.conf.producer_request_timeout == app.conf.broker_request_timeout == 25.0
    assert not app.conf.recovery_consistency_check  # a lagging end offset must not stop the worker
