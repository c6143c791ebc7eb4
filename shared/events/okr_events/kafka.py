"""Kafka connection settings, client configurations and topic creation, shared by every
relay and consumer (prefix OKR_KAFKA_, documented in docs/settings.md#kafka)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

DLQ_SUFFIX = ".dlq"


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OKR_KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_partitions: int = 6
    replication_factor: int = 1
    # Extra librdkafka properties for every client, e.g. security settings:
    # OKR_KAFKA_CLIENT_CONFIG='{"security.protocol": "SASL_SSL", ...}'
    client_config: dict[str, str] = {}

    def common(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap_servers, **self.client_config}

    def producer(self, client_id: str) -> dict[str, Any]:
        """Idempotent, acks=all: a retried send is written once, in order, per partition."""
        return {
            **self.common(),
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            # Keep retrying through a broker outage this long before a delivery is failed.
            "message.timeout.ms": 300_000,
        }

    def consumer(self, group_id: str, client_id: str) -> dict[str, Any]:
        """Offsets live in the consumer's database (with its writes); Kafka's committed offsets
        are only a copy kept for standard lag tooling, so auto-commit is off."""
        return {
            **self.common(),
            "group.id": group_id,
            "client.id": client_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 10,
            # A member that died is replaced after this long (Kafka's default is 45 s).
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000,
        }


def ensure_topics(
    settings: KafkaSettings,
    topics: Iterable[str],
    *,
    partitions: int | None = None,
    timeout: float = 30.0,
) -> None:
    """Create missing topics (and their dead-letter topics) keeping events forever.

    Event topics are the suite's history: analytics and auditors replay them from offset 0,
    so retention is unlimited (retention.ms=-1). Existing topics are left as they are."""
    admin = AdminClient(settings.common())
    wanted = []
    for topic in topics:
        for name in (topic, topic + DLQ_SUFFIX):
            wanted.append(
                NewTopic(
                    name,
                    num_partitions=partitions or settings.topic_partitions,
                    replication_factor=settings.replication_factor,
                    config={"retention.ms": "-1", "cleanup.policy": "delete"},
                )
            )
    for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            log.info("created topic %s", name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
