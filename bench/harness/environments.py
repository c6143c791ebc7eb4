"""The environment of each process a run starts on the shared PostgreSQL and Kafka: the goals
service and its relay, the ledger, the notifier (like tests/e2e/conftest.py). Every token a run
mints is signed with JWT_SECRET, which the goals service and the notifier both accept."""

from __future__ import annotations

import json
import os

from okr_events.kafka import KafkaSettings
from okr_testkit.notifier import WEBHOOK_SECRET_KEY

from harness.infrastructure import Postgres
from harness.processes import free_port

JWT_SECRET = "bench-goals-jwt-secret-0123456789abcdefghijklmnopqrstuvwxyz"


def process_env(
    pg: Postgres, kafka: KafkaSettings, goals_schema: str, topic: str
) -> dict[str, str]:
    """Environment of the goals service and relay processes (like tests/e2e/conftest.py)."""
    return {
        "GOALS_PERSISTENCE": "postgres",
        "GOALS_POSTGRES_HOST": pg.host,
        "GOALS_POSTGRES_PORT": str(pg.port),
        "GOALS_POSTGRES_DBNAME": pg.dbname,
        "GOALS_POSTGRES_USER": pg.user,
        "GOALS_POSTGRES_PASSWORD": pg.password,
        "GOALS_POSTGRES_SCHEMA": goals_schema,
        "GOALS_JWT_SECRET": JWT_SECRET,
        "GOALS_EVENTS_TOPIC": topic,
        "OKR_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "OKR_KAFKA_TOPIC_PARTITIONS": str(kafka.topic_partitions),
        # Spans are made (events and messages carry trace context) but not exported.
        "OKR_TRACING_EXPORTER": "none",
    }


def relay_env(pg: Postgres, kafka: KafkaSettings, goals_schema: str, topic: str) -> dict[str, str]:
    """The relay uses three connections (log, LISTEN, position); its default pools of 10 would
    open 20 and, beside the service's, crowd PostgreSQL's 100 connection slots."""
    return process_env(pg, kafka, goals_schema, topic) | {"GOALS_POSTGRES_POOL_SIZE": "2"}


def ledger_env(
    pg: Postgres, kafka: KafkaSettings, schema: str, topic: str, group: str
) -> dict[str, str]:
    """The ledger process (`python -m okr_events.ledger_process`) on `topic`."""
    return {
        "OKR_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "OKR_KAFKA_TOPIC_PARTITIONS": str(kafka.topic_partitions),
        "OKR_TRACING_EXPORTER": "none",
        "OKR_LEDGER_POSTGRES_CONNINFO": pg.conninfo(),
        "OKR_LEDGER_POSTGRES_SCHEMA": schema,
        "OKR_LEDGER_TOPICS": json.dumps([topic]),
        "OKR_LEDGER_GROUP_ID": group,
        "OKR_LEDGER_HTTP_PORT": str(free_port()),
    }


def notifier_env(
    pg: Postgres, kafka: KafkaSettings, schema: str, topic: str, group: str
) -> dict[str, str]:
    """The notifier (uvicorn, NOTIFIER_APP) on `topic`, its scheduler off."""
    return {
        "NOTIFIER_PERSISTENCE": "postgres",
        "NOTIFIER_POSTGRES_HOST": pg.host,
        "NOTIFIER_POSTGRES_PORT": str(pg.port),
        "NOTIFIER_POSTGRES_DBNAME": pg.dbname,
        "NOTIFIER_POSTGRES_USER": pg.user,
        "NOTIFIER_POSTGRES_PASSWORD": pg.password,
        "NOTIFIER_POSTGRES_SCHEMA": schema,
        "NOTIFIER_TOPICS": json.dumps([topic]),
        "NOTIFIER_GROUP_ID": group,
        "NOTIFIER_JWT_SECRET": JWT_SECRET,  # the goals service's: one token for both
        "NOTIFIER_WEBHOOK_SECRET_KEYS": WEBHOOK_SECRET_KEY,  # required outside the embedded default
        "NOTIFIER_SCHEDULER_ENABLED": "false",
        "OKR_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "OKR_KAFKA_TOPIC_PARTITIONS": str(kafka.topic_partitions),
        "OKR_TRACING_EXPORTER": "none",
        "PGAPPNAME": app_name("notifier"),
    }


def app_name(role: str) -> str:
    """The application_name (PGAPPNAME) of one role's connections: PostgresBackends finds
    their backends by it."""
    return f"bench-notifier-{role}-{os.getpid()}"
