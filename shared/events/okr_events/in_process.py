"""Following an application's notification log in this process: the embedded transport and
the runner of a context's own read models.

A log is one ordered sequence, so it is "partition 0" of a topic and notification id n is
"offset" n - 1: positions are stored exactly as on the Kafka path, and the same
`EventProcessor` applies the events, in batches of those the subscription has already read
(up to `batch_size`). Two kinds of runner follow a log (`LogRunner`):

* `InProcessRunner`, the embedded transport: another context's events go through the same
  encode/decode a Kafka message goes through, and handlers get contracts (`InboundEvent`);
* `ReadModelRunner`, a context's own read model: handlers get the domain events themselves
  (`RecordedEvent`), to fold them with the aggregate's own methods; an event a handler keeps
  failing on stops the runner (its rows must never silently disagree with the log).

Both survive the database going away (a PostgreSQL restart kills the subscription's LISTEN
connection): they wait, reopen the subscription from the stored position and carry on;
`healthy` says whether they follow the log right now. `wait_until_applied` is the
read-your-writes wait (docs/read-models.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic

from eventsourcing.application import Application
from eventsourcing.persistence import ListenNotifySubscription, Tracking
from eventsourcing.projection import ApplicationSubscription

from .codec import InboundEvent, encode
from .consuming import (
    ConsumerStore,
    E,
    EventHandler,
    EventProcessor,
)
from .messages import RawMessage
from .outages import discard_broken_connections, is_outage, one_line
from .relay import ToContract
from .stoppable import StoppableRunner
from .tracing import context_from_carrier, event_trace_context, trace_headers

log = logging.getLogger(__name__)

LoggedBatch = list[tuple[Any, Tracking]]


class LogRunner(StoppableRunner, Generic[E]):
    """Applies an application's notification log to a store, from the stored position on."""

    #: Whether the store also dedupes by aggregate version (`ConsumerStore.apply_batch`).
    track_versions = True
    #: Seconds before reopening the subscription after an outage: doubled per failed attempt.
    reconnect_backoff = 0.05
    max_reconnect_backoff = 2.0

    def __init__(
        self,
        handler: EventHandler[E],
        store: ConsumerStore,
        app: Application[Any],
        *,
        topic: str,
        max_retries: int = 3,
        retry_backoff: float = 0.1,
        batch_size: int = 500,
    ) -> None:
        self.app = app
        self.topic = topic
        self.store = store
        self.batch_size = batch_size
        self.processor: EventProcessor[E] = EventProcessor(
            handler,
            store,
            dead_letter=self._dead_letter,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            stopping=lambda: self._stopped.is_set(),
            track_versions=self.track_versions,
        )
        #: Why the runner stopped for good (a bug, not an outage); None while it runs.
        self.error: BaseException | None = None
        #: The outage being waited out (the log or the store unreachable); None when following.
        self.outage: BaseException | None = None
        self.reconnects = 0
        self._subscription: ApplicationSubscription[Any] | None = None
        self._stopped = threading.Event()
        #: In run() now (whichever thread runs it: its own, or a supervisor's).
        self._running = False

    def run(self) -> None:
        failures = 0
        self._running = True
        try:
            while not self._stopped.is_set():
                try:
                    self._follow()
                except Exception as error:
                    if not is_outage(error):
                        raise
                    if self._stopped.is_set():
                        return
                    self.outage = error
                    delay = min(self.max_reconnect_backoff, self.reconnect_backoff * 2**failures)
                    log.warning(  # one line: an outage is expected, its traceback is noise
                        "%s: the log or its store is unreachable (%s); reconnecting in %.2f s",
                        self.processor.handler.name,
                        one_line(error),
                        delay,
                    )
                    failures = min(failures + 1, 16)
                    self._stopped.wait(delay)
                    discard_broken_connections(self.store, self.app)
                else:
                    failures = 0
        except Exception as error:
            if self._stopped.is_set():  # what a stop interrupted stays unapplied: not an error
                log.info("%s stopped mid-event (%s)", self.processor.handler.name, error)
                return
            self.error = error
            log.exception("%s stopped", self.processor.handler.name)
            raise
        except BaseException as error:
            self.error = error
            log.exception("%s stopped", self.processor.handler.name)
            raise
        finally:
            self._running = False
            self.store.wake_waiters()  # waiters stop waiting for a runner that is gone

    def _follow(self) -> None:
        """Read the log from the stored position until stopped (or until an error)."""
        gt = self.store.next_offset(self.topic, 0) or 0  # next offset == last notification id
        self.app.recorder.max_notification_id()  # the log answers too: we are connected
        subscription = ApplicationSubscription(self.app, gt=gt)
        self._subscription = subscription
        if self._stopped.is_set():
            subscription.stop()
        if self.outage is not None:
            log.info("%s: reconnected; resuming after %s", self.processor.handler.name, gt)
            self.outage = None
            self.reconnects += 1
        with subscription:
            for batch in _batches(subscription, self.batch_size):
                self._deliver(batch)

    def _deliver(self, batch: LoggedBatch) -> None:
        raise NotImplementedError

    def _dead_letter(self, event: E | None, raw: RawMessage, error: BaseException) -> None:
        self.store.record_dead_letter(raw, event.event_id if event else None, error)

    def stop(self) -> None:
        self._stopped.set()
        if self._subscription is not None:
            self._subscription.stop()

    @property
    def healthy(self) -> bool:
        """Following the log now: running, not stopped by an error, no outage being waited out."""
        return (
            self.error is None
            and self.outage is None
            and self.processor.unavailable is None
            and (self._running or (self._thread is not None and self._thread.is_alive()))
        )

    def caught_up(self) -> bool:
        last = self.app.recorder.max_notification_id() or 0
        return (self.store.next_offset(self.topic, 0) or 0) >= last

    def wait_until_applied(self, notification_id: int | None, timeout: float) -> bool:
        """Read-your-writes: block until the log is applied up to ``notification_id`` (what a
        request saw or wrote); False after ``timeout`` seconds, or at once if the runner has
        stopped. Woken by the commit that applies it, when that happens in this process."""
        if not notification_id:
            return True
        return self.store.wait_for_position(
            self.topic, 0, notification_id, timeout, give_up=self._gone
        )

    def _gone(self) -> bool:
        return self.error is not None or self._stopped.is_set()


class InProcessRunner(LogRunner[InboundEvent]):
    """The embedded transport: another context's log, as the contracts Kafka would carry."""

    def __init__(
        self,
        handler: EventHandler[InboundEvent],
        store: ConsumerStore,
        app: Application[Any],
        *,
        to_contract: ToContract,
        topic: str,
        source: str,
        max_retries: int = 3,
        retry_backoff: float = 0.1,
        batch_size: int = 500,
    ) -> None:
        super().__init__(
            handler,
            store,
            app,
            topic=topic,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            batch_size=batch_size,
        )
        self.to_contract = to_contract
        self.source = source

    def _deliver(self, batch: LoggedBatch) -> None:
        raws = []
        for domain_event, tracking in batch:
            contract = self.to_contract(domain_event)
            carrier = event_trace_context(domain_event)
            headers = trace_headers(context_from_carrier(carrier)) if carrier else []
            message = encode(contract, topic=self.topic, source=self.source, extra_headers=headers)
            offset = tracking.notification_id - 1
            raws.append(
                RawMessage(self.topic, 0, offset, message.key, message.value, message.headers)
            )
        self.processor.receive_batch(raws)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event of a context's own log, as its read models get it: the domain event itself
    and the log's position as topic/partition/offset."""

    domain_event: Any
    topic: str
    offset: int
    headers: Mapping[str, str] = field(default_factory=dict)
    partition: int = 0

    @property
    def aggregate_id(self) -> Any:
        return self.domain_event.originator_id

    @property
    def aggregate_version(self) -> int:
        return int(self.domain_event.originator_version)

    @property
    def event_id(self) -> str:
        """``"<aggregate id>:<version>"``, for logs and spans (not a message id: the
        relay's message of this event has its own, `envelope.stable_event_id`)."""
        return f"{self.aggregate_id}:{self.aggregate_version}"

    @property
    def type(self) -> str:
        return type(self.domain_event).__qualname__


class ReadModelFailed(RuntimeError):
    """A read model's handler kept failing on an event: its runner stops (not ready)."""


class ReadModelRunner(LogRunner[RecordedEvent]):
    """A context's own read model, fed with its own log's domain events.

    The log's name (``topic``) names the stored position: ``"<topic>:0"``. Each event of the
    log has one position, so the position alone applies it once (no version bookkeeping)."""

    track_versions = False

    def _deliver(self, batch: LoggedBatch) -> None:
        events = []
        raws = []
        for domain_event, tracking in batch:
            # No trace headers: applying a read model is a trace of its own, not a part of the
            # request that wrote the event (whose trace shows the request's own work).
            offset = tracking.notification_id - 1
            events.append(RecordedEvent(domain_event, self.topic, offset))
            raws.append(RawMessage(self.topic, 0, offset))
        self.processor.process_batch(events, raws)

    def _dead_letter(
        self, event: RecordedEvent | None, raw: RawMessage, error: BaseException
    ) -> None:
        # Not skipped: the position stays before the event, so a fixed handler applies it.
        raise ReadModelFailed(
            f"{self.processor.handler.name} cannot apply {event.type if event else '?'} "
            f"at {raw.topic}:{raw.offset + 1}: {error}"
        ) from error


def _batches(subscription: ApplicationSubscription[Any], size: int) -> Iterator[LoggedBatch]:
    """Wait for one event, then add those the subscription has already read from the log,
    never waiting for more (so a lone event is not delayed)."""
    while True:
        try:
            batch = [next(subscription)]
        except StopIteration:
            return
        while len(batch) < size and _buffered(subscription):
            try:
                batch.append(next(subscription))
            except StopIteration:
                break
        yield batch


def _buffered(subscription: ApplicationSubscription[Any]) -> bool:
    """Whether the next event is already in memory. The library's subscriptions (LISTEN/NOTIFY
    on PostgreSQL, and the goals service's SQLite one built on it) read the log in pages of up
    to 500 into a queue; nothing public says how much is there, so this looks (eventsourcing
    9.5; a test checks that batches still form)."""
    inner = subscription.subscription
    if not isinstance(inner, ListenNotifySubscription):
        return False
    return inner._notifications_index < len(inner._notifications) or (
        not inner._notifications_queue.empty()
    )
