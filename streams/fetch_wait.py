"""The worker's Kafka fetch wait: ``[kafka] fetch_max_wait_ms`` instead of faust's fixed 1,500 ms.

A consumer that has caught up asks the broker for more and lets it hold the request up to
the fetch wait. Kafka answers as soon as data arrives; Tansu holds every such fetch for the
whole wait, so there each position that arrives while the worker is caught up waits up to
that long before the worker sees it. faust's aiokafka driver passes ``fetch_max_wait_ms=1500``
to its consumer and has no setting for it; :class:`App` builds that driver's transport with
a consumer thread that gives the consumer the configured wait before it starts (aiokafka
hands the value to its fetcher in ``start``). Other drivers (``confluent://``) are left as
faust makes them.

Measured (``python -m benchmarks streaming --workers 1 --no-pairwise``, one worker at
10,000 positions/s on Tansu, two runs each): event→alert p99 0.99 and 1.68 s with 1,500 ms,
0.30 and 0.35 s with 100 ms (docs/scaling.md). The wait must stay below the request
timeout (``[kafka] request_timeout_s``): a fetch held longer would time out.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport import by_url
from faust.transport.drivers import aiokafka as driver

FAUST_FETCH_MAX_WAIT_MS = 1500  # what faust's driver passes (faust/transport/drivers/aiokafka.py)


class ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start(), which builds its Fetcher with it
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", FAUST_FETCH_MAX_WAIT_MS)
        return consumer


class Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    Consumer = Consumer


class App(faust.App):
    """A faust app whose aiokafka consumer waits at most ``fetch_max_wait_ms`` a fetch."""

    fetch_max_wait_ms: int = FAUST_FETCH_MAX_WAIT_MS

    def _new_transport(self) -> Any:
        if by_url(self.conf.broker_consumer[0]) is driver.Transport:
            return Transport(self.conf.broker_consumer, self)
        return super()._new_transport()
