"""Rebuilding a consumer's store from Kafka with `replay`, on real PostgreSQL and Kafka: the
rebuilt store equals what the live consumer built event by event, and a live consumer group on
the rebuilt store continues exactly after the replay."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Sequence

import pytest
from batch_events import Recording, applied_count, ledger_rows, produce, streams, wait_for
from confluent_kafka import Consumer, Producer, TopicPartition
from okr_events.codec import InboundEvent
from okr_events.consuming import ConsumerStore, Tx
from okr_events.kafka import KafkaSettings
from okr_events.kafka_consumer import KafkaConsumerRunner
from okr_events.replay import PROGRESS_EVERY, replay

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def live_consumer(
    store: ConsumerStore, topic: str, kafka: KafkaSettings, **kwargs: int
) -> KafkaConsumerRunner:
    runner = KafkaConsumerRunner(
        Recording(),
        store,
        topics=[topic],
        settings=kafka,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        retry_backoff=0.01,
        **kwargs,
    )
    runner.start_thread("test-consumer")
    return runner


def applied(runner: KafkaConsumerRunner, events: int) -> None:
    """Wait until the runner's store holds ``events`` events; its error if it stopped."""
    wait_for(lambda: runner.error or applied_count(runner.store) == events, 60, "the consumer")
    assert runner.error is None


def positions(store: ConsumerStore, topic: str) -> list[int | None]:
    return [store.next_offset(topic, p) for p in range(3)]


def message_count(kafka: KafkaSettings, topic: str) -> int:
    consumer = Consumer(kafka.common() | {"group.id": f"count-{uuid.uuid4().hex}"})
    try:
        return sum(
            high - low
            for low, high in (
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                for p in range(3)
            )
        )
    finally:
        consumer.close()


def test_replay_equals_the_live_consumer_and_the_live_group_continues_after_it(
    pg_stores: dict[str, ConsumerStore], kafka: KafkaSettings, topic: str
) -> None:
    aggregates = [uuid.uuid4() for _ in range(200)]
    history = [(x, version) for version in range(1, 11) for x in aggregates]
    produce(kafka.bootstrap_servers, topic, history[:1000])
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    producer.produce(topic, key=str(aggregates[0]).encode(), value=b"not an event")
    assert producer.flush(10) == 0
    produce(kafka.bootstrap_servers, topic, history[1000:])
    n = len(history)

    # The live consumer group, on a backlog: it applies what each consume() returns as a batch.
    live_store = pg_stores["live"]
    live = live_consumer(live_store, topic, kafka, batch_size=300)
    try:
        applied(live, n)
        handler = live.processor.handler
        assert isinstance(handler, Recording)
        assert max(len(b) for b in handler.batches) <= 300
        assert len(handler.batches) + len(handler.singles) < n / 10  # batches, not events
        assert (live.processor.applied, live.processor.dead_lettered) == (n, 1)

        # The rebuild, into a fresh store.
        rebuilt = pg_stores["rebuilt"]
        calls: list[tuple[float, int, int]] = []
        rebuilder = Recording()
        result = replay(
            rebuilder,
            rebuilt,
            [topic],
            kafka,
            batch_size=500,
            progress=lambda done, total: calls.append((time.monotonic(), done, total)),
        )
        assert (result.applied, result.duplicates, result.dead_lettered) == (n, 0, 1)
        assert result.events == n + 1
        assert max(len(b) for b in rebuilder.batches) <= 500
        assert calls[-1][1:] == (n + 1, n + 1)
        assert [done for _, done, _ in calls] == sorted(done for _, done, _ in calls)
        spaced = itertools.pairwise(calls[:-1])  # all but the final call
        assert all(b[0] - a[0] >= PROGRESS_EVERY * 0.95 for a, b in spaced)

        assert ledger_rows(rebuilt) == ledger_rows(live_store)  # same offsets, ids, digests
        assert streams(rebuilt) == streams(live_store)
        assert positions(rebuilt, topic) == positions(live_store, topic)
        # Its dead letter stays in its own store; only the live consumer wrote to the DLQ.
        [dead] = rebuilt.dead_letters()
        assert dead["error"].startswith("DecodeError")
        assert message_count(kafka, topic + ".dlq") == 1

        # Events produced after the rebuild: a live group on the rebuilt store gets only those.
        later = [(x, 11) for x in aggregates[:50]] + [(uuid.uuid4(), 1) for _ in range(50)]
        produce(kafka.bootstrap_servers, topic, later)
        follower = live_consumer(rebuilt, topic, kafka)
        try:
            applied(follower, n + 100)
            applied(live, n + 100)
            time.sleep(0.5)  # nothing else arrives
            p = follower.processor
            assert (p.applied, p.duplicates, p.dead_lettered) == (100, 0, 0)
            assert ledger_rows(rebuilt) == ledger_rows(live_store)
            assert streams(rebuilt) == streams(live_store)
        finally:
            follower.close()
    finally:
        live.close()


class ProducesMeanwhile(Recording):
    """Events keep arriving while the rebuild runs: it publishes more during its first batch."""

    def __init__(self, publish: Callable[[], object]) -> None:
        super().__init__()
        self.publish: Callable[[], object] | None = publish

    def handle_batch(self, events: Sequence[InboundEvent], tx: Tx) -> None:
        if self.publish is not None:
            self.publish()
            self.publish = None
        super().handle_batch(events, tx)


def test_a_replay_stops_at_the_end_it_found_and_a_second_one_resumes_there(
    pg_stores: dict[str, ConsumerStore], kafka: KafkaSettings, topic: str
) -> None:
    aggregates = [uuid.uuid4() for _ in range(30)]
    produce(kafka.bootstrap_servers, topic, [(x, v) for v in (1, 2) for x in aggregates])
    store = pg_stores["rebuilt"]
    meanwhile = ProducesMeanwhile(
        lambda: produce(kafka.bootstrap_servers, topic, [(x, 3) for x in aggregates])
    )
    first = replay(meanwhile, store, [topic], kafka, batch_size=7)
    assert (first.applied, first.events) == (60, 60)
    assert meanwhile.publish is None  # it did publish during the replay
    assert message_count(kafka, topic) == 90

    calls: list[tuple[int, int]] = []
    second = replay(Recording(), store, [topic], kafka, progress=lambda *a: calls.append(a))
    assert (second.applied, second.duplicates, second.events) == (30, 0, 30)
    assert calls[-1] == (30, 30)
    assert applied_count(store) == 90

    nothing = replay(Recording(), store, [topic], kafka)
    assert (nothing.events, nothing.applied) == (0, 0)
