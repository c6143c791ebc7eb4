"""Fixtures for the notifier tests: `suite` (both contexts on SQLite, then PostgreSQL),
`sqlite_suite`, and `suite_factory` (see okr_testkit.suite.Suite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from okr_testkit.goals import postgres_settings as goals_postgres
from okr_testkit.goals import sqlite_settings as goals_sqlite
from okr_testkit.notifier import postgres_settings, sqlite_settings
from okr_testkit.suite import Suite, open_suite
from psycopg import sql


@pytest.fixture
def suite_factory(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Callable[..., Suite]]:
    started: list[Suite] = []
    schemas: list[str] = []

    def start(backend: str = "sqlite", **notifier_settings: Any) -> Suite:
        if backend == "sqlite":
            goals = goals_sqlite(tmp_path)
            settings = sqlite_settings(tmp_path, **notifier_settings)
        else:
            dsn = request.getfixturevalue("postgres_dsn")
            schema = request.getfixturevalue("postgres_schema")
            goals = goals_postgres(dsn, schema)
            settings = postgres_settings(dsn, f"{schema}_notifier", **notifier_settings)
            schemas.append(settings.postgres_schema)
        suite = open_suite(goals, settings)
        started.append(suite)
        return suite

    yield start
    for suite in reversed(started):
        suite.close()
    if schemas:
        dsn = request.getfixturevalue("postgres_dsn")
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def suite(request: pytest.FixtureRequest, suite_factory: Callable[..., Suite]) -> Suite:
    """The two contexts on SQLite, and again on PostgreSQL."""
    return suite_factory(request.param)


@pytest.fixture
def sqlite_suite(suite_factory: Callable[..., Suite]) -> Suite:
    return suite_factory("sqlite")
