"""Events that run commands: a context applies another context's event as a command on its
own event-sourced aggregates (docs/commands-from-events.md).

A context writes a `CommandHandler`: for each inbound event it loads aggregates from a
`UnitOfWork`, calls their commands and saves them. Its application derives from
`CommandApplication`, so the application's recorder is also the consumer's store
(okr_events.command_store). `CommandProcessor` is the `EventHandler` both transports drive
(`KafkaConsumerRunner`, `InProcessRunner`: the same decode -> `EventProcessor` path as every
consumer), so the runtime's guarantees hold as they are:

* the new domain events and the positions are recorded in ONE transaction of the context's
  event store; a redelivered event (same offset again, or the same aggregate version at
  another offset) changes nothing;
* a refusal (the handler raises one of its `refuses` errors, e.g. a DomainError) discards
  that event's changes and records a `Refusal` event instead, in the same transaction: never
  lost, never retried;
* anything else (a bug, the database away) is not a refusal: the runtime retries the event,
  waits for the database, or dead-letters the event, as for every consumer.
"""

from __future__ import annotations

import logging
import uuid
from typing import Protocol, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ProcessRecorder, ProgrammingError
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory
from eventsourcing.utils import get_topic, resolve_topic

from .codec import InboundEvent
from .command_store import CommandStore, CommandTx, PostgresCommandStore, SQLiteCommandStore
from .consumer_store import Tx
from .refusals import Refusal

__all__ = [
    "CommandApplication",
    "CommandHandler",
    "CommandProcessor",
    "UnitOfWork",
    "UnsavedChanges",
]

log = logging.getLogger(__name__)
A = TypeVar("A", bound=Aggregate)


class CommandHandler(Protocol):
    """What a consuming context provides: for each inbound event, the commands it runs.

    ``refuses``: the errors that mean "this command is refused" (a context passes its domain
    errors: ``(DomainError,)``). Anything else the handler raises is a failure to retry.
    An event the handler has nothing to do for: it returns without saving anything.
    """

    name: str
    refuses: tuple[type[Exception], ...]

    def handle(self, event: InboundEvent, work: UnitOfWork) -> None: ...


class UnsavedChanges(RuntimeError):
    """A handler changed an aggregate and did not save it: a bug, never silently dropped."""


class UnitOfWork:
    """One inbound event's commands: the aggregates it loads and saves. What it saves is
    recorded only if the handler returns; if the command is refused, none of it is."""

    def __init__(self, tx: CommandTx) -> None:
        self.app = tx.app
        self._tx = tx
        self._loaded: dict[uuid.UUID, Aggregate] = {}
        self._saved: dict[uuid.UUID, Aggregate] = {}

    def get(self, aggregate_id: uuid.UUID, kind: type[A]) -> A:
        """The aggregate as it is now (earlier events of the batch included); the library's
        AggregateNotFoundError if there is none (use `find` when that is a refusal)."""
        if aggregate_id not in self._loaded:
            self._loaded[aggregate_id] = self._tx.latest(aggregate_id)
        aggregate = self._loaded[aggregate_id]
        if not isinstance(aggregate, kind):
            raise TypeError(f"{aggregate_id} is a {type(aggregate).__name__}, not a {kind}")
        return aggregate

    def find(self, aggregate_id: uuid.UUID, kind: type[A]) -> A | None:
        """`get`, or None when the aggregate does not exist."""
        try:
            return self.get(aggregate_id, kind)
        except AggregateNotFoundError:
            return None

    def save(self, *aggregates: Aggregate) -> None:
        """Record these aggregates' new events (new aggregates included) with the position."""
        for aggregate in aggregates:
            self._loaded.setdefault(aggregate.id, aggregate)
            self._saved[aggregate.id] = aggregate

    def commit(self) -> None:
        """Hand the saved changes to the batch; an unsaved change is a bug."""
        unsaved = [
            a for key, a in self._loaded.items() if a.pending_events and key not in self._saved
        ]
        if unsaved:
            names = ", ".join(f"{type(a).__name__} {a.id}" for a in unsaved)
            raise UnsavedChanges(f"changed but not saved: {names}")
        self._tx.collect(list(self._saved.values()))


class CommandProcessor:
    """The `EventHandler` the runners drive for a `CommandHandler`, on its application's
    event store::

        processor = CommandProcessor(handler, app)
        KafkaConsumerRunner(processor, processor.store, topics=[...], settings=kafka)
    """

    create_statements: tuple[str, ...] = ()

    def __init__(self, handler: CommandHandler, app: Application[uuid.UUID]) -> None:
        if not isinstance(app.recorder, CommandStore):
            raise TypeError(f"{type(app).__name__} must derive from CommandApplication")
        self.handler = handler
        self.name = handler.name
        self.app = app
        self.store: CommandStore = app.recorder
        self.refused = 0  # refusals recorded by this process

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        """Run the handler for one event: its saved changes join the batch, or, if the
        command is refused, the refusal does."""
        batch = CommandTx.of(tx)
        work = UnitOfWork(batch)
        try:
            self.handler.handle(event, work)
        except self.handler.refuses as error:
            log.info(
                "%s refused %s (%s v%s of %s): %s",
                self.name,
                event.type,
                event.event_id,
                event.aggregate_version,
                event.aggregate_id,
                error,
            )
            batch.collect([Refusal.of(self.name, event, error)])
            self.refused += 1
            return
        work.commit()


class CommandApplication(Application[uuid.UUID]):
    """Base of an application that runs commands from events: its recorder is a
    `CommandStore` (events, positions and applied inbound versions in its own database).
    Same tables as before for the events, so an existing application may derive from it."""

    def construct_recorder(self) -> ProcessRecorder:
        factory = self.factory
        if isinstance(factory, PostgresFactory):
            store_class: type[CommandStore] = PostgresCommandStore
        elif isinstance(factory, SQLiteFactory):
            store_class = SQLiteCommandStore
        else:
            raise ProgrammingError(f"commands from events need PostgreSQL or SQLite: {factory}")
        # The library's own switch for a process recorder's class (same table names as its
        # process applications); a subclass of ours may be named there instead.
        key = factory.PROCESS_RECORDER_TOPIC
        topic = factory.env.get(key)
        if topic is None or not issubclass(resolve_topic(topic), store_class):
            factory.env[factory.env.create_keys(key)[0]] = get_topic(store_class)
        recorder = factory.process_recorder()
        assert isinstance(recorder, CommandStore)
        recorder.application = self
        return recorder

    @property
    def store(self) -> CommandStore:
        assert isinstance(self.recorder, CommandStore)
        return self.recorder
