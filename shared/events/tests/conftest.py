"""Fixtures of the consumer runtime's tests: a consumer store on SQLite and on PostgreSQL (the
repository's conftest provides the server), and a fresh Kafka topic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from okr_events.consuming import ConsumerStore, open_consumer_store
from okr_events.kafka import KafkaSettings, ensure_topics
from psycopg import sql


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConsumerStore]:
    """A consumer store on each dialect; a PostgreSQL one in a schema of its own."""
    if request.param == "sqlite":
        opened = open_consumer_store("ledger", sqlite_path=str(tmp_path / "ledger.sqlite3"))
    else:
        schema = request.getfixturevalue("postgres_schema")
        dsn = request.getfixturevalue("postgres_dsn")
        opened = open_consumer_store(
            "ledger", postgres_conninfo=psycopg.conninfo.make_conninfo(dsn), schema=schema
        )
    yield opened
    opened.datastore.close()  # type: ignore[attr-defined]


@pytest.fixture
def pg_stores(postgres_dsn: str) -> Iterator[dict[str, ConsumerStore]]:
    """Consumer stores on PostgreSQL by name, each in its own schema, dropped afterwards."""
    conninfo = psycopg.conninfo.make_conninfo(postgres_dsn)
    schemas: list[str] = []

    class Stores(dict[str, ConsumerStore]):
        def __missing__(self, name: str) -> ConsumerStore:
            schema = f"t_{name}_{uuid.uuid4().hex[:10]}"
            schemas.append(schema)
            self[name] = open_consumer_store("ledger", postgres_conninfo=conninfo, schema=schema)
            return self[name]

    stores = Stores()
    try:
        yield stores
    finally:
        for each in stores.values():
            each.datastore.close()  # type: ignore[attr-defined]
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_partitions=3)


@pytest.fixture
def topic(kafka: KafkaSettings, kafka_topic_prefix: str) -> str:
    """A fresh 3-partition topic (and its .dlq)."""
    name = f"{kafka_topic_prefix}okr.goals.events.v1"
    ensure_topics(kafka, [name])
    return name
