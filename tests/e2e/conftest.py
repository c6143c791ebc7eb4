"""End-to-end fixtures: the goals service on real PostgreSQL, its relay, and the ledger consumer
on real Kafka. Each test gets its own schemas and topic, so tests never see each other's data.

Pieces run either in this process (threads: fast, and their spans reach the in-memory exporter)
or as real processes (`okr-goals-relay`, `okr-ledger`) when a test kills them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from fastapi.testclient import TestClient
from okr_events.consuming import ConsumerStore, open_consumer_store
from okr_events.kafka import KafkaSettings, ensure_topics
from okr_events.kafka_consumer import KafkaConsumerRunner
from okr_events.ledger import Ledger
from okr_events.relay import OutboxRelay
from okr_goals.main import create_app
from okr_goals.relay import build_relay
from okr_goals.settings import GoalsSettings
from okr_testkit.goals import Org, build_org, postgres_settings
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / "data" / "log" / "e2e"

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Stack:
    """One test's backbone: schemas, topic, settings, and the pieces it started."""

    dsn: str
    bootstrap: str
    topic: str
    goals_schema: str
    ledger_schema: str
    goals: GoalsSettings
    kafka: KafkaSettings
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    # ---- environment of child processes -----------------------------------------------------

    def env(self) -> dict[str, str]:
        g = self.goals
        return os.environ | {
            "GOALS_PERSISTENCE": "postgres",
            "GOALS_POSTGRES_HOST": g.postgres_host,
            "GOALS_POSTGRES_PORT": str(g.postgres_port),
            "GOALS_POSTGRES_DBNAME": g.postgres_dbname,
            "GOALS_POSTGRES_USER": g.postgres_user,
            "GOALS_POSTGRES_PASSWORD": g.postgres_password.get_secret_value(),
            "GOALS_POSTGRES_SCHEMA": self.goals_schema,
            "GOALS_JWT_SECRET": (g.jwt_secret.get_secret_value() if g.jwt_secret else ""),
            "GOALS_EVENTS_TOPIC": self.topic,
            "OKR_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "OKR_KAFKA_TOPIC_PARTITIONS": "3",
            "OKR_LEDGER_POSTGRES_CONNINFO": self.conninfo,
            "OKR_LEDGER_POSTGRES_SCHEMA": self.ledger_schema,
            "OKR_LEDGER_TOPICS": f'["{self.topic}"]',
            "OKR_LEDGER_GROUP_ID": f"ledger-{self.ledger_schema}",
            "OKR_LEDGER_HTTP_PORT": "0",
            "OKR_TRACING_EXPORTER": "none",
        }

    @property
    def conninfo(self) -> str:
        return psycopg.conninfo.make_conninfo(self.dsn)

    # ---- pieces -----------------------------------------------------------------------------

    def goals_client(self) -> TestClient:
        client = TestClient(create_app(self.goals))
        client.__enter__()
        self._cleanups.append(lambda: client.__exit__(None, None, None))
        return client

    def org(self) -> Org:
        return build_org(self.goals_client(), self.goals)

    def relay_thread(self) -> OutboxRelay:
        relay = build_relay(self.goals, self.kafka)
        thread = threading.Thread(target=relay.run, name="test-relay", daemon=True)
        thread.start()

        def stop() -> None:
            relay.stop()
            thread.join(10)
            relay.close()

        self._cleanups.append(stop)
        return relay

    def ledger_store(self) -> ConsumerStore:
        return open_consumer_store(
            "ledger", postgres_conninfo=self.conninfo, schema=self.ledger_schema
        )

    def ledger_thread(self, handler: Any = None, **kwargs: Any) -> KafkaConsumerRunner:
        runner = KafkaConsumerRunner(
            handler or Ledger(),
            self.ledger_store(),
            topics=[self.topic],
            settings=self.kafka,
            group_id=f"ledger-{self.ledger_schema}",
            **kwargs,
        )
        runner.start_thread("test-ledger")
        self._cleanups.append(runner.close)
        return runner

    def process(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """A real process (relay or ledger), logging to data/log/e2e/<topic>.<name>.log."""
        LOGS.mkdir(parents=True, exist_ok=True)
        log = open(LOGS / f"{self.topic}.{name}.log", "ab")  # noqa: SIM115 - closed at cleanup
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )

        def stop() -> None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()

        self._cleanups.append(stop)
        return proc

    # ---- observations -----------------------------------------------------------------------

    def ledger(self, statement: str, **params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.dsn, row_factory=psycopg.rows.dict_row) as conn:
            conn.execute(
                sql.SQL("SET search_path TO {}").format(sql.Identifier(self.ledger_schema))
            )
            try:
                return conn.execute(statement, params).fetchall()
            except psycopg.errors.UndefinedTable:
                return []

    def ledger_count(self) -> int:
        rows = self.ledger("SELECT count(*) AS n FROM ledger_events")
        return int(rows[0]["n"]) if rows else 0

    def stored_events(self) -> list[tuple[str, int]]:
        """(aggregate id, version) of every event in the goals store, in log order."""
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT originator_id, originator_version FROM {}.goals_events "
                    "ORDER BY notification_id"
                ).format(sql.Identifier(self.goals_schema))
            ).fetchall()
        return [(str(a), int(v)) for a, v in rows]

    def read_topic(self, topic: str | None = None, timeout: float = 10.0) -> list[Any]:
        """Every message on the topic, from offset 0, partition by partition."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        topic = topic or self.topic
        try:
            metadata = consumer.list_topics(topic, timeout=10)
            partitions = sorted(metadata.topics[topic].partitions)
            messages: list[Any] = []
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, p, low)])
                got: list[Any] = []
                deadline = time.monotonic() + timeout
                while len(got) < high - low and time.monotonic() < deadline:
                    for m in consumer.consume(500, timeout=0.5):
                        if m.error() is None:
                            got.append(m)
                messages.extend(got)
            return messages
        finally:
            consumer.close()

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            cleanup()


@pytest.fixture
def stack(postgres_dsn: str, kafka_bootstrap: str, kafka_topic_prefix: str) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:10]
    goals_schema, ledger_schema = f"e2e_goals_{suffix}", f"e2e_ledger_{suffix}"
    topic = f"{kafka_topic_prefix}okr.goals.events.v1"
    goals = postgres_settings(postgres_dsn, goals_schema).model_copy(update={"events_topic": topic})
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_partitions=3)
    ensure_topics(kafka, [topic])
    s = Stack(postgres_dsn, kafka_bootstrap, topic, goals_schema, ledger_schema, goals, kafka)
    try:
        yield s
    finally:
        s.close()
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            for schema in (goals_schema, ledger_schema):
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
