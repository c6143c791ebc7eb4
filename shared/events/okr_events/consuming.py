"""The consumer runtime: exactly-once *effect* over at-least-once delivery.

A consuming context writes a handler (`EventHandler`): it gets one decoded event and a
transaction (`Tx`) on the context's own database. The runtime wraps each call in ONE
transaction that also

* records the position (topic, partition, next offset) as an eventsourcing `Tracking`
  (application_name ``"<topic>:<partition>"``, notification_id = offset + 1), and
* records the aggregate's version; an event whose aggregate version was already applied
  (a relay re-publishing after a crash, a redelivery) changes nothing.

Two transports feed the same handlers through `EventProcessor`:
`KafkaConsumerRunner` (a consumer group; seeks to the stored positions on assignment; poison
messages and handlers that keep failing go to ``<topic>.dlq``) and `InProcessRunner` (the
embedded default: follows the producing application's notification log, no Kafka).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
from eventsourcing import persistence as es_persistence
from eventsourcing.persistence import InfrastructureFactory, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import Environment
from opentelemetry import trace
from psycopg.sql import SQL, Identifier

from .codec import DecodeError, InboundEvent, decode

log = logging.getLogger(__name__)
tracer = trace.get_tracer("okr_events.consuming")


# ---- the handler side ---------------------------------------------------------------------------


class Tx(Protocol):
    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...


class EventHandler(Protocol):
    """What a consuming context provides. SQL is written with ``:name`` parameters and runs
    unchanged on SQLite and PostgreSQL (rewritten to ``%(name)s`` there)."""

    name: str
    create_statements: Sequence[str]

    def handle(self, event: InboundEvent, tx: Tx) -> None: ...


def position_name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


_PARAM = re.compile(r"(?<!:):(\w+)")
APPLIED_TABLE = """CREATE TABLE IF NOT EXISTS consumer_applied_versions (
    aggregate_id TEXT PRIMARY KEY, version INTEGER NOT NULL)"""
SELECT_APPLIED = "SELECT version FROM consumer_applied_versions WHERE aggregate_id = :aggregate_id"
DEAD_LETTERS_TABLE = """CREATE TABLE IF NOT EXISTS consumer_dead_letters (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    event_id TEXT, error TEXT NOT NULL, failed_at TEXT NOT NULL,
    PRIMARY KEY (topic, partition, "offset"))"""
INSERT_DEAD_LETTER = """INSERT INTO consumer_dead_letters
    (topic, partition, "offset", event_id, error, failed_at)
    VALUES (:topic, :partition, :offset, :event_id, :error, :failed_at)
    ON CONFLICT DO NOTHING"""
UPSERT_APPLIED = """INSERT INTO consumer_applied_versions (aggregate_id, version)
    VALUES (:aggregate_id, :version)
    ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version"""


def _is_query(statement: str) -> bool:
    """Whether a statement returns rows (the library's SQLite cursor has no `description`)."""
    head = statement.lstrip().split(None, 1)[0].upper()
    return head in ("SELECT", "WITH", "VALUES") or " RETURNING " in statement.upper()


class _Cursor:
    def __init__(self, cursor: Any, rewrite: Callable[[str], str]) -> None:
        self._cursor = cursor
        self._rewrite = rewrite

    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        self._cursor.execute(self._rewrite(statement), params or {})
        if not _is_query(statement):
            return []
        return list(self._cursor.fetchall())


class ConsumerStore(TrackingRecorder):
    """A consuming context's database: its handler's tables, its positions, applied versions."""

    def _tx(self) -> Any:
        raise NotImplementedError

    def setup(self, statements: Sequence[str]) -> None:
        with self._tx() as tx:
            for statement in [APPLIED_TABLE, DEAD_LETTERS_TABLE, *statements]:
                tx.execute(statement)

    def next_offset(self, topic: str, partition: int) -> int | None:
        """Where to resume reading a partition (None: never read)."""
        return self.max_tracking_id(position_name(topic, partition))

    def apply_once(self, event: InboundEvent, write: Callable[[Tx], None]) -> bool:
        """Run ``write`` for ``event`` unless its aggregate version was already applied; the
        writes, the applied version and the position commit together. True if applied."""
        tracking = Tracking(position_name(event.topic, event.partition), event.offset + 1)
        key = {"aggregate_id": str(event.aggregate_id)}
        with self._tx() as tx:
            rows = tx.execute(SELECT_APPLIED, key)
            applied = rows[0]["version"] if rows else None
            fresh = applied is None or event.aggregate_version > applied
            if fresh:
                write(tx)
                tx.execute(UPSERT_APPLIED, {**key, "version": event.aggregate_version})
            self._track(tx, tracking)
        return fresh

    def skip(self, topic: str, partition: int, offset: int) -> None:
        """Move past a message without applying it (it went to the dead-letter topic)."""
        self.insert_tracking(Tracking(position_name(topic, partition), offset + 1))

    def record_dead_letter(
        self, raw: RawMessage, event_id: str | None, error: BaseException
    ) -> None:
        """Park a message that was not applied (the processor then moves past it; a crash in
        between parks it again, harmlessly)."""
        row = {
            "topic": raw.topic,
            "partition": raw.partition,
            "offset": raw.offset,
            "event_id": event_id,
            "error": f"{type(error).__name__}: {error}"[:2000],
            "failed_at": datetime.now(UTC).isoformat(),
        }
        with self._tx() as tx:
            tx.execute(INSERT_DEAD_LETTER, row)

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.query(
            'SELECT topic, partition, "offset", event_id, error, failed_at '
            "FROM consumer_dead_letters ORDER BY failed_at"
        )
        return [dict(row) for row in rows]

    def query(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        with self._tx() as tx:
            return tx.execute(statement, params)

    def _track(self, tx: _Cursor, tracking: Tracking) -> None:
        self._insert_tracking(tx._cursor, tracking)


class SQLiteConsumerStore(SQLiteTrackingRecorder, ConsumerStore):
    @contextmanager
    def _tx(self) -> Iterator[_Cursor]:
        with self.datastore.transaction(commit=True) as cursor:
            yield _Cursor(cursor, lambda s: s)


class PostgresConsumerStore(PostgresTrackingRecorder, ConsumerStore):
    """Tables live in the datastore's schema (the consuming context's own)."""

    @contextmanager
    def _tx(self) -> Iterator[_Cursor]:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                SQL("SET LOCAL search_path TO {}").format(Identifier(self.datastore.schema))
            )
            yield _Cursor(cursor, lambda s: _PARAM.sub(r"%(\1)s", s))


def open_consumer_store(
    name: str, *, postgres_conninfo: str | None = None, schema: str = "", sqlite_path: str = ""
) -> ConsumerStore:
    """The consuming context's store: a PostgreSQL schema of its own, or a SQLite file."""
    if postgres_conninfo:
        params = psycopg.conninfo.conninfo_to_dict(postgres_conninfo)
        with psycopg.connect(postgres_conninfo, autocommit=True) as conn:
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
            "POSTGRES_PORT": str(params.get("port", 5432)),
            "POSTGRES_DBNAME": str(params.get("dbname", "")),
            "POSTGRES_USER": str(params.get("user", "")),
            "POSTGRES_PASSWORD": str(params.get("password", "")),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_POOL_SIZE": "4",
        }
        cls: type[ConsumerStore] = PostgresConsumerStore
    else:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": sqlite_path,
            "SQLITE_LOCK_TIMEOUT": "10",
        }
        cls = SQLiteConsumerStore
    store = InfrastructureFactory.construct(Environment(name, env)).tracking_recorder(cls)
    assert isinstance(store, ConsumerStore)
    return store


# ---- processing, shared by both transports ------------------------------------------------------

#: Errors that say the database is unreachable or busy, not that the event is bad.
TRANSIENT = (
    es_persistence.OperationalError,
    es_persistence.InterfaceError,
    psycopg.OperationalError,
    sqlite3.OperationalError,
)


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message as either transport received it, before decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


DeadLetter = Callable[[InboundEvent | None, RawMessage, BaseException], None]


class EventProcessor:
    """Applies one event through a handler with retries; gives up to the dead-letter sink."""

    def __init__(
        self,
        handler: EventHandler,
        store: ConsumerStore,
        *,
        dead_letter: DeadLetter,
        max_retries: int = 3,
        retry_backoff: float = 0.1,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.handler = handler
        self.store = store
        self.dead_letter = dead_letter
        self.stopping = stopping
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.applied = 0
        self.duplicates = 0
        self.dead_lettered = 0
        store.setup(handler.create_statements)

    def receive(self, raw: RawMessage) -> None:
        """Decode a message and apply it; an undecodable one is dead-lettered."""
        try:
            event = decode(
                topic=raw.topic,
                partition=raw.partition,
                offset=raw.offset,
                key=raw.key,
                value=raw.value,
                headers=raw.headers,
            )
        except DecodeError as exc:
            self.undecodable(raw, exc)
        else:
            self.process(event, raw)

    def process(self, event: InboundEvent, raw: RawMessage) -> None:
        with tracer.start_as_current_span(
            f"{event.topic} process",
            context=_trace_context(event),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": event.topic,
                "messaging.operation.type": "process",
                "messaging.consumer.group.name": self.handler.name,
                "messaging.kafka.offset": event.offset,
                "messaging.destination.partition.id": str(event.partition),
                "messaging.message.id": event.event_id,
                "cloudevents.event_type": event.type,
            },
        ) as span:
            attempt = 0
            while True:
                try:
                    fresh = self.store.apply_once(event, lambda tx: self.handler.handle(event, tx))
                except es_persistence.IntegrityError:
                    if (self.store.next_offset(raw.topic, raw.partition) or 0) > raw.offset:
                        # This offset is behind the stored position: already processed.
                        self.duplicates += 1
                        return
                    raise  # a handler's own constraint violation is a bug: stop loudly
                except TRANSIENT as error:
                    # The database is away, not the message at fault: wait, never dead-letter;
                    # give up only when the runner is asked to stop (the message stays unapplied).
                    if self.stopping():
                        raise
                    log.warning("%s: database unavailable (%s); retrying", self.handler.name, error)
                    time.sleep(min(5.0, self.retry_backoff * 2 ** min(attempt, 6)))
                    continue
                except Exception as error:
                    if attempt == self.max_retries:
                        span.record_exception(error)
                        log.error(
                            "%s gives up on %s (%s at %s:%s:%s) after %s attempts: %s",
                            self.handler.name,
                            event.event_id,
                            event.type,
                            event.topic,
                            event.partition,
                            event.offset,
                            attempt + 1,
                            error,
                        )
                        self.dead_letter(event, raw, error)
                        self.store.skip(raw.topic, raw.partition, raw.offset)
                        self.dead_lettered += 1
                        return
                    time.sleep(self.retry_backoff * 2**attempt)
                    attempt += 1
                else:
                    span.set_attribute("okr.duplicate", not fresh)
                    if fresh:
                        self.applied += 1
                    else:
                        self.duplicates += 1
                    return

    def undecodable(self, raw: RawMessage, error: BaseException) -> None:
        log.error(
            "%s: undecodable message at %s:%s:%s: %s",
            self.handler.name,
            raw.topic,
            raw.partition,
            raw.offset,
            error,
        )
        self.dead_letter(None, raw, error)
        self.store.skip(raw.topic, raw.partition, raw.offset)
        self.dead_lettered += 1


def _trace_context(event: InboundEvent) -> Any:
    from .tracing import context_from_headers  # import here: tracing imports eventsourcing

    return context_from_headers(list(event.headers.items()))


def error_headers(raw: RawMessage, error: BaseException, group: str) -> list[tuple[str, bytes]]:
    """Why a message is in the dead-letter topic, and where it came from."""
    return [
        ("dlq_error", str(error)[:2000].encode()),
        ("dlq_error_class", type(error).__name__.encode()),
        ("dlq_topic", raw.topic.encode()),
        ("dlq_partition", str(raw.partition).encode()),
        ("dlq_offset", str(raw.offset).encode()),
        ("dlq_consumer_group", group.encode()),
        ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
    ]


class StoppableRunner:
    """A runner whose loop runs in a thread of its own (used by services and tests)."""

    def run(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    _thread: threading.Thread | None = None
    store: ConsumerStore

    def start_thread(self, name: str) -> threading.Thread:
        self._thread = threading.Thread(target=self._run_in_thread, name=name, daemon=True)
        self._thread.start()
        return self._thread

    def _run_in_thread(self) -> None:
        # run() has logged the error and kept it in `error` for health checks and tests.
        with contextlib.suppress(Exception):
            self.run()

    def close(self, timeout: float = 10.0) -> None:
        """Stop, wait for the loop to end, then close the store's connections."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self.store.datastore.close()  # type: ignore[attr-defined]
