"""Refusals and failures of commands from events (okr_events.commands) on SQLite and real
PostgreSQL: a refusal discards the event's changes and is recorded once, as an event of the
tally context that its relay's mapper publishes; an unexpected exception is retried and
dead-lettered, never recorded as a refusal; an outage is waited out; a collision runs the
commands again."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from commands_kit import (
    TOPIC,
    counter_stream,
    decode_raw,
    event_id,
    numbered,
    processor_for,
)
from eventsourcing.persistence import IntegrityError
from okr_events.codec import InboundEvent
from okr_events.commands import CommandProcessor, UnitOfWork, UnsavedChanges
from okr_events.refusals import Refusal, refusal_id
from tally_context import (
    COUNTER_SOURCE,
    Counted,
    CounterApplication,
    Tally,
    TallyApplication,
    TallyHandler,
    applied_event_ids,
    domain_events,
    refusals,
    sqlite_env,
    tally_contracts,  # noqa: F401 - a fixture
    tally_id,
    tally_to_contract,
    totals,
)

pytestmark = pytest.mark.usefixtures("tally_contracts")


# ---- refusals ------------------------------------------------------------------------------


def test_a_refusal_discards_the_events_changes_and_is_recorded_once(open_tally: Any) -> None:
    a = uuid.uuid4()
    # The first count is refused: the tally its handler started is not recorded either.
    batch = numbered(counter_stream(a, [-3, 4]))
    app = open_tally()
    processor, sink = processor_for(app)
    processor.receive_batch(batch)
    assert (processor.applied, sink.letters) == (3, [])
    tally_events = [type(e).__name__ for e in domain_events(app) if e.originator_id == tally_id(a)]
    assert tally_events == ["TallyStarted", "TallyAdded"]
    assert totals(app) == {a: 4}

    [refused] = refusals(app)
    assert refused.originator_id == refusal_id("tally-counts", a, 2)
    assert (refused.inbound_aggregate_id, refused.inbound_aggregate_version) == (a, 2)
    assert refused.inbound_event_id == event_id(batch[1])
    assert refused.inbound_event_type == "okr.counter.Counted.v1"
    assert refused.inbound_source == COUNTER_SOURCE
    assert (refused.code, refused.field) == ("invalid_input", "amount")
    assert refused.detail == "a tally only counts up, not by -3"
    assert (refused.consumer, refused.actor) == ("tally-counts", "m")

    # An event of the tally context like the others: its relay's mapper publishes it.
    published = tally_to_contract(refused)
    assert published.cloudevents_type() == "okr.tally.CommandRefused.v1"
    assert published.inbound_event_id == refused.inbound_event_id

    # Redelivered, it is not refused again; and its id cannot be recorded twice anyway.
    processor.receive_batch(numbered(counter_stream(a, [-3, 4]), start=10))
    assert len(refusals(app)) == 1
    again = Refusal.of("tally-counts", decode_raw(batch[1]), ValueError("twice"))
    assert again.id == refused.originator_id
    with pytest.raises(IntegrityError):
        app.save(again)


# ---- failures that are not refusals ---------------------------------------------------------


class CountsBugs(TallyHandler):
    def __init__(self) -> None:
        super().__init__(bug_amount=13)
        self.attempts = 0

    def handle(self, event: InboundEvent, work: UnitOfWork) -> None:
        if isinstance(event.contract, Counted) and event.contract.amount == 13:
            self.attempts += 1
        super().handle(event, work)


def test_an_unexpected_exception_is_retried_then_dead_lettered_not_refused(
    open_tally: Any,
) -> None:
    a = uuid.uuid4()
    batch = numbered(counter_stream(a, [1, 13, 2]))
    app = open_tally()
    bugs = CountsBugs()
    processor, sink = processor_for(app, bugs)
    processor.receive_batch(batch)
    assert bugs.attempts > processor.max_retries  # retried alone before it was given up
    assert [(raw.offset, type(error).__name__) for _e, raw, error in sink.letters] == [
        (2, "RuntimeError")
    ]
    assert refusals(app) == []
    assert totals(app) == {a: 3}
    assert app.store.next_offset(TOPIC, 0) == 4  # moved past it (the dead-letter topic has it)


def test_a_change_not_saved_is_a_bug_not_a_refusal(open_tally: Any) -> None:
    a = uuid.uuid4()

    class ForgetsTheSave(TallyHandler):
        def handle(self, event: InboundEvent, work: UnitOfWork) -> None:
            if isinstance(event.contract, Counted) and event.contract.amount == 9:
                work.get(tally_id(a), Tally).add(9, event.event_id, "m")  # no work.save
                return
            super().handle(event, work)

    app = open_tally()
    processor, sink = processor_for(app, ForgetsTheSave())
    processor.receive_batch(numbered(counter_stream(a, [1, 9, 2])))
    assert [type(error) for _e, _raw, error in sink.letters] == [UnsavedChanges]
    assert "Tally" in str(sink.letters[0][2])
    assert refusals(app) == []
    assert totals(app) == {a: 3}


class DatabaseBusyTwice(TallyHandler):
    def __init__(self) -> None:
        super().__init__()
        self.outages = 2

    def handle(self, event: InboundEvent, work: UnitOfWork) -> None:
        if self.outages:
            self.outages -= 1
            raise sqlite3.OperationalError("database is locked")
        super().handle(event, work)


def test_a_database_outage_is_waited_out_not_refused(open_tally: Any) -> None:
    a = uuid.uuid4()
    app = open_tally()
    processor, sink = processor_for(app, DatabaseBusyTwice())
    processor.receive_batch(numbered(counter_stream(a, [4, 5])))
    assert (processor.applied, sink.letters, refusals(app)) == (3, [], [])
    assert totals(app) == {a: 9}


class RacesAnotherWriter(TallyHandler):
    """The first time it runs, another writer (another process of the context, e.g. an HTTP
    command) changes the same tally before this batch is recorded."""

    def __init__(self, other: TallyApplication) -> None:
        super().__init__()
        self.other = other
        self.raced = False
        self.calls = 0

    def handle(self, event: InboundEvent, work: UnitOfWork) -> None:
        self.calls += 1
        super().handle(event, work)
        if not self.raced and isinstance(event.contract, Counted):
            self.raced = True
            tally = self.other.repository.get(tally_id(event.contract.aggregate_id))
            tally.add(100, "an http command", "admin")
            self.other.save(tally)


def test_a_collision_with_another_writer_runs_the_commands_again(open_tally: Any) -> None:
    a = uuid.uuid4()
    app = open_tally()
    first = open_tally()
    processor, sink = processor_for(first)
    processor.receive_batch(numbered(counter_stream(a, [1])))  # the tally exists

    racer = RacesAnotherWriter(open_tally())
    later = numbered(counter_stream(a, [1, 2, 3]))[2:]
    processor, sink = processor_for(app, racer)
    processor.receive_batch(later)
    assert (processor.applied, sink.letters) == (2, [])
    assert racer.calls == 4  # the batch ran twice: the first attempt collided
    assert totals(app) == {a: 1 + 100 + 2 + 3}
    # Each inbound event once, the other writer's change kept.
    ids = applied_event_ids(app)
    assert ids[1:] == ["an http command", event_id(later[0]), event_id(later[1])]


def test_the_application_must_run_commands(tmp_path: Path) -> None:
    plain = CounterApplication(sqlite_env(str(tmp_path / "plain.sqlite3")))
    with pytest.raises(TypeError, match="CommandApplication"):
        CommandProcessor(TallyHandler(), plain)
    plain.close()
