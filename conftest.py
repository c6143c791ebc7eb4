"""Repo-wide pytest plugin: real-PostgreSQL and real-Kafka fixtures shared by every test folder.

Where the database comes from (first that works):
  1. env OKR_TEST_PG_DSN, used as is;
  2. a Docker engine (``docker info`` answers within 5 s): testcontainers ``postgres:15``;
  3. this checkout's own cluster managed by ``deploy/local/pg.sh`` (data/postgres, its port in
     data/ports.env; ``make pg``); started here with ``pg.sh up`` when it is down, and left
     running afterwards.

Where the Kafka broker comes from (first that works):
  1. env OKR_TEST_KAFKA_BOOTSTRAP, used as is (it cannot be stopped/started: ``kafka_broker``
     is then unavailable);
  2. a Docker engine: testcontainers ``KafkaContainer`` in KRaft mode (image
     ``confluentinc/cp-kafka:7.6.0``, override with OKR_TEST_KAFKA_IMAGE);
  3. this checkout's own broker managed by ``deploy/local/kafka.sh`` (data/kafka, its ports in
     data/ports.env; ``make kafka``); started here with ``kafka.sh up`` when it is down, and
     left running afterwards.
Either way the broker must answer a metadata request within 10 s.

If a service is not reachable the test is skipped, or fails when CI=true/1 (CI must not
silently skip). With --no-servers (`make unit`) a test asking for either fails at once: the
unit tier proves it needs neither.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parent
PG_SH = REPO_ROOT / "deploy" / "local" / "pg.sh"
KAFKA_SH = REPO_ROOT / "deploy" / "local" / "kafka.sh"
KAFKA_IMAGE = os.environ.get("OKR_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.6.0")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-servers",
        action="store_true",
        help="fail any test that asks for PostgreSQL or Kafka (the unit tier: make unit)",
    )


def _refuse_servers(request: pytest.FixtureRequest, server: str) -> None:
    if request.config.getoption("no_servers"):
        pytest.fail(f"--no-servers: this test needs {server}; it is not a unit test", False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: test needs a real PostgreSQL (postgres_dsn fixture)"
    )
    config.addinivalue_line(
        "markers", "kafka: test needs a real Kafka broker (kafka_bootstrap / kafka_broker fixtures)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reaches a broker, through whichever fixture, carries the kafka marker, so
    `-m "not kafka"` leaves out exactly those (the run under libfaketime: docs/testing.md#time)."""
    for item in items:
        if "_kafka" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


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
    if _in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def postgres_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    _refuse_servers(request, "PostgreSQL")
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

    # 3. This checkout's server from deploy/local/pg.sh (honours the OKR_PG_* overrides).
    try:
        dsn = subprocess.run(
            ["bash", str(PG_SH), "dsn"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        if not _accepts_connections(dsn):
            # Generous: the first `up` creates the cluster (initdb).
            up = subprocess.run(
                ["bash", str(PG_SH), "up"], capture_output=True, text=True, timeout=180
            )
            if up.returncode != 0:
                _unavailable(f"`{PG_SH} up` failed: {up.stderr.strip()[-2000:]}")
    except (OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"`{PG_SH}` failed: {exc}")
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


# --------------------------------------------------------------------------------------- Kafka


def _kafka_unavailable(
    reason: str,
    hint: str = "Start it with `make kafka` (deploy/local/kafka.sh up) "
    "or set OKR_TEST_KAFKA_BOOTSTRAP.",
) -> None:
    msg = f"Kafka not available ({reason}). {hint}"
    if _in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _kafka_answers(bootstrap: str, timeout: float = 10.0) -> bool:
    """True when a broker at ``bootstrap`` answers a Metadata request within ``timeout`` s."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    # log_level 0: no librdkafka "connection refused" noise while probing a stopped broker.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        return bool(admin.list_topics(timeout=timeout).brokers)
    except KafkaException:
        return False


def _wait_kafka(bootstrap: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _kafka_answers(bootstrap, timeout=min(5.0, max(0.5, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"Kafka at {bootstrap} not answering after {timeout:.0f} s")
        time.sleep(0.2)


def _kafka_sh(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KAFKA_SH), *args], capture_output=True, text=True, timeout=timeout
    )


class KafkaBroker:
    """A real broker a test may stop and start (see the ``kafka_broker`` fixture).

    ``bootstrap`` stays the same across ``stop()``/``start()``; ``start()`` returns once the
    broker answers a metadata request again. Both are idempotent.
    """

    def __init__(
        self,
        bootstrap: str,
        stop: Callable[[], None] | None = None,
        start: Callable[[], None] | None = None,
        kind: str = "external",
    ) -> None:
        self.bootstrap = bootstrap
        self.kind = kind  # "local" (kafka.sh), "container" (testcontainers) or "external" (env)
        self._stop, self._start = stop, start
        self.stopped = False

    @property
    def controllable(self) -> bool:
        return self._stop is not None and self._start is not None

    def stop(self) -> None:
        if self._stop is None:
            raise RuntimeError(f"cannot stop the {self.kind} Kafka broker at {self.bootstrap}")
        self.stopped = True
        _STOPPED_KAFKA.append(self)
        self._stop()

    def start(self, timeout: float = 120.0) -> None:
        if self._start is None:
            raise RuntimeError(f"cannot start the {self.kind} Kafka broker at {self.bootstrap}")
        self._start()
        _wait_kafka(self.bootstrap, timeout)
        self.stopped = False
        while self in _STOPPED_KAFKA:
            _STOPPED_KAFKA.remove(self)

    def __repr__(self) -> str:
        return f"KafkaBroker({self.bootstrap!r}, kind={self.kind!r})"


# Brokers a test stopped; restarted after that test even if it failed before start().
_STOPPED_KAFKA: list[KafkaBroker] = []


@pytest.fixture(autouse=True)
def _restart_stopped_kafka() -> Iterator[None]:
    yield
    for broker in list(_STOPPED_KAFKA):
        broker.start()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _container_broker() -> Iterator[KafkaBroker]:
    from testcontainers.community.kafka import KafkaContainer  # lazy: only needed with Docker

    # Pin the host port: the broker advertises host:port as it was at the first start, and a
    # stopped + started container would otherwise get a new random port (stale advertisement).
    # Limitation: with a remote DOCKER_HOST the port is chosen free here, not on that host.
    host_port = _free_port()
    container = (
        KafkaContainer(KAFKA_IMAGE)
        .with_kraft()
        .with_bind_ports(9093, host_port)
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_MIN_INSYNC_REPLICAS", "1")
    )
    with container as kafka:
        wrapped: Any = kafka.get_wrapped_container()  # docker SDK Container
        # Data survives stop/start: same container, same writable layer and volumes.
        yield KafkaBroker(
            kafka.get_bootstrap_server(),
            stop=lambda: wrapped.stop(timeout=30),
            start=wrapped.start,
            kind="container",
        )


def _local_broker() -> KafkaBroker:
    def up() -> None:
        # Generous: the first `up` on a new machine fetches the jars from Maven Central.
        proc = _kafka_sh("up", timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"`{KAFKA_SH} up` failed: {proc.stderr.strip()[-2000:]}")

    def down() -> None:
        proc = _kafka_sh("down", timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"`{KAFKA_SH} down` failed: {proc.stderr.strip()[-2000:]}")

    try:
        bootstrap = _kafka_sh("bootstrap", timeout=10).stdout.strip()
        if _kafka_sh("status", timeout=10).returncode != 0:
            up()
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        _kafka_unavailable(f"local broker could not be started: {exc}")
    return KafkaBroker(bootstrap, stop=down, start=up, kind="local")


@pytest.fixture(scope="session")
def _kafka(request: pytest.FixtureRequest) -> Iterator[KafkaBroker]:
    """The session's broker, resolved once (env -> testcontainers -> deploy/local/kafka.sh)."""
    _refuse_servers(request, "Kafka")
    if bootstrap := os.environ.get("OKR_TEST_KAFKA_BOOTSTRAP"):
        broker = KafkaBroker(bootstrap)
        if not _kafka_answers(bootstrap):
            _kafka_unavailable(f"OKR_TEST_KAFKA_BOOTSTRAP={bootstrap} does not answer")
        yield broker
        return

    if _docker_available():
        gen = _container_broker()
        try:
            broker = next(gen)
            if not _kafka_answers(broker.bootstrap):
                _kafka_unavailable(f"the {KAFKA_IMAGE} container at {broker.bootstrap} is silent")
            yield broker
        finally:
            gen.close()  # leaves the `with`: the container is removed
        return

    broker = _local_broker()
    if not _kafka_answers(broker.bootstrap):
        _kafka_unavailable(f"no Docker engine and no broker answers at {broker.bootstrap}")
    yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(_kafka: KafkaBroker) -> str:
    """``host:port`` of a real Kafka broker that answers metadata requests (session-wide)."""
    return _kafka.bootstrap


@pytest.fixture(scope="session")
def kafka_broker(_kafka: KafkaBroker) -> KafkaBroker:
    """The session's broker with ``.bootstrap``, ``.stop()`` and ``.start()`` (waits until it
    answers). A broker a test left stopped is started again after that test. Not available with
    OKR_TEST_KAFKA_BOOTSTRAP (an external broker cannot be stopped from here)."""
    if not _kafka.controllable:
        _kafka_unavailable(
            f"the broker at {_kafka.bootstrap} comes from OKR_TEST_KAFKA_BOOTSTRAP and cannot be "
            "stopped or started by the tests",
            hint="Unset OKR_TEST_KAFKA_BOOTSTRAP to use a container or deploy/local/kafka.sh.",
        )
    return _kafka


@pytest.fixture
def kafka_topic_prefix() -> str:
    """A unique topic-name prefix for one test, e.g. ``t1a2b3c4d.``; topics are not deleted."""
    return f"t{uuid.uuid4().hex[:8]}."
