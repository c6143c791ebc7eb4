"""Fixtures of the consumer runtime's tests: a consumer store on SQLite and on PostgreSQL (the
repository's conftest provides the server), a fresh Kafka topic, and the tally context's event
store for the tests of commands from events (tally_context.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from okr_events.consuming import ConsumerStore, open_consumer_store
from okr_events.kafka import KafkaSettings, ensure_topics
from psycopg import sql
from tally_context import TallyApplication, postgres_env, sqlite_env


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


@pytest.fixture(params=["sqlite", "postgres"])
def tally_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The tally context's event store: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return sqlite_env(str(tmp_path / "tally.sqlite3"))
    schema = request.getfixturevalue("postgres_schema")
    dsn = request.getfixturevalue("postgres_dsn")
    return postgres_env(psycopg.conninfo.conninfo_to_dict(dsn), schema)


@pytest.fixture
def open_tally(tally_env: dict[str, str]) -> Iterator[Any]:
    """Opens the tally context's application (as many times as a test restarts it)."""
    opened: list[TallyApplication] = []

    def open_(**env: str) -> TallyApplication:
        app = TallyApplication(tally_env | env)
        opened.append(app)
        return app

    yield open_
    for app in opened:
        app.close()
