"""Fixtures of the okr_platform tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from okr_events.consumer_store import open_consumer_store
from okr_events.consuming import ConsumerStore
from psycopg import sql
from web_kit import SECRET, ExampleSettings


@pytest.fixture
def hs256() -> ExampleSettings:
    """Outside the embedded default, with a real HS256 secret."""
    return ExampleSettings(persistence="postgres", jwt_secret=SECRET)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[int], list[ConsumerStore]]]:
    """``open_stores(n)``: n empty consuming stores of one dialect (SQLite files, then
    PostgreSQL schemas: the test's own postgres_schema and more, dropped afterwards)."""
    opened: list[ConsumerStore] = []
    schemas: list[str] = []

    def open_stores(count: int) -> list[ConsumerStore]:
        for _ in range(count):
            name = f"replica_{len(opened)}"
            if request.param == "sqlite":
                path = str(tmp_path / f"{name}.sqlite3")
                opened.append(open_consumer_store(name, sqlite_path=path))
                continue
            dsn = request.getfixturevalue("postgres_dsn")
            schema = (
                request.getfixturevalue("postgres_schema")
                if not schemas
                else f"{request.getfixturevalue('postgres_schema')}_{len(schemas)}"
            )
            schemas.append(schema)
            opened.append(open_consumer_store(name, postgres_conninfo=dsn, schema=schema))
        return opened[-count:]

    yield open_stores
    for store in opened:
        if request.param == "postgres":
            store.datastore.close()  # type: ignore[attr-defined]
    if len(schemas) > 1:  # the first is postgres_schema, which drops itself
        with psycopg.connect(request.getfixturevalue("postgres_dsn"), autocommit=True) as conn:
            for name in schemas[1:]:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(drop.format(sql.Identifier(name)))
