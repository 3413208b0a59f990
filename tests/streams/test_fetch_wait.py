"""``[kafka] fetch_max_wait_ms`` reaches the worker's Kafka consumer (faust fixes 1,500 ms)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from models.errors import ConfigError
from models.settings import Settings
from streams import fetch_wait
from streams.app import FaustOptions, faust_app
from streams.topics import stream_settings


def worker_consumer(settings: Settings, brokers: str = "127.0.0.1:9") -> Any:
    """The aiokafka consumer the worker app's consumer thread builds (not started: no broker needed)."""
    app = faust_app(stream_settings(settings), brokers, FaustOptions(app_id="t"))

    async def build() -> Any:  # aiokafka binds its objects to the running loop
        return app.consumer._thread._create_worker_consumer(app.transport)

    return asyncio.run(build())


def test_the_worker_consumer_waits_the_configured_time_for_a_fetch(settings: Settings) -> None:
    assert stream_settings(settings).kafka.fetch_max_wait_ms == 100  # the shipped value
    assert worker_consumer(settings)._fetch_max_wait_ms == 100
    other = dataclasses.replace(settings, extra={**settings.extra, "kafka": {"fetch_max_wait_ms": 700}})
    assert worker_consumer(other)._fetch_max_wait_ms == 700
    assert worker_consumer(other, "aiokafka://127.0.0.1:9,kafka://127.0.0.1:10")._fetch_max_wait_ms == 700


def test_what_faust_would_pass_is_overridden_not_assumed(settings: Settings) -> None:
    """faust's own thread still passes its fixed wait: the override is what changes it."""
    app = faust_app(stream_settings(settings), "127.0.0.1:9", FaustOptions(app_id="t"))

    async def build() -> Any:
        consumer = app.consumer
        plain = fetch_wait.driver.AIOKafkaConsumerThread(consumer, loop=consumer.loop, beacon=consumer.beacon)
        return plain._create_worker_consumer(app.transport)

    assert asyncio.run(build())._fetch_max_wait_ms == fetch_wait.FAUST_FETCH_MAX_WAIT_MS


@pytest.mark.parametrize(
    "kafka",
    [
        {"fetch_max_wait_ms": 0},
        {"fetch_max_wait_ms": 30_001},
        {"fetch_max_wait_ms": "fast"},
        {"fetch_max_wait_ms": 5000, "request_timeout_s": 5.0},  # a fetch held that long would time out
    ],
)
def test_a_fetch_wait_out_of_range_names_its_key(settings: Settings, kafka: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as err:
        stream_settings(dataclasses.replace(settings, extra={**settings.extra, "kafka": kafka}))
    assert err.value.key == "kafka.fetch_max_wait_ms"


def test_the_consumer_builds_its_fetcher_with_the_wait(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """What aiokafka's ``start`` hands its fetcher, not the attribute the override writes: an
    aiokafka that stopped reading that attribute would fail here."""
    import aiokafka.consumer.consumer as aiokafka_consumer

    class Built(Exception):
        pass

    seen: dict[str, Any] = {}

    def fetcher(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise Built

    async def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(aiokafka_consumer, "Fetcher", fetcher)
    other = dataclasses.replace(settings, extra={**settings.extra, "kafka": {"fetch_max_wait_ms": 250}})
    app = faust_app(stream_settings(other), "aiokafka://127.0.0.1:9", FaustOptions(app_id="t"))

    async def start() -> None:
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        monkeypatch.setattr(consumer._client, "bootstrap", nothing)  # no broker: only the fetcher's making
        monkeypatch.setattr(consumer, "_wait_topics", nothing)
        with pytest.raises(Built):
            await consumer.start()

    asyncio.run(start())
    assert seen["fetch_max_wait_ms"] == 250


def test_other_drivers_get_faust_s_own_transport(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    class Other(fetch_wait.driver.Transport):  # stands for confluent:// (its client is not installed)
        pass

    app = faust_app(stream_settings(settings), "127.0.0.1:9", FaustOptions(app_id="t"))
    assert type(app.transport) is fetch_wait.Transport
    monkeypatch.setattr(fetch_wait, "by_url", lambda url: Other)
    other = faust_app(stream_settings(settings), "127.0.0.1:9", FaustOptions(app_id="t"))
    assert type(other.transport) is fetch_wait.driver.Transport  # faust's choice, untouched


def test_vigiamar_alerts_follows_with_the_same_wait(
    settings: Settings, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last hop to the watch officer waits no longer per fetch than the worker's."""
    from streams import follow
    from streams.cli import main

    made: list[tuple[Any, ...]] = []

    class Closed:
        def close(self) -> None:
            made.append(("closed",))

    def make_consumer(*args: Any) -> Closed:
        made.append(args)
        return Closed()

    monkeypatch.setattr(follow, "make_consumer", make_consumer)
    monkeypatch.setattr(follow, "follow", lambda *args, **kwargs: None)
    config = tmp_path / "vigiamar.toml"
    config.write_text(
        settings.path.read_text(encoding="utf-8").replace("fetch_max_wait_ms = 100", "fetch_max_wait_ms = 40")
    )
    assert (
        main(["alerts", "--brokers", "127.0.0.1:9", "--config", str(config), "--agency", "regional-coordination"]) == 0
    )
    (brokers, topics, from_beginning, wait_ms), closed = made
    assert (brokers, topics, from_beginning) == ("127.0.0.1:9", ["alerts.regional-coordination"], False)
    assert (wait_ms, closed) == (40, ("closed",))
