"""feed → worker(s) → alerts on a real broker (Tansu): the same alerts as replay, restarts, dead letters.

Run alone with ``pytest -m kafka``. Each test has its own broker; every wait has a deadline.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import orjson
import pytest

from models.alert import Alert, validate_alert_wire
from models.position import Reject
from models.settings import Settings, load_settings
from streams.admin import admin_client, ensure_topics
from streams.cap import CAP_NS
from streams.cli import load_environment
from streams.embedded import replay
from streams.feed import FeedReport, FramePublisher
from streams.follow import alert_topics
from streams.topics import StreamSettings, stream_settings
from streams.wire import (
    CONTROL_HEADER,
    END_OF_INPUT,
    Partitioner,
    decode_alert,
    encode_frame,
    header_dict,
    record_to_wire,
)
from tests.conftest import REPO, TEST_DATA
from tests.kafka.conftest import WorkerProcess, free_port, wait_until, write_config

pytestmark = pytest.mark.kafka

SAMPLE = REPO / "data" / "samples" / "virginia_beach_2020-06-04_to_06.csv.gz"  # 39,822 positions, 84 vessels
SLICE = TEST_DATA / "vb_367584050_2020-06-04.csv.gz"  # one vessel, 484 positions, 2 loitering alerts
CLI = [sys.executable, "-m", "streams.cli"]

Key = tuple[str, str, tuple[tuple[str, str], ...], float, float]


def key(alert: Alert) -> Key:
    return (alert.id, alert.kind, tuple((e.type, e.id) for e in alert.entities), alert.start_ts, alert.end_ts)


def wire(alerts: dict[str, Alert]) -> dict[str, dict[str, Any]]:
    """The records as consumers read them (coordinates and confidence rounded on the wire)."""
    return {i: a.to_wire() for i, a in alerts.items()}


_REPLAYS: dict[tuple[str, ...], dict[str, Alert]] = {}


def replay_finals(paths: list[Path], settings: Settings) -> dict[str, Alert]:
    """``vigiamar replay``'s final revisions (cached: the tests share inputs and detector settings)."""
    cache_key = (*map(str, paths), repr(sorted((k, dict(v)) for k, v in settings.detectors.items())))
    if cache_key not in _REPLAYS:

        def ignore(_: Any) -> None:
            return None

        report, _ = replay(paths, settings, on_alert=ignore, on_reject=ignore, env=load_environment(settings))
        _REPLAYS[cache_key] = report.alerts_final
    assert _REPLAYS[cache_key], "the input must give alerts for the comparison to mean something"
    return _REPLAYS[cache_key]


def kafka_producer(brokers: str) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=brokers, acks="all", linger_ms=5, max_block_ms=30000)


class Collector:
    """Every alert message of the agency topics (duplicates included), read in a thread."""

    def __init__(self, brokers: str, topics: list[str], upstream: str = "alerts") -> None:
        from kafka import KafkaConsumer

        self.brokers, self.upstream = brokers, upstream  # the topic the router reads: for failure messages
        self.consumer = KafkaConsumer(
            *topics, bootstrap_servers=brokers, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
        )
        self.messages: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for records in self.consumer.poll(timeout_ms=200).values():
                self.messages.extend(records)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()

    def alerts(self) -> list[Alert]:
        return [decode_alert(m.value) for m in list(self.messages)]

    def finals(self) -> dict[str, Alert]:
        best: dict[str, Alert] = {}
        for a in self.alerts():
            if a.id not in best or a.revision > best[a.id].revision:
                best[a.id] = a
        return best

    def has(self, expected: dict[str, Alert]) -> Callable[[], bool]:
        def check() -> bool:
            got = self.finals()
            return all(i in got and got[i].revision >= a.revision for i, a in expected.items())

        return check

    def upstream_revisions(self, ids: set[str]) -> dict[str, list[int]]:
        """The revisions of these alerts on the topic before the router (which side lost one)."""
        out: dict[str, set[int]] = {}
        for m in read_all(self.brokers, self.upstream):
            a = decode_alert(m.value)
            if a.id in ids:
                out.setdefault(a.id, set()).add(a.revision)
        return {i: sorted(r) for i, r in out.items()}

    def wait_for(self, expected: dict[str, Alert], timeout_s: float, what: str, *procs: WorkerProcess) -> None:
        """``wait_until(has(expected))``; a timeout says which alerts are missing and how the workers ended."""
        try:
            wait_until(self.has(expected), timeout_s, what)
        except TimeoutError as exc:
            got = self.finals()
            lacking = [i for i, a in expected.items() if i not in got or got[i].revision < a.revision]
            before = self.upstream_revisions(set(lacking))
            missing = [
                f"{expected[i].kind} {[e.id for e in expected[i].entities]} r{expected[i].revision}"
                f" (got r{got[i].revision if i in got else 0}; on {self.upstream}: {before.get(i, [])})"
                for i in lacking
            ]
            extra = [
                f"{a.kind} {[e.id for e in a.entities]} r{a.revision} {a.start_ts}-{a.end_ts}"
                for i, a in got.items()
                if i not in expected
            ]
            missing += [f"not expected: {extra[:10]}"] if extra else []
            stalls = "\n".join(f"worker {p.proc.pid if p.proc else '?'}:\n--- {p.stalled_tasks()}" for p in procs)
            detail = f"{len(missing)} missing: {missing[:12]}\ntasks:\n{stalls}\nlogs:\n{_worker_tails(*procs)}"
            raise TimeoutError(f"{exc}: {detail}") from None


def _checkpointed(brokers: str, changelog: str, worker: WorkerProcess) -> bool:
    """Every position partition ``worker`` says it holds has a checkpoint in ``changelog``."""
    held = set(re.findall(r"topic='positions.vessel', partition=(\d+)\): \d+ tracks restored", worker.text()))
    keys = {m.key for m in read_all(brokers, changelog)}
    return bool(held) and all(f"{p}#checkpoint".encode() in keys for p in held)


def _committed(brokers: str, group: str, worker: WorkerProcess) -> bool:
    """The consumer group committed an offset past 0 for every vessel partition ``worker`` held:
    after a kill, the new owner then either restores the partition's checkpoint or reads the
    messages between it and the committed offset again (never starts over from offset 0, which
    would prove nothing about recovery)."""
    from kafka import KafkaAdminClient

    held = {int(p) for p in re.findall(r"topic='positions.vessel', partition=(\d+)\): \d+ tracks", worker.text())}
    admin = KafkaAdminClient(bootstrap_servers=brokers)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    done = {tp.partition for tp, meta in offsets.items() if tp.topic == "positions.vessel" and meta.offset > 0}
    return bool(held) and held <= done


def _worker_tails(*procs: WorkerProcess) -> str:
    """What each worker restored, and how its log ends, for a failure message."""
    out = []
    for p in procs:
        lines = p.log_lines()
        restored = [line for line in lines if "tracks restored" in line or "reading offsets" in line]
        warned = [line for line in lines if "] [WARNING] " in line or "] [ERROR] " in line]
        out.append("\n".join([*restored[-8:], "... warnings and errors:", *warned[-12:], "... the last lines:",
                              *(line[:300] for line in lines[-25:])]))  # fmt: skip
    return "\n---\n".join(out)


def read_topic(brokers: str, topic: str, count: int, timeout_s: float = 30.0) -> list[Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=brokers, group_id=None, auto_offset_reset="earliest")
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                out.extend(records)
    finally:
        consumer.close()
    return out


def read_all(brokers: str, topic: str, timeout_s: float = 30.0, listed_end: bool = False) -> list[Any]:
    """Every message of ``topic`` up to each partition's end as this call starts (a partial read
    would tell a wrong story: an alert missing upstream, a checkpoint not yet written).

    The end is the high watermark fetches report. Tansu's ListOffsets answers short (the first
    offset of a partition's last record batch, plus one); ``listed_end`` stops there instead,
    as faust's recovery does.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=brokers, group_id=None, enable_auto_commit=False)
    out: list[Any] = []
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:  # no such topic (yet)
            return out
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        polled = False
        while True:
            if not listed_end and polled:  # fetches tell each partition's high watermark
                ends = {tp: max(end, consumer.highwater(tp) or 0) for tp, end in ends.items()}
            if polled and all(consumer.position(tp) >= end for tp, end in ends.items()):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end ({ends}) in {timeout_s} s")
            for tp, records in consumer.poll(timeout_ms=200).items():
                out.extend(r for r in records if listed_end is False or r.offset < ends[tp])
            polled = True
    finally:
        consumer.close()
    return out


def create_topics(brokers: str, stream: StreamSettings) -> None:
    admin = admin_client(brokers)
    try:
        ensure_topics(admin, stream)
    finally:
        admin.close()


def test_feed_worker_alerts_give_the_same_alerts_as_replay(
    broker: str, config: Path, workers: Callable[[str, Path], WorkerProcess]
) -> None:
    settings = load_settings(config)
    stream = stream_settings(settings)
    worker = workers(broker, config)  # starts while replay runs here
    expected = replay_finals([SAMPLE], settings)
    # As shipped: the worker runs the pairwise detectors in its per-cell stage (the sample's
    # two rendezvous, each pair's vessels in two position partitions, come out of it).
    assert sum(a.kind == "rendezvous" for a in expected.values()) == 2
    feed = subprocess.run(
        [*CLI, "feed", "--brokers", broker, "--config", str(config), str(SAMPLE)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert feed.returncode == 0, feed.stderr
    assert "published 39,822 records" in feed.stderr
    collector = Collector(broker, alert_topics(stream, None))
    try:
        collector.wait_for(expected, 120, "every replay alert at its final revision", worker)
        time.sleep(1.0)  # nothing more may come
        got = collector.finals()
    finally:
        collector.close()

    assert {key(a) for a in got.values()} == {key(a) for a in expected.values()}
    assert wire(got) == wire(expected)  # revisions, status, evidence, routing: the whole record
    # The `alerts` topic carries each revision with CloudEvents binary-mode headers.
    raw = read_topic(broker, stream.topics.alerts, len(collector.messages))
    for message in raw:
        alert = decode_alert(message.value)
        headers = header_dict(message.headers)
        assert message.key == alert.id.encode()
        assert headers["ce_id"] == f"{alert.id}:{alert.revision}" and headers["ce_specversion"] == "1.0"
        assert headers["ce_type"].endswith(alert.kind) and headers["ce_time"]
    # `vigiamar alerts` prints each final revision's record (JSON Lines) and CAP 1.2.
    out = subprocess.run(
        [*CLI, "alerts", "--brokers", broker, "--config", str(config), "--from-beginning", "--idle-exit", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    lines = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert all(validate_alert_wire(r) == [] for r in lines)
    assert {r["id"]: r["revision"] for r in lines} == {i: a.revision for i, a in expected.items()}
    cap = subprocess.run(
        [*CLI, "alerts", "--brokers", broker, "--config", str(config), "--from-beginning", "--idle-exit", "2",
         "--agency", "uscg-d5", "--format", "cap"],
        cwd=REPO, capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    docs = [d for d in cap.stdout.split('<?xml version="1.0" encoding="UTF-8"?>') if d.strip()]
    assert docs and all(ET.fromstring(d).tag == f"{{{CAP_NS}}}alert" for d in docs)
    assert worker.stop() == 0
    assert "Traceback" not in worker.text()
    # A recovery reads each changelog up to the end offsets the broker lists: the last checkpoint
    # of every partition must lie within them (the worker's flush makes it open a record batch).
    changelog = f"{stream.kafka.app_id}-tracks-vessel-changelog"
    listed, fetched = read_all(broker, changelog, listed_end=True), read_all(broker, changelog)
    assert len(listed) <= len(fetched)
    assert _last_checkpoints(listed) == _last_checkpoints(fetched) != {}


def _last_checkpoints(messages: list[Any]) -> dict[bytes, bytes]:
    return {m.key: m.value for m in messages if m.key.endswith(b"#checkpoint")}


def test_a_killed_worker_restarts_without_losing_or_duplicating_alerts(
    broker: str, config: Path, workers: Callable[[str, Path], WorkerProcess]
) -> None:
    settings = load_settings(config)
    stream = stream_settings(settings)
    create_topics(broker, stream)
    first, other = workers(broker, config), workers(broker, config)  # two workers share the partitions
    expected = replay_finals([SAMPLE], settings)
    total = sum(a.revision for a in expected.values())
    records = [r for r in _decode(SAMPLE) if not isinstance(r, Reject)]
    changelog = f"{stream.kafka.app_id}-tracks-vessel-changelog"
    collector = Collector(broker, alert_topics(stream, None), stream.topics.alerts)
    producer = kafka_producer(broker)
    feed = FramePublisher(producer, stream, FeedReport())
    try:
        for record in records[: len(records) // 2]:  # the first day and a half
            feed.add(record)
        feed.flush_all()
        producer.flush(30)
        # Mid-stream: alerts are coming out, state is in the tables, positions are buffered.
        wait_until(lambda: len(collector.messages) >= 5, 90, "the first alerts")
        # ... and the first worker has written a checkpoint for each vessel partition it holds.
        wait_until(lambda: _checkpointed(broker, changelog, first), 30, "the first worker's checkpoints")
        # ... and committed their offsets (every commit_interval_s), else a new owner whose
        # restore missed the checkpoint would just read the partition from its start
        wait_until(lambda: _committed(broker, stream.kafka.app_id, first), 30, "the first worker's commits")
        first.kill()  # its partitions go to the new worker (or the other one)
        killed_at = len(collector.messages)
        second = workers(broker, config)
        for record in records[len(records) // 2 :]:
            feed.add(record)
        feed.end_of_input()
        producer.flush(30)
        # faust's changelog recovery after the rebalance took up to 2.5 min on the shared 2-core
        # machine before the router moved on (alerts all on `alerts`, none routed yet): a liveness bound
        collector.wait_for(expected, 240, "every replay alert after the restart", second, other)
        time.sleep(1.0)
    finally:
        producer.close(10)
        collector.close()

    assert killed_at < total, "the worker was killed before it had published everything"
    assert {key(a) for a in collector.finals().values()} == {key(a) for a in expected.values()}
    assert wire(collector.finals()) == wire(expected)
    # A consumer keeping the highest revision per id sees every revision: no gaps, and a
    # revision delivered twice (the re-run after the restart) is the same record.
    revisions: dict[str, set[int]] = {}
    records: dict[tuple[str, int], Alert] = {}
    for alert in collector.alerts():
        revisions.setdefault(alert.id, set()).add(alert.revision)
        assert records.setdefault((alert.id, alert.revision), alert) == alert
    gaps = {i: sorted(r) for i, r in revisions.items() if r != set(range(1, max(r) + 1))}
    if gaps:  # say whether the missing revisions reached the `alerts` topic (before the router)
        upstream = collector.upstream_revisions(set(gaps))
        kind = {i: a.kind for i, a in expected.items()}
        seen = {i: (kind.get(i, "?"), r, upstream.get(i, [])) for i, r in gaps.items()}
        raise AssertionError(
            f"revisions missing (id: kind, on agency topics, on alerts): {seen}\n{_worker_tails(second, other)}"
        )
    # The new owners restored the killed worker's partitions from the state tables, or, when
    # faust's recovery got a wrong changelog end from Tansu (its latest-offset look-ups can be
    # wrong) and restored less, read the positions again from the checkpoint's resume point.
    logs = second.text() + other.text()
    assert "Traceback" not in logs
    restored = any(int(n) > 0 for n in re.findall(r"(\d+) tracks restored", logs))
    backfilled = "first (state checkpoint is older)" in logs
    assert restored or backfilled, f"nothing recovered:\n{_worker_tails(second, other)}"
    assert second.stop() == 0 and other.stop() == 0


def test_poison_pills_go_to_the_dead_letter_topic_and_the_rest_goes_on(
    broker: str, tmp_path: Path, workers: Callable[[str, Path], WorkerProcess]
) -> None:
    metrics_port = free_port()
    config = write_config(tmp_path / "config", metrics_port=metrics_port)
    settings = load_settings(config)
    stream = stream_settings(settings)
    create_topics(broker, stream)
    worker = workers(broker, config)
    expected = replay_finals([SLICE], settings)
    vessel = stream.topics.positions_vessel
    part = Partitioner(stream.topics.partitions)
    records = [r for r in _decode(SLICE) if not isinstance(r, Reject)]
    home = part(records[0].entity_id)  # type: ignore[union-attr]
    good = [record_to_wire(r) for r in records]
    bad_lat = {**good[0], "lat": 95.0}
    poison: list[tuple[str, int, bytes, str]] = [  # (topic, partition, value, reason)
        (vessel, home, b"\x00\x9c not json at all", "bad_json"),
        (vessel, home, encode_frame([bad_lat]), "lat_out_of_range"),
        (vessel, home, b'{"type": "submarine", "id": "x"}', "bad_entity_type"),
        (vessel, (home + 1) % stream.topics.partitions, encode_frame([good[0]]), "wrong_partition"),
        (stream.topics.alerts, 0, b'{"id": "not-an-alert"}', "bad_alert"),
        (vessel, home, encode_frame([good[5 * 50 + 49]]), "duplicate"),  # chunk 5's last fix, again
    ]
    producer = kafka_producer(broker)
    try:
        chunks = [good[i : i + 50] for i in range(0, len(good), 50)]
        for i, chunk in enumerate(chunks):
            producer.send(vessel, value=encode_frame(chunk), partition=home)
            if i < len(poison):
                topic, partition, value, _ = poison[i]
                producer.send(topic, value=value, partition=partition)
        for partition in range(stream.topics.partitions):
            producer.send(vessel, value=b"[]", partition=partition, headers=[(CONTROL_HEADER, END_OF_INPUT)])
        producer.flush(30)
    finally:
        producer.close(10)

    dead = read_topic(broker, stream.topics.dead_letter, len(poison), timeout_s=60)
    by_reason = {header_dict(m.headers)["dlq_reason"]: m for m in dead}
    assert set(by_reason) == {reason for *_, reason in poison}
    for topic, partition, value, reason in poison:
        h = header_dict(by_reason[reason].headers)
        assert (h["dlq_topic"], int(h["dlq_partition"])) == (topic, partition)
        assert int(h["dlq_offset"]) >= 0
        if value.startswith(b"["):  # a frame: the bad record itself, and where it sat in the frame
            assert [orjson.loads(by_reason[reason].value)] == orjson.loads(value)
            assert h["dlq_index"] == "0"
        else:  # a whole message: its raw bytes, untouched
            assert by_reason[reason].value == value

    collector = Collector(broker, alert_topics(stream, None))
    try:
        wait_until(collector.has(expected), 60, "the alerts of the good records")
        assert wire(collector.finals()) == wire(expected)
    finally:
        collector.close()

    def scrape() -> dict[str, float]:
        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line[:1] != "#"}

    def lag(topic: str, partition: int) -> float | None:
        return scrape().get(f'vigiamar_consumer_lag_messages{{partition="{partition}",topic="{topic}"}}')

    # every partition read got a lag (the end-of-input markers reached them all), 0 once caught up
    wait_until(lambda: all(lag(vessel, p) == 0 for p in range(stream.topics.partitions)), 30, "no lag left")
    assert lag(stream.topics.alerts, 0) == 0  # the router's partition (the bad alert went there)
    samples = scrape()
    assert samples['vigiamar_dead_lettered_total{topic="deadletter"}'] == len(poison)
    for *_, reason in poison:
        assert samples[f'vigiamar_rejected_total{{reason="{reason}"}}'] == 1, reason
    steps = samples['vigiamar_detector_step_seconds_count{stage="track"}']
    assert 0 < steps <= samples['vigiamar_positions_in_total{source="kafka",type="vessel"}']
    assert samples['vigiamar_detector_step_seconds_sum{stage="track"}'] > 0
    assert worker.stop() == 0


def _decode(path: Path) -> list[Any]:
    from contextlib import ExitStack

    from streams.embedded import RunReport, merged_items

    with ExitStack() as stack:
        return list(merged_items([path], None, stack, RunReport()))


def test_a_state_table_read_short_is_made_up_for_by_reading_the_positions_again(
    broker: str, tmp_path: Path, workers: Callable[[str, Path], WorkerProcess]
) -> None:
    """Tansu can answer a worker's recovery with a short changelog (its latest-offset look-ups
    can be wrong). Simulated here by appending the previous checkpoint to the changelog: the
    restored state is then one flush older than the group's committed offset, and the worker
    must read the messages between the two again instead of skipping them."""
    config = write_config(tmp_path / "config", flush_interval_s=60.0, flush_records=100)
    settings = load_settings(config)
    stream = stream_settings(settings)
    create_topics(broker, stream)
    first = workers(broker, config)
    expected = replay_finals([SLICE], settings)
    records = [record_to_wire(r) for r in _decode(SLICE) if not isinstance(r, Reject)]
    home = Partitioner(stream.topics.partitions)(records[0]["id"])
    vessel = stream.topics.positions_vessel
    changelog = f"{stream.kafka.app_id}-tracks-vessel-changelog"
    checkpoint_key = f"{home}#checkpoint".encode()
    frames = [records[i : i + 20] for i in range(0, len(records), 20)]
    half = len(frames) // 2
    producer = kafka_producer(broker)
    try:
        for frame in frames[:half]:
            producer.send(vessel, value=encode_frame(frame), partition=home)
        producer.flush(30)

        def checkpoints() -> list[Any]:
            return [m for m in read_all(broker, changelog) if m.key == checkpoint_key]

        wait_until(lambda: len(checkpoints()) >= 2, 60, "two state flushes")
        assert first.stop() == 0
        older = checkpoints()[-2]
        producer.send(changelog, key=older.key, value=older.value, partition=home)
        producer.flush(30)
        second = workers(broker, config)
        for frame in frames[half:]:
            producer.send(vessel, value=encode_frame(frame), partition=home)
        for partition in range(stream.topics.partitions):
            producer.send(vessel, value=b"[]", partition=partition, headers=[(CONTROL_HEADER, END_OF_INPUT)])
        producer.flush(30)
    finally:
        producer.close(10)
    collector = Collector(broker, alert_topics(stream, None))
    try:
        wait_until(collector.has(expected), 60, "the alerts of every message")
        assert wire(collector.finals()) == wire(expected)
    finally:
        collector.close()
    assert "first (state checkpoint is older)" in second.text()
    assert second.stop() == 0
