"""Commands from events (okr_events.commands) on SQLite and real PostgreSQL: the tally context
(tally_context.py) applies the counter context's Counted events as Tally.add commands.

What is proven: the new events, the positions and the applied inbound versions commit in one
transaction of the tally context's event store (a crash before the commit leaves nothing);
a redelivery (same offsets, or the same events at new offsets) changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from commands_kit import (
    TOPIC,
    counter_stream,
    event_id,
    message,
    numbered,
    processor_for,
    stored_count,
)
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from okr_events.command_store import PostgresCommandStore, SQLiteCommandStore
from tally_context import (
    applied_event_ids,
    domain_events,
    refusals,
    tally_contracts,  # noqa: F401 - a fixture
    tally_id,
    totals,
)

pytestmark = pytest.mark.usefixtures("tally_contracts")


# ---- events and positions, one transaction ---------------------------------------------------


def test_each_command_is_applied_once_with_its_position(open_tally: Any) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    batch = numbered(counter_stream(a, [5, 7]) + counter_stream(b, [1]))
    app = open_tally()
    processor, sink = processor_for(app)
    processor.receive_batch(batch)
    assert (processor.applied, processor.duplicates, sink.letters) == (5, 0, [])
    assert totals(app) == {a: 12, b: 1}
    counted = [raw for raw, contract in zip(batch, [0, 1, 1, 0, 1], strict=True) if contract]
    assert applied_event_ids(app) == [event_id(raw) for raw in counted]
    assert app.store.next_offset(TOPIC, 0) == 5
    assert app.store.applied_versions({str(a), str(b)}) == {str(a): 3, str(b): 2}
    # Two events of one tally in one batch: one TallyStarted, versions 1..3, no collision.
    assert [e.originator_version for e in domain_events(app) if e.originator_id == tally_id(a)] == [
        1,
        2,
        3,
    ]


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in the runtime catches it)."""


class _CrashOnce:
    """Mixed into a store: raise Crash inside the first transaction that records commands,
    once the events, positions and applied versions are written, before the commit."""

    armed = True

    @classmethod
    def crash(cls, kwargs: dict[str, Any]) -> None:
        if "positions" in kwargs and cls.armed:
            cls.armed = False
            raise Crash


class SQLiteCrashOnce(SQLiteCommandStore):
    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)  # all written
        _CrashOnce.crash(kwargs)
        return notification_ids


class PostgresCrashOnce(PostgresCommandStore):
    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Any:
        # Called once the server has run every insert of the transaction, before the commit.
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        _CrashOnce.crash(kwargs)
        return notification_ids


def test_a_crash_before_the_commit_leaves_nothing_half_applied(
    open_tally: Any, tally_env: dict[str, str]
) -> None:
    a = uuid.uuid4()
    batch = numbered(counter_stream(a, [5, -1, 7]))
    crashing = SQLiteCrashOnce if "SQLITE_DBNAME" in tally_env else PostgresCrashOnce
    _CrashOnce.armed = True
    app = open_tally(PROCESS_RECORDER_TOPIC=get_topic(crashing))
    assert isinstance(app.recorder, crashing)
    processor, _sink = processor_for(app)
    with pytest.raises(Crash):
        processor.receive_batch(batch)
    # Nothing of the transaction is there: no events, no position, no applied version.
    assert stored_count(app) == 0
    assert app.store.next_offset(TOPIC, 0) is None
    assert app.store.applied_versions({str(a)}) == {}

    restarted = open_tally()
    processor, sink = processor_for(restarted)
    processor.receive_batch(batch)
    assert (processor.applied, sink.letters) == (4, [])
    assert totals(restarted) == {a: 12}
    assert len(refusals(restarted)) == 1
    assert sorted(applied_event_ids(restarted)) == sorted(event_id(batch[i]) for i in (1, 3))


# ---- redelivery ----------------------------------------------------------------------------


def test_redelivery_at_the_same_or_other_offsets_changes_nothing(open_tally: Any) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    contracts = counter_stream(a, [2, -4, 3]) + counter_stream(b, [6])
    batch = numbered(contracts)
    app = open_tally()
    processor, _sink = processor_for(app)
    processor.receive_batch(batch)
    recorded = domain_events(app)
    assert len(refusals(app)) == 1

    processor.receive_batch(batch)  # the same offsets again (a consumer restarted)
    for raw in batch:  # and one by one (the single-event path)
        processor.receive(raw)
    republished = numbered(contracts, start=100)  # a relay re-publishing after a crash
    processor.receive_batch(republished)
    processor.receive(message(contracts[2], 200, partition=1))

    assert processor.applied == len(contracts)
    assert processor.duplicates == 3 * len(contracts) + 1
    assert domain_events(app) == recorded
    assert totals(app) == {a: 5, b: 6}
    # The positions still moved past what was read.
    assert (app.store.next_offset(TOPIC, 0), app.store.next_offset(TOPIC, 1)) == (106, 201)
