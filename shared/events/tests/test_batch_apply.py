"""The batched consumer path, on SQLite and on real PostgreSQL: a batch is one transaction that
applies each event exactly once (duplicates inside a batch, across batches and whole redelivered
batches change nothing), a failing event is dead-lettered alone, and an undecodable message in
the middle keeps every position in order."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from batch_events import Recording, decoded, ledger_rows, numbered, poison, raw, streams
from eventsourcing.persistence import IntegrityError
from okr_events.codec import InboundEvent
from okr_events.consuming import ConsumerStore, EventProcessor, PostgresConsumerStore, Tx
from okr_events.ledger import Ledger, stream_digest
from okr_events.tracing import add_span_exporter, trace_headers, tracer
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EXPORTER = InMemorySpanExporter()
add_span_exporter(EXPORTER)


class FailsOn(Recording):
    """A handler with a bug: it cannot apply one particular event, alone or in a batch."""

    def __init__(self, aggregate_id: uuid.UUID, version: int) -> None:
        super().__init__()
        self.bad = (str(aggregate_id), version)
        self.alone = 0  # attempts at the bad event on its own

    def _check(self, event: InboundEvent) -> None:
        if (str(event.aggregate_id), event.aggregate_version) == self.bad:
            raise RuntimeError("cannot apply this one")

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        if (str(event.aggregate_id), event.aggregate_version) == self.bad:
            self.alone += 1
        self._check(event)
        super().handle(event, tx)

    def handle_batch(self, events: Sequence[InboundEvent], tx: Tx) -> None:
        for event in events:
            self._check(event)
        super().handle_batch(events, tx)


def processor(
    store: ConsumerStore, handler: Any = None
) -> tuple[EventProcessor, list[tuple[InboundEvent | None, int, str]]]:
    """A processor, and the dead letters it gives up on: (event, offset, error)."""
    dead: list[tuple[InboundEvent | None, int, str]] = []
    p = EventProcessor(
        handler or Ledger(),
        store,
        dead_letter=lambda event, message, error: dead.append((event, message.offset, str(error))),
        max_retries=2,
        retry_backoff=0.001,
    )
    return p, dead


def versions(store: ConsumerStore) -> dict[str, list[int]]:
    result: dict[str, list[int]] = {}
    for row in ledger_rows(store):
        result.setdefault(row["aggregate_id"], []).append(row["aggregate_version"])
    return result


def test_duplicates_inside_a_batch_are_applied_once(store: ConsumerStore) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    pairs = [(a, 1), (a, 2), (b, 1), (a, 2), (a, 3), (b, 1), (b, 2), (a, 1)]
    handler = Recording()
    p, dead = processor(store, handler)

    p.receive_batch(numbered(pairs))

    assert (p.applied, p.duplicates, p.dead_lettered, dead) == (5, 3, 0, [])
    # One call, with the fresh events in order; an aggregate's version only ever increases.
    assert handler.batches == [[(str(a), 1), (str(a), 2), (str(b), 1), (str(a), 3), (str(b), 2)]]
    assert handler.singles == []
    assert versions(store) == {str(a): [1, 2, 3], str(b): [1, 2]}
    assert [r["offset"] for r in ledger_rows(store)] == [0, 1, 2, 4, 6]
    assert store.next_offset("t", 0) == len(pairs)
    # The chain is the one a per-event ledger computes over the same events.
    expected = {
        str(x): stream_digest([(e.type, e.contract.model_dump_json()) for e in evs])
        for x, evs in (
            (a, [decoded(raw(a, v, 0)) for v in (1, 2, 3)]),
            (b, [decoded(raw(b, v, 0)) for v in (1, 2)]),
        )
    }
    assert streams(store) == {str(a): (3, 3, expected[str(a)]), str(b): (2, 2, expected[str(b)])}


def test_duplicates_across_batches_are_applied_once(store: ConsumerStore) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    p, _dead = processor(store)
    p.receive_batch([raw(a, 1, 0), raw(a, 2, 1)])
    # A relay re-publishing after a crash: the same events again at new offsets, then new ones.
    p.receive_batch([raw(a, 1, 2), raw(a, 2, 3), raw(a, 3, 4), raw(b, 1, 5)])

    assert (p.applied, p.duplicates) == (4, 2)
    assert versions(store) == {str(a): [1, 2, 3], str(b): [1]}
    assert streams(store)[str(a)][:2] == (3, 3)
    assert store.next_offset("t", 0) == 6


def test_a_redelivered_batch_changes_nothing(store: ConsumerStore) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    batch = numbered([(a, 1), (b, 1), (a, 2), (b, 2), (b, 3)])
    p, _dead = processor(store)
    p.receive_batch(batch)
    before = (ledger_rows(store), streams(store), store.next_offset("t", 0))

    p.receive_batch(batch)  # redelivered at the same offsets (behind the stored position)
    republished = [raw(m, v, 10 + i) for i, (m, v) in enumerate([(a, 1), (b, 1), (a, 2)])]
    p.receive_batch(republished)  # and re-published at new offsets

    assert (p.applied, p.duplicates) == (5, 5 + 3)
    after = (ledger_rows(store), streams(store), store.next_offset("t", 0))
    assert after[:2] == before[:2]
    assert after[2] == 13  # only the position moved, past the re-published messages


def test_one_failing_event_is_dead_lettered_alone_and_the_rest_applied(
    store: ConsumerStore,
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    pairs = [(a, 1), (b, 1), (a, 2), (b, 2), (a, 3), (b, 3), (a, 4), (b, 4), (a, 5), (b, 5)]
    handler = FailsOn(b, 3)
    p, dead = processor(store, handler)

    p.receive_batch(numbered(pairs))

    assert [(str(e.aggregate_id), e.aggregate_version, o, err) for e, o, err in dead] == [
        (str(b), 3, 5, "cannot apply this one")
    ]
    assert (p.applied, p.duplicates, p.dead_lettered) == (9, 0, 1)
    assert versions(store) == {str(a): [1, 2, 3, 4, 5], str(b): [1, 2, 4, 5]}
    assert store.next_offset("t", 0) == len(pairs)
    # Alone, it had the per-event path's retries (max_retries=2: 3 attempts).
    assert handler.alone == 3
    # The rest went in batches: halves of halves around the failing event, not one by one.
    assert len(handler.singles) < 4


def test_an_undecodable_message_in_the_middle_is_dead_lettered_in_order(
    store: ConsumerStore,
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    handler = Recording()
    positions_when_dead_lettered: list[int | None] = []
    dead: list[tuple[InboundEvent | None, int]] = []

    def dead_letter(event: InboundEvent | None, message: Any, error: BaseException) -> None:
        positions_when_dead_lettered.append(store.next_offset("t", 0))
        dead.append((event, message.offset))

    p = EventProcessor(handler, store, dead_letter=dead_letter)
    p.receive_batch([raw(a, 1, 0), raw(a, 2, 1), poison(2), raw(a, 3, 3), raw(b, 1, 4)])

    assert dead == [(None, 2)]
    assert positions_when_dead_lettered == [2]  # what came before it was applied first
    assert handler.batches == [[(str(a), 1), (str(a), 2)], [(str(a), 3), (str(b), 1)]]
    assert (p.applied, p.dead_lettered) == (4, 1)
    assert store.next_offset("t", 0) == 5

    p.receive_batch([poison(2)])  # redelivered: behind the position, not dead-lettered again
    assert dead == [(None, 2)]
    assert p.duplicates == 1


class Refuses(Ledger):
    """Overrides only `handle` (like the e2e tests' handlers): batches must not bypass it."""

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        if event.aggregate_version == 2:
            raise ValueError("no second versions")
        super().handle(event, tx)


class PerEvent:
    """A handler without handle_batch."""

    name = "per-event"
    create_statements = ("CREATE TABLE IF NOT EXISTS seen (aggregate_id TEXT, version INTEGER)",)

    def __init__(self) -> None:
        self.calls = 0

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        self.calls += 1
        tx.execute(
            "INSERT INTO seen VALUES (:a, :v)",
            {"a": str(event.aggregate_id), "v": event.aggregate_version},
        )


def test_handlers_without_handle_batch_or_overriding_handle_get_each_event(
    store: ConsumerStore,
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    batch = numbered([(a, 1), (b, 1), (a, 2), (b, 2)])
    per_event = PerEvent()
    p, dead = processor(store, per_event)
    p.receive_batch(batch)
    assert (per_event.calls, p.applied) == (4, 4)
    assert len(store.query("SELECT * FROM seen")) == 4

    c, d = uuid.uuid4(), uuid.uuid4()
    p, dead = processor(store, Refuses())
    p.receive_batch(numbered([(c, 1), (d, 1), (c, 2), (d, 2)], topic="u"))
    assert sorted(e.aggregate_version for e, _o, _err in dead if e) == [2, 2]
    assert p.applied == 2


def test_more_aggregates_than_one_in_list_takes(store: ConsumerStore) -> None:
    aggregates = [uuid.uuid4() for _ in range(1_200)]
    p, _dead = processor(store)
    p.receive_batch(numbered([(x, 1) for x in aggregates] + [(x, 2) for x in aggregates[:700]]))
    assert p.applied == 1_900
    again = [raw(x, 1, 1_900 + i) for i, x in enumerate(aggregates)]
    p.receive_batch(again)
    assert (p.applied, p.duplicates) == (1_900, 1_200)
    assert len(ledger_rows(store)) == 1_900


def test_one_position_per_partition_with_its_highest_offset(store: ConsumerStore) -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    batch = [
        raw(a, 1, 0, topic="t1", partition=0),
        raw(b, 1, 0, topic="t1", partition=1),
        raw(a, 2, 1, topic="t1", partition=0),
        raw(c, 1, 5, topic="t2", partition=0),
        raw(b, 2, 1, topic="t1", partition=1),
        raw(a, 3, 2, topic="t1", partition=0),
    ]
    p, _dead = processor(store)
    p.receive_batch(batch)
    assert p.applied == 6
    assert [store.next_offset(*tp) for tp in (("t1", 0), ("t1", 1), ("t2", 0))] == [3, 2, 6]


def test_events_behind_the_stored_position_are_never_applied(store: ConsumerStore) -> None:
    """An event dead-lettered earlier (its version never recorded) stays dead when a batch
    overlapping the position is delivered again."""
    a = uuid.uuid4()
    p, dead = processor(store, FailsOn(a, 2))
    p.receive_batch(numbered([(a, 1), (a, 2), (a, 3)]))
    assert [o for _e, o, _err in dead] == [1]

    healthy, _ = processor(store, Recording())
    healthy.receive_batch(numbered([(a, 1), (a, 2), (a, 3), (a, 4)]))
    assert (healthy.applied, healthy.duplicates) == (1, 3)
    assert versions(store) == {str(a): [1, 3, 4]}


def test_without_version_tracking_the_position_alone_applies_each_event_once(
    store: ConsumerStore,
) -> None:
    """A context's own log (`ReadModelRunner`): every event past the position is applied, in
    order, whatever other aggregates' versions are; redelivered ones change nothing."""
    a, b = uuid.uuid4(), uuid.uuid4()
    handler = Recording()
    p, dead = processor(store, handler)
    p.track_versions = False
    log = numbered([(a, 1), (a, 2), (a, 3), (b, 1), (a, 4), (b, 2)])

    p.receive_batch(log[:4])
    p.receive_batch(log[2:])  # overlaps the stored position by two
    p.receive(log[5])  # a single event behind the position

    assert (p.applied, p.duplicates, dead) == (6, 3, [])
    assert versions(store) == {str(a): [1, 2, 3, 4], str(b): [1, 2]}
    assert store.query("SELECT COUNT(*) AS n FROM consumer_applied_versions")[0]["n"] == 0
    assert store.next_offset("t", 0) == 6


class Dialects:
    """Uses executemany, and a statement of its dialect."""

    name = "dialects"
    create_statements = ("CREATE TABLE IF NOT EXISTS notes (aggregate_id TEXT, version INTEGER)",)

    def __init__(self) -> None:
        self.dialects: list[str] = []

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        self.handle_batch([event], tx)

    def handle_batch(self, events: Sequence[InboundEvent], tx: Tx) -> None:
        self.dialects.append(tx.dialect)
        version = (
            "SELECT version() AS v" if tx.dialect == "postgres" else "SELECT sqlite_version() AS v"
        )
        assert tx.execute(version)[0]["v"]
        tx.executemany(
            "INSERT INTO notes VALUES (:aggregate_id, :version)",
            [{"aggregate_id": str(e.aggregate_id), "version": e.aggregate_version} for e in events],
        )


def test_tx_executemany_and_dialect(store: ConsumerStore) -> None:
    a = uuid.uuid4()
    handler = Dialects()
    p, _dead = processor(store, handler)
    p.receive_batch(numbered([(a, v) for v in range(1, 6)]))
    expected = "postgres" if isinstance(store, PostgresConsumerStore) else "sqlite"
    assert handler.dialects == [expected]
    rows = store.query("SELECT aggregate_id, version FROM notes ORDER BY version")
    assert [(r["aggregate_id"], r["version"]) for r in rows] == [(str(a), v) for v in range(1, 6)]


class DatabaseBusy(Ledger):
    """The database refuses twice (as when PostgreSQL restarts), then works."""

    def __init__(self) -> None:
        self.refusals = 2

    def handle_batch(self, events: Sequence[InboundEvent], tx: Tx) -> None:
        if self.refusals:
            self.refusals -= 1
            raise sqlite3.OperationalError("database is locked")
        super().handle_batch(events, tx)


def test_a_database_outage_during_a_batch_is_waited_out(store: ConsumerStore) -> None:
    a = uuid.uuid4()
    p, dead = processor(store, DatabaseBusy())
    p.receive_batch(numbered([(a, v) for v in range(1, 5)]))
    assert (p.applied, p.dead_lettered, dead) == (4, 0, [])


def traced(message: Any, parent: trace.Span) -> Any:
    headers = message.headers + trace_headers(trace.set_span_in_context(parent))
    return type(message)(
        message.topic, message.partition, message.offset, message.key, message.value, headers
    )


def test_a_batch_has_one_span_linked_to_each_event_and_one_event_its_own_span(
    store: ConsumerStore,
) -> None:
    a = uuid.uuid4()
    p, _dead = processor(store)
    with tracer("test").start_as_current_span("publish") as first:
        pass
    with tracer("test").start_as_current_span("publish") as second:
        pass
    EXPORTER.clear()
    p.receive_batch([traced(raw(a, 1, 0), first), traced(raw(a, 2, 1), second), raw(a, 3, 2)])
    [span] = [s for s in EXPORTER.get_finished_spans() if s.name == "t process"]
    assert span.attributes["messaging.batch.message_count"] == 3
    assert span.parent is None
    linked = {link.context.span_id for link in span.links}
    assert linked == {first.get_span_context().span_id, second.get_span_context().span_id}

    EXPORTER.clear()
    p.receive_batch([traced(raw(a, 4, 3), first)])
    [single] = [s for s in EXPORTER.get_finished_spans() if s.name == "t process"]
    assert single.parent is not None
    assert single.parent.span_id == first.get_span_context().span_id
    assert single.attributes["messaging.kafka.offset"] == 3


def test_apply_batch_and_apply_once_on_events_behind_the_position(store: ConsumerStore) -> None:
    a = uuid.uuid4()
    store.setup(Ledger.create_statements)
    events = [decoded(m) for m in numbered([(a, 1), (a, 2), (a, 3)])]
    ledger = Ledger()
    assert store.apply_batch(events, ledger.handle_batch) == 3
    assert store.apply_batch(events, ledger.handle_batch) == 0  # a batch: counted, no error
    with pytest.raises(IntegrityError):  # one event: refused by the position, as always
        store.apply_once(events[1], lambda tx: ledger.handle(events[1], tx))
    assert store.apply_once(decoded(raw(a, 4, 3)), lambda tx: None) is True
    assert versions(store) == {str(a): [1, 2, 3]}  # the last write was a no-op
    assert store.next_offset("t", 0) == 4
