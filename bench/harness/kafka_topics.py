"""A run's Kafka topics: their message counts and ends, the CreateTime of their messages (the
relay's produce() call), and their removal with the run's consumer groups."""

from __future__ import annotations

import json
import sys
import time
import uuid

from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from okr_events.kafka import DLQ_SUFFIX, KafkaSettings


def delete_topics(kafka: KafkaSettings, topics: list[str], groups: list[str] | None = None) -> None:
    """Best effort: the bench's topics (and their dead-letter topics) and consumer groups."""
    if not topics:
        return
    admin = AdminClient(kafka.common())
    names = [name for topic in topics for name in (topic, topic + DLQ_SUFFIX)]
    futures = list(admin.delete_topics(names, operation_timeout=30).values())
    if groups:
        futures += list(admin.delete_consumer_groups(list(groups), request_timeout=30).values())
    for future in futures:
        try:
            future.result(timeout=30)
        except Exception as error:
            print(f"bench: cleanup: {error}", file=sys.stderr)


def topic_message_count(kafka: KafkaSettings, topic: str) -> int:
    consumer = Consumer(kafka.common() | {"group.id": f"bench-watermarks-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        total = 0
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def high_watermarks(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    consumer = Consumer(kafka.common() | {"group.id": f"bench-watermarks-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def produce_times(
    kafka: KafkaSettings, topic: str, start: dict[int, int], timeout: float = 30.0
) -> dict[tuple[str, int], float]:
    """(aggregate id, version) -> the message's CreateTime (s), i.e. the relay's produce()
    call, for every message from the `start` offsets to the current end of each partition."""
    end = high_watermarks(kafka, topic)
    consumer = Consumer(
        kafka.common()
        | {"group.id": f"bench-reader-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    times: dict[tuple[str, int], float] = {}
    try:
        for p, high in end.items():
            low = start.get(p, 0)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, p, low)])
            got = 0
            deadline = time.monotonic() + timeout
            while got < high - low and time.monotonic() < deadline:
                for m in consumer.consume(1000, timeout=0.5):
                    if m.error() is not None:
                        continue
                    got += 1
                    kind, ms = m.timestamp()
                    if kind != TIMESTAMP_CREATE_TIME:
                        continue
                    value = json.loads(m.value())
                    times[(value["aggregate_id"], int(value["aggregate_version"]))] = ms / 1000
    finally:
        consumer.close()
    return times
