"""A context's own event store as the consumer runtime's store, for commands from events.

The consumer runtime (`EventProcessor`, both transports) applies events through a
`ConsumerStore`: it asks it where each partition resumes and gives it batches to apply, each
in ONE transaction with the positions. A `CommandStore` is the consuming context's
event-sourced application's recorder doing that job, as the eventsourcing library's process
applications do (`ProcessingEvent` + `ProcessRecorder.insert_events(..., tracking=...)`):

* positions are `Tracking` records in the application's own tracking table
  (``"<topic>:<partition>"``, next offset), so a Kafka consumer seeks to them on assignment;
* the new domain events, the positions of every partition in the batch and the applied
  inbound versions (aggregate id -> version, the dedupe of redeliveries) are written by one
  ``insert_events`` call: one transaction of the application's database.

The library records one tracking with its events; a batch may span partitions, so this
recorder also takes ``positions`` (several) and ``applied_versions`` in ``insert_events``.
The commands themselves run in okr_events.commands (`CommandProcessor`).
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, ProgrammingError, StoredEvent, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from .codec import InboundEvent
from .consumer_store import (
    ConsumerStore,
    PostgresConsumerStore,
    SQLiteConsumerStore,
    Tx,
    chunks,
    in_clause,
    position_name,
)
from .sqlite_subscription import SubscribableSQLiteApplicationRecorder

if TYPE_CHECKING:
    from eventsourcing.application import Application

    from .messages import RawMessage

log = logging.getLogger(__name__)

#: Attempts at a batch whose new events collide with events another writer recorded first
#: (e.g. an HTTP command on the same aggregate): each attempt reloads and runs it again.
MAX_CONFLICTS = 10


class CommandConflict(RuntimeError):
    """A batch kept colliding with other writers; the runtime retries it, then dead-letters."""


class CommandTx:
    """What the store hands the handler for one batch: the application, and the domain events
    its commands caused so far, with the aggregates as they are after them (a later event of
    the batch sees an earlier one's changes before anything is committed)."""

    def __init__(self, app: Application[uuid.UUID]) -> None:
        self.app = app
        self.events: list[Any] = []
        self.aggregates: dict[uuid.UUID, Aggregate] = {}

    @classmethod
    def of(cls, tx: object) -> CommandTx:
        if not isinstance(tx, cls):
            raise TypeError(
                f"a command processor runs on its application's CommandStore, not on {tx!r}"
            )
        return tx

    def latest(self, aggregate_id: uuid.UUID) -> Any:
        """A private copy of an aggregate as it is after this batch's commands so far (the
        library's AggregateNotFoundError if it does not exist)."""
        if aggregate_id in self.aggregates:
            return copy.deepcopy(self.aggregates[aggregate_id])
        return self.app.repository.get(aggregate_id)

    def collect(self, aggregates: Sequence[Aggregate]) -> None:
        """Add the pending events of aggregates whose commands succeeded."""
        for aggregate in aggregates:
            self.events.extend(aggregate.collect_events())
            self.aggregates[aggregate.id] = aggregate

    def record(self, positions: Sequence[Tracking], applied: Sequence[dict[str, Any]]) -> None:
        """Record the events with the positions and applied versions, in one transaction,
        the way the library's process applications record a processed event."""
        processing = ProcessingEvent[uuid.UUID]()
        processing.collect_events(*self.events, positions=positions, applied_versions=applied)
        processing.aggregates.update(self.aggregates)
        app = self.app
        recordings = app._record(processing)
        app._take_snapshots(processing)
        app._notify(recordings)


class CommandStore(ConsumerStore):
    """An application's recorder that is also its consumer runtime's store (see module doc).
    `CommandApplication` constructs it and sets `application`."""

    application: Application[uuid.UUID] | None = None
    applied_table = "applied_versions"
    dead_letters_table = "dead_letters"

    # ---- tables ---------------------------------------------------------------------------

    def setup(self, statements: Sequence[str]) -> None:
        """The applied versions and dead letters, beside the events (names of their own, so
        an SQL consumer store in the same schema never shares them)."""
        with self.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {self.applied_table} ("
                "aggregate_id TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {self.dead_letters_table} ("
                'topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL, '
                "event_id TEXT, error TEXT NOT NULL, failed_at TEXT NOT NULL, "
                'PRIMARY KEY (topic, partition, "offset"))'
            )
            for statement in statements:
                tx.execute(statement)

    def record_dead_letter(
        self, raw: RawMessage, event_id: str | None, error: BaseException
    ) -> None:
        row = {
            "topic": raw.topic,
            "partition": raw.partition,
            "offset": raw.offset,
            "event_id": event_id,
            "error": f"{type(error).__name__}: {error}"[:2000],
            "failed_at": datetime.now(UTC).isoformat(),
        }
        with self.transaction() as tx:
            tx.execute(
                f"INSERT INTO {self.dead_letters_table} "
                '(topic, partition, "offset", event_id, error, failed_at) '
                "VALUES (:topic, :partition, :offset, :event_id, :error, :failed_at) "
                "ON CONFLICT DO NOTHING",
                row,
            )

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.query(
            'SELECT topic, partition, "offset", event_id, error, failed_at '
            f"FROM {self.dead_letters_table} ORDER BY failed_at"
        )
        return [dict(row) for row in rows]

    def applied_versions(self, aggregate_ids: set[str]) -> dict[str, int]:
        """The applied version of each given inbound aggregate that has one."""
        versions: dict[str, int] = {}
        for chunk in chunks(sorted(aggregate_ids)):
            clause, params = in_clause(chunk, "a")
            statement = (
                f"SELECT aggregate_id, version FROM {self.applied_table} "
                f"WHERE aggregate_id IN {clause}"
            )
            for row in self.query(statement, params):
                versions[row["aggregate_id"]] = row["version"]
        return versions

    # ---- applying -------------------------------------------------------------------------

    def apply_batch(  # type: ignore[override]  # applies InboundEvents only, versions always
        self,
        events: Sequence[InboundEvent],
        write: Callable[[Sequence[InboundEvent], Tx], None],
        *,
        track_versions: bool = True,
    ) -> int:
        """Run ``write`` (the command processor) on the fresh events and record what it
        caused with the positions, in one transaction; returns how many were fresh.

        Fresh as for every consumer store: not behind its partition's position, and above the
        applied version of its aggregate (and of any earlier event of it in the batch). When
        the new events collide with another writer's (an aggregate changed meanwhile, or
        another consumer moved a position), the batch is read and run again."""
        if not events:
            return 0
        app = self.application
        if app is None:
            raise ProgrammingError("a CommandStore records for an application: none is set")
        ends: dict[tuple[str, int], int] = {}
        for event in events:
            tp = (event.topic, event.partition)
            ends[tp] = max(ends.get(tp, 0), event.offset + 1)
        keys = [str(event.aggregate_id) for event in events]
        for attempt in range(1, MAX_CONFLICTS + 1):
            stored = {tp: self.max_tracking_id(position_name(*tp)) or 0 for tp in ends}
            versions = self.applied_versions(set(keys))
            fresh: list[InboundEvent] = []
            changed: dict[str, int] = {}
            for event, key in zip(events, keys, strict=True):
                if event.offset < stored[(event.topic, event.partition)]:
                    continue  # behind the position: processed (or dead-lettered) before
                applied = versions.get(key)
                if applied is None or event.aggregate_version > applied:
                    fresh.append(event)
                    versions[key] = changed[key] = event.aggregate_version
            positions = [
                Tracking(position_name(*tp), end) for tp, end in ends.items() if end > stored[tp]
            ]
            if not positions:
                return 0  # every event is behind the positions
            tx = CommandTx(app)
            if fresh:
                # The runtime's Write names the SQL consumers' Tx; a command processor's
                # handle() takes the CommandTx this store opens instead (CommandTx.of checks).
                write(fresh, cast(Tx, tx))
            applied_rows = [{"aggregate_id": k, "version": v} for k, v in changed.items()]
            try:
                tx.record(positions, applied_rows)
            except IntegrityError as error:
                if attempt == MAX_CONFLICTS:
                    raise CommandConflict(
                        f"{len(fresh)} event(s) still collide after {attempt} attempts: {error}"
                    ) from error
                log.info("commands collided with another writer (%s); running them again", error)
                continue
            return len(fresh)
        raise AssertionError("unreachable")  # the loop returns or raises

    # ---- recording (inside the library's insert_events transaction) -----------------------

    def _record_inbound(self, cursor: Any, **kwargs: Any) -> None:
        for tracking in kwargs.get("positions") or ():
            self._insert_tracking(cursor, tracking)
        rows = kwargs.get("applied_versions")
        if rows:
            self._upsert_applied(cursor, rows)

    def _upsert_applied(self, cursor: Any, rows: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError


class PostgresCommandStore(PostgresProcessRecorder, CommandStore, PostgresConsumerStore):
    """Events ``<name>_events``, positions ``<name>_tracking``, applied inbound versions
    ``<name>_applied_versions``, dead letters ``<name>_dead_letters`` in the schema."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        if datastore.enable_db_functions:
            # The library's insert function skips _insert_events: positions would be lost.
            raise ProgrammingError("a CommandStore needs POSTGRES_ENABLE_DB_FUNCTIONS off")
        super().__init__(
            datastore, events_table_name=events_table_name, tracking_table_name=tracking_table_name
        )
        prefix = tracking_table_name.removesuffix("_tracking")
        self.applied_table = f"{prefix}_applied_versions"
        self.dead_letters_table = f"{prefix}_dead_letters"
        self._upsert_applied_statement = SQL(
            "INSERT INTO {}.{} (aggregate_id, version) VALUES (%(aggregate_id)s, %(version)s) "
            "ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version"
        ).format(Identifier(datastore.schema), Identifier(self.applied_table))

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._record_inbound(curs, **kwargs)
        super()._insert_events(curs, stored_events, **kwargs)

    def _upsert_applied(self, cursor: Any, rows: Sequence[dict[str, Any]]) -> None:
        cursor.executemany(self._upsert_applied_statement, rows)


class SQLiteCommandStore(
    SQLiteProcessRecorder, SubscribableSQLiteApplicationRecorder, CommandStore, SQLiteConsumerStore
):
    """Events ``stored_events``, positions ``tracking``, applied inbound versions and dead
    letters beside them in the application's database file; subscribers in this process are
    woken at each commit (the in-process relay and runners follow it)."""

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        self._record_inbound(c, **kwargs)
        return notification_ids

    def _upsert_applied(self, cursor: Any, rows: Sequence[dict[str, Any]]) -> None:
        cursor.executemany(
            f"INSERT INTO {self.applied_table} (aggregate_id, version) "
            "VALUES (:aggregate_id, :version) "
            "ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version",
            rows,
        )
