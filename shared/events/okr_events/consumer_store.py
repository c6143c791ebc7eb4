"""A consuming context's own database: its handler's tables, its positions, applied versions.

Every apply is ONE transaction holding the handler's writes, the applied aggregate versions
and the positions (eventsourcing `Tracking` records, application_name ``"<topic>:<partition>"``,
notification_id = offset + 1), so a crash never separates an effect from its position. A batch
is one such transaction for many events: the round trips per transaction are paid once.

Readers use `ConsumerStore.transaction()` (a `Tx`) or `query`; a request that must read its
own writes waits with `wait_for_position` until the position it saw is applied
(docs/read-models.md).
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import psycopg
from eventsourcing.persistence import InfrastructureFactory, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import Environment
from psycopg.sql import SQL, Identifier

from .positions import PositionWatch
from .transaction import MAX_IN, TRANSIENT, CursorTx, Dialect, Tx, chunks, in_clause

if TYPE_CHECKING:
    from .messages import RawMessage

__all__ = [  # the transaction's names too, where readers and handlers have always found them
    "MAX_IN",
    "TRANSIENT",
    "Applicable",
    "ConsumerStore",
    "Dialect",
    "PositionWatch",
    "PostgresConsumerStore",
    "SQLiteConsumerStore",
    "Tx",
    "chunks",
    "in_clause",
    "open_consumer_store",
    "position_name",
]


class Applicable(Protocol):
    """What the runtime needs of an event to apply it exactly once: where it was read (a
    decoded `InboundEvent` from a topic, or a context's own `RecordedEvent` from its log)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def aggregate_id(self) -> uuid.UUID: ...
    @property
    def aggregate_version(self) -> int: ...


A = TypeVar("A", bound=Applicable)


def position_name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


APPLIED_TABLE = """CREATE TABLE IF NOT EXISTS consumer_applied_versions (
    aggregate_id TEXT PRIMARY KEY, version INTEGER NOT NULL)"""
SELECT_APPLIED = (
    "SELECT aggregate_id, version FROM consumer_applied_versions WHERE aggregate_id IN "
)
DEAD_LETTERS_TABLE = """CREATE TABLE IF NOT EXISTS consumer_dead_letters (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
    event_id TEXT, error TEXT NOT NULL, failed_at TEXT NOT NULL,
    PRIMARY KEY (topic, partition, "offset"))"""
INSERT_DEAD_LETTER = """INSERT INTO consumer_dead_letters
    (topic, partition, "offset", event_id, error, failed_at)
    VALUES (:topic, :partition, :offset, :event_id, :error, :failed_at)
    ON CONFLICT DO NOTHING"""
APPLIED_CONFLICT = "ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version"


class ConsumerStore(TrackingRecorder):
    """A consuming context's database: its handler's tables, its positions, applied versions."""

    _watch: PositionWatch

    def transaction(self) -> AbstractContextManager[Tx]:
        """One transaction on the store, committed when the block ends (rolled back if it
        raises); the `Tx` runs the SQL; its `after_commit` callbacks run after the commit."""
        return self._transaction()

    def _transaction(self) -> AbstractContextManager[CursorTx]:
        raise NotImplementedError

    def _init_watch(self) -> None:
        self._watch = PositionWatch(self.max_tracking_id)

    def setup(self, statements: Sequence[str]) -> None:
        with self._transaction() as tx:
            for statement in [APPLIED_TABLE, DEAD_LETTERS_TABLE, *statements]:
                tx.execute(statement)

    def next_offset(self, topic: str, partition: int) -> int | None:
        """Where to resume reading a partition (None: never read)."""
        name = position_name(topic, partition)
        stored = self.max_tracking_id(name)
        if stored is not None:
            self._watch.advanced(name, stored)  # e.g. applied by another process sharing it
        return stored

    def wait_for_position(
        self,
        topic: str,
        partition: int,
        next_offset: int,
        timeout: float,
        give_up: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Read-your-writes: block until the partition's stored position (its next offset)
        reaches ``next_offset``; False after ``timeout`` seconds or once ``give_up()``."""
        return self._watch.wait_for(position_name(topic, partition), next_offset, timeout, give_up)

    def forget_positions(self) -> None:
        """After deleting stored positions (a rebuild): waits re-read them from the database."""
        self._watch.forget()

    def wake_waiters(self) -> None:
        """Let waiters re-check their ``give_up`` now (the runner feeding the store stopped)."""
        self._watch.wake()

    def apply_once(
        self, event: A, write: Callable[[Tx], None], *, track_versions: bool = True
    ) -> bool:
        """Run ``write`` for ``event`` unless its aggregate version was already applied; the
        writes, the applied version and the position commit together. True if applied."""
        applied = self.apply_batch(
            [event], lambda _events, tx: write(tx), track_versions=track_versions
        )
        return applied == 1

    def apply_batch(
        self,
        events: Sequence[A],
        write: Callable[[Sequence[A], Tx], None],
        *,
        track_versions: bool = True,
    ) -> int:
        """Apply a batch in ONE transaction; returns how many events were fresh.

        Fresh = its offset is not behind the stored position of its partition, and its
        aggregate version is above the applied one (and above any earlier event of the same
        aggregate in this batch). ``write(fresh, tx)`` gets the fresh events in order; then
        the applied versions (one row per aggregate) and one `Tracking` per partition (its
        highest offset + 1) are recorded in the same transaction. Events given must be in
        offset order per partition; a batch may mix partitions and topics.

        ``track_versions=False`` is for a context's own log, where each event has one
        position and no relay re-publishes it: the positions alone apply it once, and the
        applied versions' query and upsert are saved.

        A single event behind the stored position raises IntegrityError (the library's
        tracking check; nothing is written), exactly as `apply_once` always did.
        """
        if not events:
            return 0
        ends: dict[tuple[str, int], int] = {}  # partition -> offset + 1 of its last event
        for event in events:
            tp = (event.topic, event.partition)
            ends[tp] = max(ends.get(tp, 0), event.offset + 1)
        # str(UUID) is not free: only for the applied versions' keys.
        keys = [str(event.aggregate_id) if track_versions else "" for event in events]
        with self._transaction() as tx:
            if len(events) == 1:
                # One event (the live path, latency first): no query; the tracking insert
                # refuses it if it is behind the position (IntegrityError, as always).
                stored = dict.fromkeys(ends, 0)
            else:
                stored = {
                    tp: self._max_tracking_id(position_name(*tp), tx._cursor) or 0 for tp in ends
                }
            versions = self._applied_versions(tx, set(keys)) if track_versions else {}
            fresh: list[A] = []
            changed: dict[str, int] = {}
            for event, key in zip(events, keys, strict=True):
                if event.offset < stored[(event.topic, event.partition)]:
                    continue  # behind the position: processed (or dead-lettered) before
                if not track_versions:
                    fresh.append(event)
                    continue
                applied = versions.get(key)
                if applied is None or event.aggregate_version > applied:
                    fresh.append(event)
                    versions[key] = changed[key] = event.aggregate_version
            if fresh:
                write(fresh, tx)
            if fresh and track_versions:
                rows = [{"aggregate_id": k, "version": v} for k, v in changed.items()]
                tx.insert_many(
                    "consumer_applied_versions",
                    ("aggregate_id", "version"),
                    rows,
                    on_conflict=APPLIED_CONFLICT,
                )
            for tp, end in ends.items():
                if end > stored[tp]:  # tracking ids must increase: the library checks
                    self._track(tx, Tracking(position_name(*tp), end))
            tx.after_commit(lambda: self._advanced(ends))
        return len(fresh)

    def _advanced(self, ends: Mapping[tuple[str, int], int]) -> None:
        for (topic, partition), end in ends.items():
            self._watch.advanced(position_name(topic, partition), end)

    def _applied_versions(self, tx: CursorTx, aggregate_ids: set[str]) -> dict[str, int]:
        """Applied versions of the given aggregates: one query per MAX_IN of them."""
        versions: dict[str, int] = {}
        for chunk in chunks(sorted(aggregate_ids)):
            clause, params = in_clause(chunk, "a")
            for row in tx.execute(SELECT_APPLIED + clause, params):
                versions[row["aggregate_id"]] = row["version"]
        return versions

    def skip(self, topic: str, partition: int, offset: int) -> None:
        """Move past a message without applying it (it went to the dead-letter topic)."""
        self.insert_tracking(Tracking(position_name(topic, partition), offset + 1))
        self._watch.advanced(position_name(topic, partition), offset + 1)

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
        with self._transaction() as tx:
            tx.execute(INSERT_DEAD_LETTER, row)

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.query(
            'SELECT topic, partition, "offset", event_id, error, failed_at '
            "FROM consumer_dead_letters ORDER BY failed_at"
        )
        return [dict(row) for row in rows]

    def query(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """One statement in a transaction of its own; its rows (dicts by column)."""
        with self._transaction() as tx:
            return tx.execute(statement, params)

    if TYPE_CHECKING:  # provided by the library's recorders the concrete stores mix in below

        def _insert_tracking(self, c: Any, tracking: Tracking) -> None: ...

    def _track(self, tx: CursorTx, tracking: Tracking) -> None:
        self._insert_tracking(tx._cursor, tracking)

    def _max_tracking_id(self, application_name: str, cursor: Any) -> int | None:
        raise NotImplementedError  # the library's recorders below provide it


class SQLiteConsumerStore(SQLiteTrackingRecorder, ConsumerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_watch()

    @contextmanager
    def _transaction(self) -> Iterator[CursorTx]:
        with self.datastore.transaction(commit=True) as cursor:
            tx = CursorTx(cursor, "sqlite")
            yield tx
        tx.committed()


class PostgresConsumerStore(PostgresTrackingRecorder, ConsumerStore):
    """Tables live in the datastore's schema (the consuming context's own).

    Each of the store's connections gets that schema as its search path once, in its first
    committed transaction (the pool is the store's alone, and the library's own statements
    name their schema), rather than a ``SET LOCAL`` round trip per transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_watch()
        self._in_schema: weakref.WeakSet[Any] = weakref.WeakSet()  # connections set up
        self._in_schema_lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[CursorTx]:
        with self.datastore.transaction(commit=True) as cursor:
            connection = cursor.connection
            with self._in_schema_lock:
                set_up = connection in self._in_schema
            if not set_up:  # a session setting: it outlives this transaction once committed
                cursor.execute(
                    SQL("SET search_path TO {}").format(Identifier(self.datastore.schema))
                )
            tx = CursorTx(cursor, "postgres")
            yield tx
        if not set_up:  # not before the commit: a rollback undoes the SET too
            with self._in_schema_lock:
                self._in_schema.add(connection)
        tx.committed()


def open_consumer_store(
    name: str,
    *,
    postgres_conninfo: str | None = None,
    schema: str = "",
    sqlite_path: str = "",
    pool_size: int = 4,
) -> ConsumerStore:
    """The consuming context's store: a PostgreSQL schema of its own, or a SQLite file.
    On PostgreSQL it opens at most 2 x ``pool_size`` connections (the pool and as many
    overflow connections; the library's default overflow of 10 let a few stores on one
    machine exhaust PostgreSQL's 100 slots)."""
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
            "POSTGRES_POOL_SIZE": str(pool_size),
            "POSTGRES_MAX_OVERFLOW": str(pool_size),
            # How long a transaction waits for a pooled connection (the library's default: 30 s):
            # during an outage a request answers 503 after 5 s rather than hang.
            "POSTGRES_CONNECT_TIMEOUT": "5",
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
