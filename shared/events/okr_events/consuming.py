"""The consumer runtime: exactly-once *effect* over at-least-once delivery.

A consuming context writes a handler (`EventHandler`): it gets decoded events and a
transaction (`Tx`) on the context's own database. The runtime wraps the handler's writes in
ONE transaction that also

* records the position (topic, partition, next offset) as an eventsourcing `Tracking`
  (application_name ``"<topic>:<partition>"``, notification_id = offset + 1), and
* records the aggregate's version; an event whose aggregate version was already applied
  (a relay re-publishing after a crash, a redelivery) changes nothing.

Messages arrive in batches (whatever a transport already has, never waiting for more): a
batch is one transaction (`ConsumerStore.apply_batch`); a single event keeps the per-event
path with its own span in the producer's trace. A batch that fails is halved until the
failing event is alone; it alone is retried and dead-lettered.

Two transports feed the same handlers through `EventProcessor`:
`KafkaConsumerRunner` (a consumer group; seeks to the stored positions on assignment; poison
messages and handlers that keep failing go to ``<topic>.dlq``) and `InProcessRunner` (the
embedded default: follows the producing application's notification log, no Kafka);
`replay.replay` rebuilds a store from offset 0 through the same processor. A context's own
read models run on the same processor too: `in_process.ReadModelRunner` follows the context's
own log and hands its handlers the domain events (`RecordedEvent`) rather than contracts.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, Protocol

from eventsourcing import persistence as es_persistence
from opentelemetry import trace
from opentelemetry.context import Context
from typing_extensions import TypeVar

from .codec import DecodeError, InboundEvent
from .consumer_store import (
    TRANSIENT,
    Applicable,
    ConsumerStore,
    PostgresConsumerStore,
    SQLiteConsumerStore,
    Tx,
    open_consumer_store,
    position_name,
)
from .messages import Decoded, RawMessage, decode_batch
from .outages import discard_broken_connections, one_line

__all__ = [
    "TRANSIENT",
    "Applicable",
    "ConsumerStore",
    "DeadLetter",
    "EventHandler",
    "EventProcessor",
    "PostgresConsumerStore",
    "RawMessage",  # from .messages: many modules and tests import it from here
    "SQLiteConsumerStore",
    "Tx",
    "open_consumer_store",
    "position_name",
]

log = logging.getLogger(__name__)
tracer = trace.get_tracer("okr_events.consuming")


# ---- the handler side ---------------------------------------------------------------------------

#: The events a handler takes: decoded contracts (`InboundEvent`, what other contexts publish)
#: unless it is a context's own read model (`in_process.RecordedEvent`: its domain events).
E = TypeVar("E", bound=Applicable, default=InboundEvent)
E_contra = TypeVar("E_contra", bound=Applicable, default=InboundEvent, contravariant=True)


class EventHandler(Protocol[E_contra]):
    """What a consuming context provides. SQL is written with ``:name`` parameters and runs
    unchanged on SQLite and PostgreSQL (rewritten to ``%(name)s`` there).

    Optionally a handler also defines ``handle_batch(events: Sequence[InboundEvent], tx: Tx)
    -> None``: the runtime then calls it with the fresh events of a batch, in order, in one
    transaction (for speed: one query for many events). It must have the same effect as
    `handle` on each in turn: a batch of one, and the failing event of a batch that failed
    (halved until that event is alone, then retried and dead-lettered), go through `handle`.
    """

    name: str

    @property
    def create_statements(self) -> Sequence[str]:
        """The handler's tables (read-only here: a tuple or a list both do)."""
        ...

    def handle(self, event: E_contra, tx: Tx) -> None: ...


# ---- processing, shared by both transports ------------------------------------------------------


DeadLetter = Callable[[E | None, RawMessage, BaseException], None]


class EventProcessor(Generic[E]):
    """Applies events through a handler: in batches, one transaction each; a failing event
    alone is retried and finally given to the dead-letter sink."""

    def __init__(
        self,
        handler: EventHandler[E],
        store: ConsumerStore,
        *,
        dead_letter: DeadLetter[E],
        max_retries: int = 3,
        retry_backoff: float = 0.1,
        stopping: Callable[[], bool] = lambda: False,
        track_versions: bool = True,
    ) -> None:
        self.handler = handler
        #: Whether aggregate versions dedupe too (`ConsumerStore.apply_batch`); not for a
        #: context's own log, where each event has exactly one position.
        self.track_versions = track_versions
        self.store = store
        self.dead_letter = dead_letter
        self.stopping = stopping
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.applied = 0
        self.duplicates = 0
        self.dead_lettered = 0
        #: The database error being waited out now, if any (a health check reads it).
        self.unavailable: BaseException | None = None
        self._handle_batch = _batch_method(handler)
        store.setup(handler.create_statements)

    def receive(self, raw: RawMessage) -> None:
        """Decode a message and apply it; an undecodable one is dead-lettered."""
        self.receive_batch([raw])

    def receive_batch(
        self, raws: Sequence[RawMessage], decoded: Sequence[Decoded] | None = None
    ) -> None:
        """Decode messages and apply them in order, as few transactions as possible. An
        undecodable message is dead-lettered after the messages before it were applied, so
        positions only ever move forward. ``decoded``: `decode_batch(raws)`, if a reader
        thread already did it."""
        events: list[Any] = []  # decoded: this path is for `InboundEvent` handlers
        run: list[RawMessage] = []
        for raw, item in zip(raws, decoded or decode_batch(raws), strict=True):
            if isinstance(item, DecodeError):
                if events:
                    self.process_batch(events, run)
                    events, run = [], []
                self.undecodable(raw, item)
            else:
                events.append(item)
                run.append(raw)
        if events:
            self.process_batch(events, run)

    def process_batch(self, events: Sequence[E], raws: Sequence[RawMessage]) -> None:
        """Apply decoded events (``raws[i]`` is the message of ``events[i]``) in one
        transaction. The database being away is waited out; any other failure halves the
        batch until the failing event is alone in `process` (retries, then dead letter)."""
        if len(events) == 1:
            self.process(events[0], raws[0])  # its own span, in the producer's trace
            return
        with self._batch_span(events) as span:
            failure = self._apply_batch(events, span)
            if failure is not None:
                span.record_exception(failure)
        if failure is None:
            return
        log.info(
            "%s: a batch of %s failed (%s: %s); applying it in halves",
            self.handler.name,
            len(events),
            type(failure).__name__,
            failure,
        )
        half = len(events) // 2
        self.process_batch(events[:half], raws[:half])
        self.process_batch(events[half:], raws[half:])

    def _apply_batch(self, events: Sequence[E], span: trace.Span) -> Exception | None:
        """One transaction for the batch, waiting out outages; the failure, if it failed."""
        waits = 0
        while True:
            try:
                fresh = self.store.apply_batch(
                    events, self._write, track_versions=self.track_versions
                )
            except es_persistence.IntegrityError as error:
                if self._behind_positions(events):
                    # Another consumer of this store got there first: all already processed.
                    self.duplicates += len(events)
                    span.set_attribute("okr.duplicates", len(events))
                    return None
                return error
            except TRANSIENT as error:
                if self.stopping():
                    raise
                log.warning(
                    "%s: database unavailable (%s); retrying", self.handler.name, one_line(error)
                )
                self.unavailable = error
                time.sleep(min(5.0, self.retry_backoff * 2 ** min(waits, 6)))
                discard_broken_connections(self.store)  # the next attempt gets a live one
                waits += 1
            except Exception as error:
                if self.stopping():
                    raise  # interrupted by a stop: the batch stays unapplied, never halved
                return error
            else:
                self.unavailable = None
                self.applied += fresh
                self.duplicates += len(events) - fresh
                span.set_attribute("okr.applied", fresh)
                span.set_attribute("okr.duplicates", len(events) - fresh)
                return None

    def _write(self, events: Sequence[E], tx: Tx) -> None:
        if self._handle_batch is not None:
            self._handle_batch(events, tx)
        else:
            for event in events:
                self.handler.handle(event, tx)

    def _behind_positions(self, events: Sequence[E]) -> bool:
        """Whether the stored position of every partition in the batch is past it."""
        last: dict[tuple[str, int], int] = {}
        for event in events:
            key = (event.topic, event.partition)
            last[key] = max(last.get(key, -1), event.offset)
        return all((self.store.next_offset(*key) or 0) > offset for key, offset in last.items())

    @contextlib.contextmanager
    def _batch_span(self, events: Sequence[E]) -> Iterator[trace.Span]:
        """One CONSUMER span for a batch (a span per event would cost more than applying it),
        a root of its own, linked to the trace of each event (up to MAX_LINKS)."""
        topics = {event.topic for event in events}
        topic = next(iter(topics)) if len(topics) == 1 else "multiple"
        with tracer.start_as_current_span(
            f"{topic} process",
            context=Context(),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.operation.type": "process",
                "messaging.consumer.group.name": self.handler.name,
                "messaging.batch.message_count": len(events),
            },
        ) as span:
            if span.is_recording():  # extracting contexts costs: only for spans kept
                _link_traces(span, events)
            yield span

    def process(self, event: E, raw: RawMessage) -> None:
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
                    fresh = self.store.apply_once(
                        event,
                        lambda tx: self.handler.handle(event, tx),
                        track_versions=self.track_versions,
                    )
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
                    log.warning(
                        "%s: database unavailable (%s); retrying",
                        self.handler.name,
                        one_line(error),
                    )
                    self.unavailable = error
                    time.sleep(min(5.0, self.retry_backoff * 2 ** min(attempt, 6)))
                    discard_broken_connections(self.store)  # the next attempt gets a live one
                    continue
                except Exception as error:
                    if self.stopping():
                        # A stop interrupted it (its store may be closing): the event stays
                        # unapplied and is applied after the next start; never dead-lettered.
                        raise
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
                    self.unavailable = None
                    span.set_attribute("okr.duplicate", not fresh)
                    if fresh:
                        self.applied += 1
                    else:
                        self.duplicates += 1
                    return

    def undecodable(self, raw: RawMessage, error: BaseException) -> None:
        if (self.store.next_offset(raw.topic, raw.partition) or 0) > raw.offset:
            self.duplicates += 1  # behind the position: dead-lettered before, not again
            return
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


def _batch_method(handler: EventHandler[E]) -> Callable[[Sequence[E], Tx], None] | None:
    """The handler's `handle_batch`, unless a subclass overrode `handle` below it (it would
    bypass the override: a handler that refuses some events would silently accept them)."""
    method = getattr(handler, "handle_batch", None)
    if method is None:
        return None
    mro = type(handler).__mro__
    handle_owner = next((k for k in mro if "handle" in vars(k)), None)
    batch_owner = next((k for k in mro if "handle_batch" in vars(k)), None)
    if handle_owner and batch_owner and not issubclass(batch_owner, handle_owner):
        return None
    return method  # type: ignore[no-any-return]


#: Links a batch span keeps (the SDK's default limit; more would be dropped anyway).
MAX_LINKS = 128


def _link_traces(span: trace.Span, events: Sequence[Applicable]) -> None:
    seen: set[tuple[int, int]] = set()
    for event in events:
        if len(seen) >= MAX_LINKS:
            return
        if "traceparent" not in event.headers:
            continue
        parent = trace.get_current_span(_trace_context(event)).get_span_context()
        if parent.is_valid and (parent.trace_id, parent.span_id) not in seen:
            seen.add((parent.trace_id, parent.span_id))
            span.add_link(parent, {"messaging.message.id": event.event_id})


def _trace_context(event: Applicable) -> Any:
    from .tracing import context_from_headers  # import here: tracing imports eventsourcing

    return context_from_headers(list(event.headers.items()))
