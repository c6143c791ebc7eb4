"""Commands from events (okr_events.commands) on SQLite and real PostgreSQL: the tally context
(tally_context.py) applies the counter context's Counted events as Tally.add commands.

What is proven: the new events, the positions and the applied inbound versions commit in one
transaction of the tally context's event store (a crash before the commit leaves nothing);
a redelivery (same offsets, or the same events at new offsets) changes nothing; a refusal
discards the event's changes and is recorded once, as an event of the tally context that its
relay's mapper publishes; an unexpected exception is retried and dead-lettered, never
recorded as a refusal; the embedded in-process transport drives the same handler."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from batch_events import wait_for
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import get_topic
from okr_events.codec import InboundEvent, decode, encode
from okr_events.command_store import PostgresCommandStore, SQLiteCommandStore
from okr_events.commands import CommandProcessor, UnitOfWork, UnsavedChanges
from okr_events.consuming import EventProcessor, RawMessage
from okr_events.in_process import InProcessRunner
from okr_events.refusals import Refusal, refusal_id
from tally_context import (  # noqa: F401 - tally_contracts is a fixture
    COUNTER_SOURCE,
    Counted,
    Counter,
    CounterApplication,
    CounterStarted,
    Tally,
    TallyApplication,
    TallyHandler,
    applied_event_ids,
    counter_to_contract,
    domain_events,
    postgres_env,
    refusals,
    sqlite_env,
    tally_contracts,
    tally_id,
    tally_to_contract,
    totals,
)

TOPIC = "okr.counter.events.v1"
pytestmark = pytest.mark.usefixtures("tally_contracts")


# ---- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def tally_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The tally context's event store: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return sqlite_env(str(tmp_path / "tally.sqlite3"))
    schema = request.getfixturevalue("postgres_schema")
    dsn = request.getfixturevalue("postgres_dsn")
    return postgres_env(psycopg.conninfo.conninfo_to_dict(dsn), schema)


@pytest.fixture
def open_tally(tally_env: dict[str, str]) -> Iterator[Any]:
    """Opens the tally context's application (as many times as a test restarts it)."""
    opened: list[TallyApplication] = []

    def open_(**env: str) -> TallyApplication:
        app = TallyApplication(tally_env | env)
        opened.append(app)
        return app

    yield open_
    for app in opened:
        app.close()


class Sink:
    """The dead-letter sink: what the runtime gave up on."""

    def __init__(self) -> None:
        self.letters: list[tuple[InboundEvent | None, RawMessage, BaseException]] = []

    def __call__(self, event: InboundEvent | None, raw: RawMessage, error: BaseException) -> None:
        self.letters.append((event, raw, error))


def processor_for(app: TallyApplication, handler: Any = None) -> tuple[EventProcessor, Sink]:
    sink = Sink()
    commands = CommandProcessor(handler or TallyHandler(), app)
    return EventProcessor(commands, commands.store, dead_letter=sink, retry_backoff=0.01), sink


def message(contract: Any, offset: int, partition: int = 0) -> RawMessage:
    encoded = encode(contract, topic=TOPIC, source=COUNTER_SOURCE)
    return RawMessage(TOPIC, partition, offset, encoded.key, encoded.value, encoded.headers)


def counter_stream(counter_id: uuid.UUID, amounts: Sequence[int]) -> list[Any]:
    """A counter's contracts: CounterStarted, then Counted for each amount."""
    at = datetime(2026, 10, 1, tzinfo=UTC)
    started = CounterStarted(
        aggregate_id=counter_id, aggregate_version=1, occurred_at=at, actor="m"
    )
    counts = [
        Counted(aggregate_id=counter_id, aggregate_version=v, occurred_at=at, actor="m", amount=a)
        for v, a in enumerate(amounts, start=2)
    ]
    return [started, *counts]


def numbered(contracts: Sequence[Any], start: int = 0, partition: int = 0) -> list[RawMessage]:
    return [message(c, start + i, partition) for i, c in enumerate(contracts)]


def decode_raw(raw: RawMessage) -> InboundEvent:
    return decode(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=raw.headers,
    )


def event_id(raw: RawMessage) -> str:
    return decode_raw(raw).event_id


def stored_count(app: Application[Any]) -> int:
    return app.recorder.max_notification_id() or 0


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


# ---- the embedded in-process transport ------------------------------------------------------


def test_in_process_transport_runs_the_same_handler_and_resumes(tmp_path: Path) -> None:
    counter_app = CounterApplication(sqlite_env(str(tmp_path / "counter.sqlite3")))
    counters = [Counter(actor="m") for _ in range(3)]
    amounts = {c.id: [3, -1, 4, 1, -5, 9] for c in counters}
    for counter in counters:
        for amount in amounts[counter.id]:
            counter.count(amount, "m")
    counter_app.save(*counters)

    def run_tally() -> tuple[InProcessRunner, CommandProcessor]:
        tally = TallyApplication(sqlite_env(str(tmp_path / "tally.sqlite3")))
        commands = CommandProcessor(TallyHandler(), tally)
        runner = InProcessRunner(
            commands,
            commands.store,
            counter_app,
            to_contract=counter_to_contract,
            topic=TOPIC,
            source=COUNTER_SOURCE,
        )
        runner.start_thread("tally")
        return runner, commands

    runner, commands = run_tally()
    wait_for(runner.caught_up, 10, "the in-process tally")
    expected = {c: sum(a for a in amounts[c] if a >= 0) for c in amounts}
    assert totals(commands.app) == expected
    assert len(refusals(commands.app)) == 6
    assert commands.store.next_offset(TOPIC, 0) == counter_app.recorder.max_notification_id()
    recorded = stored_count(commands.app)
    runner.close()

    # Restarted, it resumes from the position in the tally store: nothing is applied twice.
    runner, commands = run_tally()
    counters[0].count(10, "m")
    counter_app.save(counters[0])
    wait_for(runner.caught_up, 10, "the restarted tally")
    wait_for(lambda: runner.processor.applied == 1, 10, "the new count")
    assert stored_count(commands.app) == recorded + 1
    assert totals(commands.app)[counters[0].id] == expected[counters[0].id] + 10
    runner.close()
    counter_app.close()


def test_in_process_transport_dead_letters_a_bug_in_the_store(tmp_path: Path) -> None:
    counter_app = CounterApplication(sqlite_env(str(tmp_path / "counter.sqlite3")))
    counter = Counter(actor="m")
    for amount in (2, 13, 5):
        counter.count(amount, "m")
    counter_app.save(counter)
    tally = TallyApplication(sqlite_env(str(tmp_path / "tally.sqlite3")))
    commands = CommandProcessor(TallyHandler(bug_amount=13), tally)
    runner = InProcessRunner(
        commands,
        commands.store,
        counter_app,
        to_contract=counter_to_contract,
        topic=TOPIC,
        source=COUNTER_SOURCE,
        retry_backoff=0.01,
    )
    runner.start_thread("tally")
    wait_for(runner.caught_up, 10, "the in-process tally")
    [letter] = commands.store.dead_letters()
    assert letter["offset"] == 2 and letter["error"].startswith("RuntimeError: bug")
    assert refusals(tally) == []
    assert totals(tally) == {counter.id: 7}
    runner.close()
    counter_app.close()
