"""End-to-end fixtures: the goals service on real PostgreSQL, its relay, and the ledger consumer
on real Kafka. Each test gets its own schemas and topic, so tests never see each other's data.

Pieces run either in this process (threads: fast, and their spans reach the in-memory exporter)
or as real processes (`okr-goals-relay`, `okr-ledger`, the goals API and the notifier under
uvicorn) when a test kills or restarts something under them. `own_postgres` is a PostgreSQL
cluster of one test's own (deploy/local/pg.sh on a temporary folder and a free port), which
the test may stop and start without disturbing any other test."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from fastapi.testclient import TestClient
from okr_events.consuming import ConsumerStore, open_consumer_store
from okr_events.kafka import KafkaSettings, ensure_topics
from okr_events.kafka_consumer import KafkaConsumerRunner
from okr_events.ledger import Ledger
from okr_events.relay import OutboxRelay
from okr_goals.main import create_app
from okr_goals.relay import build_relay
from okr_goals.settings import GoalsSettings
from okr_testkit.goals import Org, build_org, postgres_settings
from okr_testkit.notifier import WEBHOOK_SECRET_KEY
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / "data" / "log" / "e2e"
PG_SH = REPO / "deploy" / "local" / "pg.sh"

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Stack:
    """One test's backbone: schemas, topic, settings, and the pieces it started."""

    dsn: str
    bootstrap: str
    topic: str
    goals_schema: str
    ledger_schema: str
    goals: GoalsSettings
    kafka: KafkaSettings
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    # ---- environment of child processes -----------------------------------------------------

    def env(self) -> dict[str, str]:
        g = self.goals
        return os.environ | {
            "GOALS_PERSISTENCE": "postgres",
            "GOALS_POSTGRES_HOST": g.postgres_host,
            "GOALS_POSTGRES_PORT": str(g.postgres_port),
            "GOALS_POSTGRES_DBNAME": g.postgres_dbname,
            "GOALS_POSTGRES_USER": g.postgres_user,
            "GOALS_POSTGRES_PASSWORD": g.postgres_password.get_secret_value(),
            "GOALS_POSTGRES_SCHEMA": self.goals_schema,
            "GOALS_JWT_SECRET": (g.jwt_secret.get_secret_value() if g.jwt_secret else ""),
            "GOALS_EVENTS_TOPIC": self.topic,
            "OKR_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "OKR_KAFKA_TOPIC_PARTITIONS": "3",
            "OKR_LEDGER_POSTGRES_CONNINFO": self.conninfo,
            "OKR_LEDGER_POSTGRES_SCHEMA": self.ledger_schema,
            "OKR_LEDGER_TOPICS": f'["{self.topic}"]',
            "OKR_LEDGER_GROUP_ID": f"ledger-{self.ledger_schema}",
            "OKR_LEDGER_HTTP_PORT": "0",
            "OKR_TRACING_EXPORTER": "none",
        }

    @property
    def conninfo(self) -> str:
        return psycopg.conninfo.make_conninfo(self.dsn)

    # ---- pieces -----------------------------------------------------------------------------

    def goals_client(self) -> TestClient:
        client = TestClient(create_app(self.goals))
        client.__enter__()
        self._cleanups.append(lambda: client.__exit__(None, None, None))
        return client

    def org(self) -> Org:
        return build_org(self.goals_client(), self.goals)

    def relay_thread(self) -> OutboxRelay:
        relay = build_relay(self.goals, self.kafka)
        thread = threading.Thread(target=relay.run, name="test-relay", daemon=True)
        thread.start()

        def stop() -> None:
            relay.stop()
            thread.join(10)
            relay.close()

        self._cleanups.append(stop)
        return relay

    def ledger_store(self) -> ConsumerStore:
        return open_consumer_store(
            "ledger", postgres_conninfo=self.conninfo, schema=self.ledger_schema
        )

    def ledger_thread(self, handler: Any = None, **kwargs: Any) -> KafkaConsumerRunner:
        runner = KafkaConsumerRunner(
            handler or Ledger(),
            self.ledger_store(),
            topics=[self.topic],
            settings=self.kafka,
            group_id=f"ledger-{self.ledger_schema}",
            **kwargs,
        )
        runner.start_thread("test-ledger")
        self._cleanups.append(runner.close)
        return runner

    def notifier_env(self, schema: str) -> dict[str, str]:
        """The environment of a notifier process on this stack's database and topic."""
        g = self.goals
        return {
            "NOTIFIER_PERSISTENCE": "postgres",
            "NOTIFIER_POSTGRES_HOST": g.postgres_host,
            "NOTIFIER_POSTGRES_PORT": str(g.postgres_port),
            "NOTIFIER_POSTGRES_DBNAME": g.postgres_dbname,
            "NOTIFIER_POSTGRES_USER": g.postgres_user,
            "NOTIFIER_POSTGRES_PASSWORD": g.postgres_password.get_secret_value(),
            "NOTIFIER_POSTGRES_SCHEMA": schema,
            "NOTIFIER_POSTGRES_POOL_SIZE": "2",
            "NOTIFIER_JWT_SECRET": g.jwt_secret.get_secret_value() if g.jwt_secret else "",
            "NOTIFIER_WEBHOOK_SECRET_KEYS": WEBHOOK_SECRET_KEY,
            "NOTIFIER_TOPICS": f'["{self.topic}"]',
            "NOTIFIER_GROUP_ID": f"notifier-{schema}",
            "NOTIFIER_SCHEDULER_ENABLED": "false",
        }

    def serve(
        self, name: str, factory: str, port: int, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """An HTTP service as its own process (uvicorn --factory), as the local stack runs it."""
        return self.process(
            name,
            "uvicorn",
            "--factory",
            factory,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
            env=env,
        )

    def process(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A real process (relay, ledger, a service), logging to data/log/e2e/<topic>.<name>.log;
        ``env`` adds to (or overrides) the stack's environment."""
        LOGS.mkdir(parents=True, exist_ok=True)
        log = open(LOGS / f"{self.topic}.{name}.log", "ab")  # noqa: SIM115 - closed at cleanup
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            env=self.env() | (env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def stop() -> None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()

        self._cleanups.append(stop)
        return proc

    # ---- observations -----------------------------------------------------------------------

    def ledger(self, statement: str, **params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.dsn, row_factory=psycopg.rows.dict_row) as conn:
            conn.execute(
                sql.SQL("SET search_path TO {}").format(sql.Identifier(self.ledger_schema))
            )
            try:
                return conn.execute(statement, params).fetchall()
            except psycopg.errors.UndefinedTable:
                return []

    def ledger_count(self) -> int:
        rows = self.ledger("SELECT count(*) AS n FROM ledger_events")
        return int(rows[0]["n"]) if rows else 0

    def stored_events(self) -> list[tuple[str, int]]:
        """(aggregate id, version) of every event in the goals store, in log order."""
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT originator_id, originator_version FROM {}.goals_events "
                    "ORDER BY notification_id"
                ).format(sql.Identifier(self.goals_schema))
            ).fetchall()
        return [(str(a), int(v)) for a, v in rows]

    def read_topic(self, topic: str | None = None, timeout: float = 10.0) -> list[Any]:
        """Every message on the topic, from offset 0, partition by partition."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        topic = topic or self.topic
        try:
            metadata = consumer.list_topics(topic, timeout=10)
            partitions = sorted(metadata.topics[topic].partitions)
            messages: list[Any] = []
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, p, low)])
                got: list[Any] = []
                deadline = time.monotonic() + timeout
                while len(got) < high - low and time.monotonic() < deadline:
                    for m in consumer.consume(500, timeout=0.5):
                        if m.error() is None:
                            got.append(m)
                messages.extend(got)
            return messages
        finally:
            consumer.close()

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _make_stack(dsn: str, bootstrap: str, prefix: str) -> Stack:
    suffix = uuid.uuid4().hex[:10]
    goals_schema, ledger_schema = f"e2e_goals_{suffix}", f"e2e_ledger_{suffix}"
    topic = f"{prefix}okr.goals.events.v1"
    goals = postgres_settings(dsn, goals_schema).model_copy(update={"events_topic": topic})
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_partitions=3)
    ensure_topics(kafka, [topic])
    return Stack(dsn, bootstrap, topic, goals_schema, ledger_schema, goals, kafka)


@pytest.fixture
def stack(postgres_dsn: str, kafka_bootstrap: str, kafka_topic_prefix: str) -> Iterator[Stack]:
    s = _make_stack(postgres_dsn, kafka_bootstrap, kafka_topic_prefix)
    try:
        yield s
    finally:
        s.close()
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            for schema in (s.goals_schema, s.ledger_schema):
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


class PostgresServer:
    """A PostgreSQL cluster only one test uses: deploy/local/pg.sh on a folder and port of its
    own, so stopping and starting it disturbs nothing else."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.dsn = f"postgresql://okr:okr@127.0.0.1:{port}/okr"
        self._env = os.environ | {
            "OKR_PG_DATA": str(folder / "data"),
            "OKR_PG_LOG": str(folder / "postgres.log"),
            "OKR_PG_PORT": str(port),
            "OKR_PG_HOST": "127.0.0.1",
            "OKR_PG_USER": "okr",
            "OKR_PG_PASSWORD": "okr",
            "OKR_PG_DB": "okr",
        }

    def _pg(self, command: str) -> None:
        proc = subprocess.run(
            ["bash", str(PG_SH), command],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"`pg.sh {command}` failed: {proc.stderr.strip()[-2000:]}")

    def start(self) -> None:
        """Start it (the first time: initdb) and wait until it accepts connections."""
        self._pg("up")

    def stop(self) -> None:
        """Fast shutdown: sessions are cut, nothing committed is lost."""
        self._pg("down")


@contextlib.contextmanager
def own_postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster (initdb in a temporary folder, a free port), removed after."""
    # Searchable by all: run as root, pg.sh runs the server as the `postgres` OS user.
    folder = Path(tempfile.mkdtemp(prefix="okr-e2e-pg-"))
    folder.chmod(0o755)
    server = PostgresServer(folder, free_port())
    try:
        try:
            server.start()
        except (OSError, subprocess.SubprocessError, RuntimeError) as error:
            message = f"a PostgreSQL cluster of the test's own could not be started: {error}"
            if os.environ.get("CI", "").lower() in ("true", "1"):
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        yield server
    finally:
        if (folder / "data" / "PG_VERSION").exists():
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def stack_on(server: PostgresServer, bootstrap: str) -> Iterator[Stack]:
    """A Stack on a throwaway cluster (its schemas go with the cluster: nothing to drop)."""
    s = _make_stack(server.dsn, bootstrap, f"t{uuid.uuid4().hex[:8]}.")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of the test's own, which it may stop and start."""
    with own_postgres_server() as server:
        yield server


@pytest.fixture
def process_stack(own_postgres: PostgresServer, kafka_bootstrap: str) -> Iterator[Stack]:
    """A Stack on the test's own PostgreSQL."""
    with stack_on(own_postgres, kafka_bootstrap) as s:
        yield s
