"""Fixtures for the notifier tests: `suite` (both contexts on SQLite, then PostgreSQL),
`sqlite_suite`, and `suite_factory` (see notifier_kit.Suite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from notifier_kit import START, Suite
from okr_goals.contracts import to_contract as goals_contract
from okr_goals.main import GoalsContext
from okr_goals.testing import build_org
from okr_goals.testing import postgres_settings as goals_postgres
from okr_goals.testing import sqlite_settings as goals_sqlite
from okr_notifier.main import NotifierContext
from okr_notifier.service import InProcessFeed
from okr_notifier.testing import postgres_settings, sqlite_settings
from okr_platform.clock import FakeClock
from okr_platform.serving import serve_contexts
from psycopg import sql


@pytest.fixture
def suite_factory(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Callable[..., Suite]]:
    started: list[TestClient] = []
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
        clock = FakeClock(START)
        goals_context = GoalsContext(goals)
        notifier = NotifierContext(
            settings,
            feeds=[InProcessFeed(lambda: goals_context._service().app, goals_contract)],
            clock=clock,
        )
        client = TestClient(
            serve_contexts("suite under test", [goals_context, notifier], "okr-suite")
        )
        client.__enter__()
        started.append(client)
        return Suite(build_org(client, goals), client, clock, notifier)

    yield start
    for client in reversed(started):
        client.__exit__(None, None, None)
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
