"""Repo-wide pytest plugin: real-PostgreSQL fixtures shared by every test folder.

Where the database comes from (first that works):
  1. env OKR_TEST_PG_DSN, used as is;
  2. a Docker engine (``docker info`` answers within 5 s): testcontainers ``postgres:15``;
  3. the machine's local server managed by ``deploy/local/pg.sh`` (``make pg`` starts it).
If none is reachable the test is skipped, or fails when CI=true/1 (CI must not silently skip).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parent
PG_SH = REPO_ROOT / "deploy" / "local" / "pg.sh"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: test needs a real PostgreSQL (postgres_dsn fixture)"
    )


def _docker_available() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _accepts_connections(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _unavailable(reason: str) -> None:
    msg = (
        f"PostgreSQL not available ({reason}). Start it with `make pg` "
        "(deploy/local/pg.sh up) or set OKR_TEST_PG_DSN."
    )
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    # 1. Explicit DSN wins.
    if dsn := os.environ.get("OKR_TEST_PG_DSN"):
        yield dsn
        return

    # 2. Docker engine: throwaway container for the whole session.
    if _docker_available():
        from testcontainers.postgres import PostgresContainer  # lazy: only needed with Docker

        with PostgresContainer("postgres:15") as pg:
            # Build a plain libpq DSN (get_connection_url() carries a SQLAlchemy driver suffix).
            host, port = pg.get_container_host_ip(), pg.get_exposed_port(5432)
            yield f"postgresql://{pg.username}:{pg.password}@{host}:{port}/{pg.dbname}"
        return

    # 3. Local server from deploy/local/pg.sh (honours the OKR_PG_* overrides).
    try:
        dsn = subprocess.run(
            ["bash", str(PG_SH), "dsn"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"`{PG_SH} dsn` failed: {exc}")
    if not _accepts_connections(dsn):
        _unavailable(f"no Docker engine and nothing accepts connections at {dsn}")
    yield dsn


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh, uniquely named schema for one test; dropped (CASCADE) afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
