"""The Kafka fixtures of the root conftest give a real broker: create, produce, consume, restart."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

pytestmark = pytest.mark.kafka


def _create_topic(bootstrap: str, name: str) -> None:
    """Topics are created explicitly: the local broker has auto.create.topics.enable=false."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(name, num_partitions=1, replication_factor=1, config={"retention.ms": "-1"})
    admin.create_topics([new], operation_timeout=10)[name].result(timeout=15)
    (described,) = admin.describe_configs([ConfigResource("topic", name)]).values()
    assert described.result(timeout=10)["retention.ms"].value == "-1"


def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    producer.produce(topic, key=key, value=value)
    assert producer.flush(15) == 0, "message not delivered"


def _consume_one(bootstrap: str, topic: str, timeout: float = 30.0) -> tuple[bytes, bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}probe",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            return msg.key(), msg.value()
        raise AssertionError(f"no message on {topic} within {timeout:.0f} s")
    finally:
        consumer.close()


def test_create_produce_consume(kafka_bootstrap: str, kafka_topic_prefix: str) -> None:
    topic = f"{kafka_topic_prefix}fixture.probe"
    _create_topic(kafka_bootstrap, topic)

    _produce(kafka_bootstrap, topic, b"k1", b"hello")

    assert _consume_one(kafka_bootstrap, topic) == (b"k1", b"hello")
