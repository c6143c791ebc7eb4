"""Replaying by shares, on real PostgreSQL and Kafka: the shares (0, 2) and (1, 2), run at the
same time into one store, apply exactly what one full replay applies, each reading only its
partitions (p % 2 == k)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from batch_events import Recording, contract, ledger_rows, streams
from confluent_kafka import Consumer, Producer, TopicPartition
from okr_events import GOALS_SOURCE
from okr_events.codec import encode
from okr_events.consuming import ConsumerStore
from okr_events.kafka import KafkaSettings
from okr_events.replay import ReplayResult, replay

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

PARTITIONS = 3  # the `topic` fixture's


def produce(kafka: KafkaSettings, topic: str, pairs: list[tuple[uuid.UUID, int]]) -> None:
    """Publish events as the relay does (key = aggregate id), idempotently: a retried send
    can neither repeat nor reorder a partition's messages (versions stay in order)."""
    producer = Producer(
        {"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 5, "enable.idempotence": True}
    )
    for aggregate_id, version in pairs:
        message = encode(contract(aggregate_id, version), topic=topic, source=GOALS_SOURCE)
        producer.produce(topic, key=message.key, value=message.value, headers=message.headers)
    producer.produce(topic, key=str(pairs[0][0]).encode(), value=b"not an event")
    assert producer.flush(30) == 0


def partition_sizes(kafka: KafkaSettings, topic: str) -> list[int]:
    consumer = Consumer(kafka.common() | {"group.id": f"count-{uuid.uuid4().hex}"})
    try:
        marks = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in range(PARTITIONS)
        ]
    finally:
        consumer.close()
    return [high - low for low, high in marks]


def test_two_shares_together_apply_what_one_full_replay_applies(
    pg_stores: dict[str, ConsumerStore], kafka: KafkaSettings, topic: str
) -> None:
    aggregates = [uuid.uuid4() for _ in range(60)]
    produce(kafka, topic, [(x, v) for v in range(1, 6) for x in aggregates])  # and a poison
    sizes = partition_sizes(kafka, topic)
    assert sum(sizes) == 301 and all(sizes)  # every partition holds some

    full_store = pg_stores["full"]
    full = replay(Recording(), full_store, [topic], kafka, batch_size=50)

    shared = pg_stores["shared"]
    shared.setup(Recording.create_statements)  # once, before the shares (as rebuilds do)
    calls: dict[int, list[tuple[int, int]]] = {0: [], 1: []}

    def share(k: int) -> ReplayResult:
        return replay(
            Recording(),
            shared,
            [topic],
            kafka,
            batch_size=50,
            share=(k, 2),
            progress=lambda done, total: calls[k].append((done, total)),
        )

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(share, (0, 1)))

    for field in ("applied", "duplicates", "dead_lettered", "events"):
        assert sum(getattr(r, field) for r in results) == getattr(full, field), field
    assert (full.applied, full.dead_lettered, full.events) == (300, 1, 301)
    # Each share read its partitions only: progress and results are of the share alone.
    mine = {k: sum(n for p, n in enumerate(sizes) if p % 2 == k) for k in (0, 1)}
    for k, result in enumerate(results):
        assert result.events == mine[k]
        assert calls[k][0] == (0, mine[k])  # the total at once
        assert calls[k][-1] == (mine[k], mine[k])

    assert ledger_rows(shared) == ledger_rows(full_store)  # same offsets, ids, digests
    assert streams(shared) == streams(full_store)
    for p in range(PARTITIONS):
        assert shared.next_offset(topic, p) == full_store.next_offset(topic, p) == sizes[p]
    assert [d["offset"] for d in shared.dead_letters()] == [
        d["offset"] for d in full_store.dead_letters()
    ]


def test_a_share_is_k_of_n(pg_stores: dict[str, ConsumerStore], kafka: KafkaSettings) -> None:
    for wrong in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError, match="share"):
            replay(Recording(), pg_stores["s"], ["unused"], kafka, share=wrong)
