"""The shared PostgreSQL and Kafka a run uses: PostgreSQL's settings from the environment
(OKR_PG_HOST, OKR_PG_PORT, OKR_PG_DB, OKR_PG_USER, OKR_PG_PASSWORD; Kafka's are KafkaSettings',
OKR_KAFKA_*), fresh schema names, and whether both answer. A run makes its own schemas, topics
and consumer groups and removes them; it never starts or stops the servers."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from okr_events.kafka import KafkaSettings


@dataclass(frozen=True)
class Postgres:
    host: str = os.environ.get("OKR_PG_HOST", "127.0.0.1")
    port: int = int(os.environ.get("OKR_PG_PORT", "5432"))
    dbname: str = os.environ.get("OKR_PG_DB", "okr")
    user: str = os.environ.get("OKR_PG_USER", "okr")
    password: str = os.environ.get("OKR_PG_PASSWORD", "okr")

    def conninfo(self) -> str:
        return (
            f"host={self.host} port={self.port} dbname={self.dbname} "
            f"user={self.user} password={self.password}"
        )

    def url(self) -> str:
        """The same as a postgresql:// URL."""
        return (
            f"postgresql://{quote(self.user)}:{quote(self.password)}@{self.host}:{self.port}/"
            f"{quote(self.dbname)}"
        )

    def create_schema(self, schema: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(schema)))

    def drop_schema(self, schema: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    psycopg.sql.Identifier(schema)
                )
            )

    def library_env(self, schema: str) -> dict[str, str]:
        """The eventsourcing library's PostgreSQL settings; POSTGRES_ENABLE_DB_FUNCTIONS off."""
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        }


def unique_schema(prefix: str) -> str:
    return f"{prefix}_{datetime.now(UTC):%Y%m%d_%H%M%S}_{os.getpid()}"


_schemas = itertools.count(1)


def fresh_schema(prefix: str) -> str:
    return f"{unique_schema(prefix)}_{next(_schemas)}"


def check_infrastructure(pg: Postgres, kafka: KafkaSettings) -> str | None:
    try:
        psycopg.connect(pg.conninfo(), connect_timeout=5).close()
    except psycopg.OperationalError as error:
        return f"PostgreSQL at {pg.host}:{pg.port} does not answer ({error}); `make infra-up`"
    try:
        AdminClient(kafka.common()).list_topics(timeout=10)
    except KafkaException as error:
        return f"Kafka at {kafka.bootstrap_servers} does not answer ({error}); `make infra-up`"
    return None
