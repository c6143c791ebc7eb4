"""Fixtures for the goals service tests: a running service on SQLite or on real PostgreSQL,
an HTTP client, tokens, and a small organisation to act in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from okr_goals.main import create_app
from okr_goals.settings import GoalsSettings
from okr_testkit.goals import (  # re-exported: the tests import them from here
    Org,
    build_org,
    postgres_settings,
    sqlite_settings,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Any) -> GoalsSettings:
    """Each test using this runs twice: on SQLite and on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return sqlite_settings(tmp_path)
    dsn = request.getfixturevalue("postgres_dsn")
    schema = request.getfixturevalue("postgres_schema")
    return postgres_settings(dsn, schema)


@pytest.fixture
def sqlite_only(tmp_path: Any) -> GoalsSettings:
    return sqlite_settings(tmp_path)


@pytest.fixture
def client_factory() -> Iterator[Callable[[GoalsSettings], TestClient]]:
    """Start a service (lifespan included); every one started is stopped at the end."""
    clients: list[TestClient] = []

    def start(settings: GoalsSettings) -> TestClient:
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def org(settings: GoalsSettings, client_factory) -> Org:
    """The small organisation on SQLite and on PostgreSQL."""
    return build_org(client_factory(settings), settings)


@pytest.fixture
def sqlite_org(sqlite_only: GoalsSettings, client_factory) -> Org:
    """The small organisation on SQLite only, for the many API input tests."""
    return build_org(client_factory(sqlite_only), sqlite_only)
