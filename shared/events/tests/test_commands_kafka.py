"""Commands from events over real Kafka into a real PostgreSQL event store: the tally context
(tally_context.py) applies the counter context's Counted events from a 3-partition topic.

A consumer process is SIGKILLed mid-stream and another dies inside its transaction (after its
inserts, before the commit); after each, what the tally store holds is exactly the commands of
the events before its stored positions, and the last run applies every event once. Events
re-published at new offsets change nothing; a restarted consumer starts at the positions in
the event store; refusals are published by the tally context's relay; a bug goes to the
dead-letter topic, not into a refusal."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from batch_events import wait_for
from commands_kafka_kit import (
    ConsumerProcess,
    assert_commands_match_positions,
    caught_up,
    counter_streams,
    expected_totals,
    inbound_ids,
    produce,
    read_topic,
    runner_thread,
    stop,
)
from eventsourcing.persistence import InfrastructureFactory, TrackingRecorder
from eventsourcing.utils import Environment
from okr_events.codec import decode, header_dict
from okr_events.envelope import stable_event_id
from okr_events.kafka import DLQ_SUFFIX, KafkaSettings, ensure_topics
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
