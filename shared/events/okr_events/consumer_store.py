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

import logging
import re
import sqlite3
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import psycopg
from eventsourcing import persistence as es_persistence
from eventsourcing.persistence import InfrastructureFactory, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import Environment
from psycopg.sql import SQL, Identifier

if TYPE_CHECKING:
    from .consuming import RawMessage

Dialect = Literal["sqlite", "postgres"]
log = logging.getLogger(__name__)

#: Errors that say the database is unreachable or busy, not that the event is bad.
TRANSIENT = (
    es_persistence.OperationalError,
    es_persistence.InterfaceError,
    psycopg.OperationalError,
    sqlite3.OperationalError,
)


class Tx(Protocol):
    """The handler's transaction. SQL uses ``:name`` parameters and runs unchanged on SQLite
    and PostgreSQL (rewritten to ``%(name)s`` there); `dialect` is for the rare statement that
    must differ."""

    dialect: Dialect

    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...

    def executemany(self, statement: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        *,
        on_conflict: str = "",
    ) -> None: ...

    def update_many(
        self,
        table: str,
        keys: Sequence[str],
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
    ) -> None: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...


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


class PositionWatch:
    """The positions this process knows are applied, and the requests waiting for one.

    Commits made in this process notify the condition at once (no polling); a position applied
    by another process sharing the store is seen when a waiter re-reads the database, every
    `recheck` seconds while it waits."""

    recheck = 0.2

    def __init__(self, read: Callable[[str], int | None]) -> None:
        self._read = read
        self._known: dict[str, int] = {}
        self._changed = threading.Condition()

    def advanced(self, name: str, position: int) -> None:
        with self._changed:
            if position > self._known.get(name, 0):
                self._known[name] = position
                self._changed.notify_all()

    def forget(self) -> None:
        """Forget every known position (they were deleted: re-read them when asked)."""
        with self._changed:
            self._known.clear()

    def wake(self) -> None:
        """Let every waiter look again (e.g. the runner feeding the store stopped)."""
        with self._changed:
            self._changed.notify_all()

    def wait_for(
        self,
        name: str,
        position: int,
        timeout: float,
        give_up: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Block until position ``name`` is at least ``position``: True; False when
        ``timeout`` seconds pass, or as soon as ``give_up()`` says so."""
        deadline = time.monotonic() + timeout
        if name not in self._known:
            self._reread(name)
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._known.get(name, 0) >= position or give_up(),
                    timeout=max(0.0, min(self.recheck, deadline - time.monotonic())),
                )
                if self._known.get(name, 0) >= position:
                    return True
                if give_up() or time.monotonic() >= deadline:
                    return False
            self._reread(name)  # outside the lock: a slow database never blocks a commit

    def _reread(self, name: str) -> None:
        try:
            self.advanced(name, self._read(name) or 0)
        except TRANSIENT as error:  # the database is away: the wait times out, honestly
            log.debug("position %s unreadable: %s", name, error)


#: Most values in one ``IN (...)`` list (SQLite allows 32,766 variables; smaller lists keep
#: statements cacheable and plans cheap).
MAX_IN = 500


def in_clause(values: Sequence[Any], name: str = "v") -> tuple[str, dict[str, Any]]:
    """``"(:v0, :v1, ...)"`` and its parameters, for ``WHERE x IN <clause>`` on both dialects.
    At most MAX_IN values: split longer lists with `chunks`."""
    if not 0 < len(values) <= MAX_IN:
        raise ValueError(f"an IN list takes 1 to {MAX_IN} values, not {len(values)}")
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


def chunks(values: Sequence[Any], size: int = MAX_IN) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_PARAM = re.compile(r"(?<!:):(\w+)")
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

#: From this many rows on, insert_many and update_many go through COPY on PostgreSQL (below,
#: one pipelined statement per row costs less than the staging table's extra statements).
COPY_FROM_ROWS = 64


@lru_cache(maxsize=1024)
def _to_pyformat(statement: str) -> str:
    # Cached: a batch runs the same few statements thousands of times.
    return _PARAM.sub(r"%(\1)s", statement)


def _is_query(statement: str) -> bool:
    """Whether a statement returns rows (the library's SQLite cursor has no `description`)."""
    head = statement.lstrip().split(None, 1)[0].upper()
    return head in ("SELECT", "WITH", "VALUES") or " RETURNING " in statement.upper()


class _Cursor:
    """`Tx` over a library cursor (SQLite's wrapper or psycopg's)."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect: Dialect = dialect
        self._rewrite: Callable[[str], str] = _to_pyformat if dialect == "postgres" else str
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this transaction has committed (never if it rolls back):
        e.g. to wake a worker that reads what the transaction wrote."""
        self._after_commit.append(callback)

    def committed(self) -> None:
        for callback in self._after_commit:
            try:
                callback()
            except Exception:  # the commit stands: a failing callback must not undo the apply
                log.exception("after-commit callback %r failed", callback)
        self._after_commit.clear()

    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        self._cursor.execute(self._rewrite(statement), params or {})
        if not _is_query(statement):
            return []
        return list(self._cursor.fetchall())

    def executemany(self, statement: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """One statement for many rows: psycopg 3 sends them in pipeline mode (one round trip
        for all), SQLite steps one prepared statement."""
        if not rows:
            return
        if len(rows) == 1:  # a pipeline's extra sync costs more than it saves for one row
            self._cursor.execute(self._rewrite(statement), rows[0])
            return
        self._cursor.executemany(self._rewrite(statement), rows)

    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        *,
        on_conflict: str = "",
    ) -> None:
        """``INSERT INTO table (columns) ... on_conflict`` for every row (dicts by column).
        Table and column names are the code's own, never input."""
        if not rows:
            return
        if self.dialect == "postgres" and len(rows) >= COPY_FROM_ROWS:
            stage = self._staged(table, columns, rows)
            self._cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"SELECT {', '.join(columns)} FROM {stage} {on_conflict}"
            )
            return
        values = ", ".join(f":{column}" for column in columns)
        self.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) {on_conflict}", rows
        )

    def update_many(
        self,
        table: str,
        keys: Sequence[str],
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """``UPDATE table SET columns WHERE keys`` for every row (dicts by column). A row
        whose keys match nothing changes nothing; keys should be unique among the rows."""
        if not rows:
            return
        if self.dialect == "postgres" and len(rows) >= COPY_FROM_ROWS:
            stage = self._staged(table, [*keys, *columns], rows)
            assignments = ", ".join(f"{column} = s.{column}" for column in columns)
            matches = " AND ".join(f"t.{key} = s.{key}" for key in keys)
            self._cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM {stage} AS s WHERE {matches}"
            )
            return
        assignments = ", ".join(f"{column} = :{column}" for column in columns)
        matches = " AND ".join(f"{key} = :{key}" for key in keys)
        self.executemany(f"UPDATE {table} SET {assignments} WHERE {matches}", rows)

    def _staged(self, table: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
        """COPY the rows into a temporary table shaped like ``table``'s ``columns``, emptied
        at commit; its name. COPY sends every row in one stream, parsed by the server in
        bulk: measured about twice as fast as pipelined INSERTs for thousands of rows."""
        stage = f"stage_{table}_{zlib.crc32(','.join(columns).encode()):08x}"
        names = ", ".join(columns)
        self._cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
            f"SELECT {names} FROM {table} WITH NO DATA"
        )
        with self._cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[column] for column in columns])
        return stage


class ConsumerStore(TrackingRecorder):
    """A consuming context's database: its handler's tables, its positions, applied versions."""

    _watch: PositionWatch

    def transaction(self) -> AbstractContextManager[Tx]:
        """One transaction on the store, committed when the block ends (rolled back if it
        raises); the `Tx` runs the SQL; its `after_commit` callbacks run after the commit."""
        return self._transaction()

    def _transaction(self) -> AbstractContextManager[_Cursor]:
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

    def apply_once(self, event: A, write: Callable[[Tx], None]) -> bool:
        """Run ``write`` for ``event`` unless its aggregate version was already applied; the
        writes, the applied version and the position commit together. True if applied."""
        return self.apply_batch([event], lambda _events, tx: write(tx)) == 1

    def apply_batch(self, events: Sequence[A], write: Callable[[Sequence[A], Tx], None]) -> int:
        """Apply a batch in ONE transaction; returns how many events were fresh.

        Fresh = its offset is not behind the stored position of its partition, and its
        aggregate version is above the applied one (and above any earlier event of the same
        aggregate in this batch). ``write(fresh, tx)`` gets the fresh events in order; then
        the applied versions (one row per aggregate) and one `Tracking` per partition (its
        highest offset + 1) are recorded in the same transaction. Events given must be in
        offset order per partition; a batch may mix partitions and topics.

        A single event behind the stored position raises IntegrityError (the library's
        tracking check; nothing is written), exactly as `apply_once` always did.
        """
        if not events:
            return 0
        ends: dict[tuple[str, int], int] = {}  # partition -> offset + 1 of its last event
        for event in events:
            tp = (event.topic, event.partition)
            ends[tp] = max(ends.get(tp, 0), event.offset + 1)
        keys = [str(event.aggregate_id) for event in events]  # str(UUID) is not free
        with self._transaction() as tx:
            if len(events) == 1:
                # One event (the live path, latency first): no query; the tracking insert
                # refuses it if it is behind the position (IntegrityError, as always).
                stored = dict.fromkeys(ends, 0)
            else:
                stored = {
                    tp: self._max_tracking_id(position_name(*tp), tx._cursor) or 0 for tp in ends
                }
            versions = self._applied_versions(tx, set(keys))
            fresh: list[A] = []
            changed: dict[str, int] = {}
            for event, key in zip(events, keys, strict=True):
                if event.offset < stored[(event.topic, event.partition)]:
                    continue  # behind the position: processed (or dead-lettered) before
                applied = versions.get(key)
                if applied is None or event.aggregate_version > applied:
                    fresh.append(event)
                    versions[key] = changed[key] = event.aggregate_version
            if fresh:
                write(fresh, tx)
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

    def _applied_versions(self, tx: _Cursor, aggregate_ids: set[str]) -> dict[str, int]:
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

    def _track(self, tx: _Cursor, tracking: Tracking) -> None:
        self._insert_tracking(tx._cursor, tracking)

    def _max_tracking_id(self, application_name: str, cursor: Any) -> int | None:
        raise NotImplementedError  # the library's recorders below provide it


class SQLiteConsumerStore(SQLiteTrackingRecorder, ConsumerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_watch()

    @contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        with self.datastore.transaction(commit=True) as cursor:
            tx = _Cursor(cursor, "sqlite")
            yield tx
        tx.committed()


class PostgresConsumerStore(PostgresTrackingRecorder, ConsumerStore):
    """Tables live in the datastore's schema (the consuming context's own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_watch()

    @contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                SQL("SET LOCAL search_path TO {}").format(Identifier(self.datastore.schema))
            )
            tx = _Cursor(cursor, "postgres")
            yield tx
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
