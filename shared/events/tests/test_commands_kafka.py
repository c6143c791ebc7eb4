"""Commands from events over real Kafka into a real PostgreSQL event store: the tally context
(tally_context.py) applies the counter context's Counted events from a 3-partition topic.

A consumer process is SIGKILLed mid-stream and another dies inside its transaction (after its
inserts, before the commit); after each, what the tally store holds is exactly the commands of
the events before its stored positions, and the last run applies every event once. Events
re-published at new offsets change nothing; a restarted consumer starts at the positions in
the event store; refusals are published by the tally context's relay; a bug goes to the
dead-letter topic, not into a refusal."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from batch_events import wait_for
from confluent_kafka import Consumer, Producer, TopicPartition
from eventsourcing.persistence import InfrastructureFactory, TrackingRecorder
from eventsourcing.utils import Environment
from okr_events.codec import decode, encode, header_dict
from okr_events.commands import CommandProcessor
from okr_events.envelope import stable_event_id
from okr_events.kafka import DLQ_SUFFIX, KafkaSettings, ensure_topics
from okr_events.kafka_consumer import KafkaConsumerRunner
from okr_events.relay import OutboxRelay
from tally_context import (  # noqa: F401 - tally_contracts is a fixture
    COUNTER_SOURCE,
    TALLY_SOURCE,
    Counted,
    CounterStarted,
    TallyApplication,
    TallyHandler,
    applied_event_ids,
    postgres_env,
    refusals,
    tally_contracts,
    tally_to_contract,
    totals,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.kafka,
    pytest.mark.usefixtures("tally_contracts"),
]
TESTS = Path(__file__).resolve().parent


# ---- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_partitions=3)


@pytest.fixture
def counter_topic(kafka: KafkaSettings, kafka_topic_prefix: str) -> str:
    name = f"{kafka_topic_prefix}okr.counter.events.v1"
    ensure_topics(kafka, [name])
    return name


@pytest.fixture
def tally_env(postgres_dsn: str, postgres_schema: str) -> dict[str, str]:
    return postgres_env(psycopg.conninfo.conninfo_to_dict(postgres_dsn), postgres_schema)


@pytest.fixture
def tally(tally_env: dict[str, str]) -> Iterator[TallyApplication]:
    """The tally context's application in this process (the tests read its store with it)."""
    app = TallyApplication(tally_env)
    yield app
    app.close()


def counter_streams(counters: int, counts: int, seed: int) -> list[Any]:
    """Contracts of ``counters`` counters, ``counts`` Counted each (about one in five
    negative, so refused), interleaved as the counters would publish them."""
    rng = random.Random(seed)
    at = datetime(2026, 10, 1, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(counters)]
    streams = {
        c: [CounterStarted(aggregate_id=c, aggregate_version=1, occurred_at=at, actor="m")]
        + [
            Counted(
                aggregate_id=c,
                aggregate_version=v,
                occurred_at=at,
                actor="m",
                amount=rng.choice([-2, 1, 2, 3, 4]),
            )
            for v in range(2, counts + 2)
        ]
        for c in ids
    }
    return [stream[i] for i in range(counts + 1) for stream in streams.values()]


def produce(bootstrap: str, topic: str, contracts: Sequence[Any]) -> None:
    """Publish as a relay does: key = aggregate id, so one counter keeps its partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for contract in contracts:
        message = encode(contract, topic=topic, source=COUNTER_SOURCE)
        producer.produce(topic, key=message.key, value=message.value, headers=message.headers)
    assert producer.flush(30) == 0


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every message of a topic, partition by partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        messages: list[Any] = []
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            got: list[Any] = []
            deadline = time.monotonic() + 15
            while len(got) < high - low and time.monotonic() < deadline:
                got += [m for m in consumer.consume(500, timeout=0.5) if m.error() is None]
            messages += got
        return messages
    finally:
        consumer.close()


def ends(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> high watermark (the next offset to be written)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"w-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def positions(app: TallyApplication, topic: str, partitions: Sequence[int]) -> dict[int, int]:
    return {p: app.store.next_offset(topic, p) or 0 for p in partitions}


def caught_up(app: TallyApplication, bootstrap: str, topic: str) -> bool:
    highs = ends(bootstrap, topic)
    return positions(app, topic, list(highs)) == highs


def inbound_ids(app: TallyApplication) -> list[str]:
    """The inbound event of every command the store recorded: applied or refused."""
    return applied_event_ids(app) + [r.inbound_event_id for r in refusals(app)]


def assert_commands_match_positions(app: TallyApplication, messages: Sequence[Any]) -> None:
    """What the store holds is exactly one command per Counted event before its partition's
    stored position: events and positions were never committed apart."""
    topic = messages[0].topic()
    stored = positions(app, topic, sorted({m.partition() for m in messages}))
    expected = {
        header_dict(m.headers())["ce_id"]
        for m in messages
        if m.offset() < stored[m.partition()]
        and header_dict(m.headers())["ce_type"] == "okr.counter.Counted.v1"
    }
    recorded = inbound_ids(app)
    assert len(recorded) == len(set(recorded)), "an inbound event was applied twice"
    assert set(recorded) == expected


def expected_totals(contracts: Sequence[Any]) -> dict[uuid.UUID, int]:
    result: dict[uuid.UUID, int] = {}
    for contract in contracts:
        if isinstance(contract, Counted) and contract.amount >= 0:
            result[contract.aggregate_id] = result.get(contract.aggregate_id, 0) + contract.amount
    return result


class ConsumerProcess:
    """The tally consumer as a process of its own (tally_context.main), logging to a file."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed by the process
        python_path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            [sys.executable, "-c", "from tally_context import main; main()"],
            env=os.environ | self.env | env | {"PYTHONPATH": python_path},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def runner_thread(
    app: TallyApplication, topic: str, kafka: KafkaSettings, **handler: Any
) -> KafkaConsumerRunner:
    processor = CommandProcessor(TallyHandler(**handler), app)
    runner = KafkaConsumerRunner(
        processor,
        processor.store,
        topics=[topic],
        settings=kafka,
        group_id=f"tally-{uuid.uuid4().hex[:8]}",
        retry_backoff=0.01,
    )
    runner.start_thread("tally")
    return runner


def stop(runner: KafkaConsumerRunner) -> None:
    runner.stop()
    assert runner._thread is not None
    runner._thread.join(15)
    assert runner.error is None, runner.error


# ---- the tests ------------------------------------------------------------------------------


def test_consumers_killed_mid_stream_and_mid_transaction_apply_each_event_once(
    tally: TallyApplication,
    tally_env: dict[str, str],
    postgres_dsn: str,
    postgres_schema: str,
    kafka_bootstrap: str,
    counter_topic: str,
    tmp_path: Path,
) -> None:
    contracts = counter_streams(counters=12, counts=25, seed=7)
    produce(kafka_bootstrap, counter_topic, contracts)
    messages = read_topic(kafka_bootstrap, counter_topic)
    assert len(messages) == len(contracts)
    counted = [c for c in contracts if isinstance(c, Counted)]
    consumers = ConsumerProcess(
        tmp_path,
        {
            "TALLY_CONNINFO": psycopg.conninfo.make_conninfo(postgres_dsn),
            "TALLY_SCHEMA": postgres_schema,
            "TALLY_TOPIC": counter_topic,
            "TALLY_BOOTSTRAP": kafka_bootstrap,
            "TALLY_BATCH_SIZE": "10",
            "OKR_TRACING_EXPORTER": "none",
        },
    )
    try:
        # 1. Killed from outside while it is busy (10 ms per event, batches of 10). Each run
        # has a consumer group of its own: where it starts is only what the store says.
        first = consumers.start(
            "first", TALLY_GROUP=f"tally-{uuid.uuid4().hex}", TALLY_DELAY="0.01"
        )
        wait_for(lambda: len(inbound_ids(tally)) >= 60, 60, "the first consumer to get going")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = len(inbound_ids(tally))
        assert killed_at < len(counted), "the first consumer finished before it was killed"
        assert_commands_match_positions(tally, messages)

        # 2. Dies by itself inside its second transaction: after the inserts, before the commit.
        second = consumers.start(
            "second", TALLY_GROUP=f"tally-{uuid.uuid4().hex}", TALLY_CRASH_AT="2"
        )
        assert second.wait(60) == -signal.SIGKILL, consumers.logs()
        after_second = len(inbound_ids(tally))
        assert killed_at < after_second < len(counted)  # its first transaction committed
        assert_commands_match_positions(tally, messages)

        # 3. A last consumer applies the rest.
        consumers.start("third", TALLY_GROUP=f"tally-{uuid.uuid4().hex}")
        wait_for(lambda: caught_up(tally, kafka_bootstrap, counter_topic), 60, "the third consumer")
    finally:
        consumers.stop()
    assert_commands_match_positions(tally, messages)
    assert len(inbound_ids(tally)) == len(counted)
    assert totals(tally) == expected_totals(contracts)
    negative = {
        stable_event_id(c.aggregate_id, c.aggregate_version) for c in counted if c.amount < 0
    }
    assert {r.inbound_event_id for r in refusals(tally)} == negative
    assert len(refusals(tally)) == len(negative) > 0


def test_republished_events_change_nothing_and_a_restart_starts_at_the_stored_positions(
    tally: TallyApplication, kafka: KafkaSettings, kafka_bootstrap: str, counter_topic: str
) -> None:
    contracts = counter_streams(counters=4, counts=10, seed=3)
    produce(kafka_bootstrap, counter_topic, contracts)
    runner = runner_thread(tally, counter_topic, kafka)
    wait_for(lambda: caught_up(tally, kafka_bootstrap, counter_topic), 30, "the tally")
    recorded = tally.recorder.max_notification_id()
    assert totals(tally) == expected_totals(contracts)

    produce(kafka_bootstrap, counter_topic, contracts)  # a relay re-publishing everything
    wait_for(lambda: caught_up(tally, kafka_bootstrap, counter_topic), 30, "the re-published")
    assert tally.recorder.max_notification_id() == recorded
    assert runner.processor.duplicates == len(contracts)
    stop(runner)

    # A new consumer group has no committed offsets: it reads from where the store says.
    restarted = runner_thread(tally, counter_topic, kafka)
    assert restarted.assigned.wait(30)
    more = Counted(
        aggregate_id=contracts[-1].aggregate_id,
        aggregate_version=contracts[-1].aggregate_version + 1,
        occurred_at=datetime(2026, 10, 2, tzinfo=UTC),
        actor="m",
        amount=5,
    )
    produce(kafka_bootstrap, counter_topic, [more])
    wait_for(lambda: restarted.processor.applied == 1, 30, "the new count")
    assert restarted.processor.duplicates == 0  # nothing before the positions was read again
    stop(restarted)


def test_refusals_are_events_of_the_tally_context_its_relay_publishes(
    tally: TallyApplication,
    tally_env: dict[str, str],
    kafka: KafkaSettings,
    kafka_bootstrap: str,
    counter_topic: str,
    kafka_topic_prefix: str,
) -> None:
    contracts = counter_streams(counters=3, counts=8, seed=11)
    negative = [c for c in contracts if isinstance(c, Counted) and c.amount < 0]
    assert negative
    produce(kafka_bootstrap, counter_topic, contracts)
    runner = runner_thread(tally, counter_topic, kafka)
    wait_for(lambda: caught_up(tally, kafka_bootstrap, counter_topic), 30, "the tally")
    stop(runner)

    tally_topic = f"{kafka_topic_prefix}okr.tally.events.v1"
    ensure_topics(kafka, [tally_topic])
    relay_positions = InfrastructureFactory.construct(
        Environment("tally_relay", tally_env)
    ).tracking_recorder()
    assert isinstance(relay_positions, TrackingRecorder)
    relay = OutboxRelay(
        TallyApplication(tally_env),
        to_contract=tally_to_contract,
        topic=tally_topic,
        source=TALLY_SOURCE,
        positions=relay_positions,
        producer_config=kafka.producer("tally-relay"),
    )
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: relay.lag() == 0, 30, "the tally relay")
    finally:
        relay.stop()
        thread.join(15)
        relay.close()

    published = [
        decode(
            topic=m.topic(),
            partition=m.partition(),
            offset=m.offset(),
            key=m.key(),
            value=m.value(),
            headers=m.headers(),
        )
        for m in read_topic(kafka_bootstrap, tally_topic)
    ]
    refused = [e for e in published if e.type == "okr.tally.CommandRefused.v1"]
    assert sorted(
        (e.contract.inbound_aggregate_id, e.contract.inbound_aggregate_version) for e in refused
    ) == sorted((c.aggregate_id, c.aggregate_version) for c in negative)
    assert {e.source for e in refused} == {TALLY_SOURCE}
    assert all(e.contract.code == "invalid_input" for e in refused)


def test_a_bug_goes_to_the_dead_letter_topic_not_into_a_refusal(
    tally: TallyApplication, kafka: KafkaSettings, kafka_bootstrap: str, counter_topic: str
) -> None:
    at = datetime(2026, 10, 1, tzinfo=UTC)
    counter = uuid.uuid4()
    contracts = [
        CounterStarted(aggregate_id=counter, aggregate_version=1, occurred_at=at, actor="m"),
        *(
            Counted(aggregate_id=counter, aggregate_version=v, occurred_at=at, actor="m", amount=a)
            for v, a in ((2, 4), (3, 13), (4, -1), (5, 6))
        ),
    ]
    produce(kafka_bootstrap, counter_topic, contracts)
    runner = runner_thread(tally, counter_topic, kafka, bug_amount=13)
    wait_for(lambda: caught_up(tally, kafka_bootstrap, counter_topic), 30, "the tally")
    stop(runner)
    [letter] = read_topic(kafka_bootstrap, counter_topic + DLQ_SUFFIX)
    headers = header_dict(letter.headers())
    assert headers["dlq_error_class"] == "RuntimeError"
    assert (
        decode(
            topic=counter_topic,
            partition=letter.partition(),
            offset=0,
            key=letter.key(),
            value=letter.value(),
            headers=letter.headers(),
        ).contract
        == contracts[2]
    )
    assert [(r.inbound_aggregate_version, r.code) for r in refusals(tally)] == [
        (4, "invalid_input")
    ]
    assert totals(tally) == {counter: 10}
