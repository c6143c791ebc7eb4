"""The outbox relay: a service's event store, published to Kafka in order, never a dual write.

It follows the application's notification log with the library's ApplicationSubscription
(LISTEN/NOTIFY on PostgreSQL, polling on SQLite), maps each domain event to its contract
(which validates it), and produces it with key = aggregate id and CloudEvents headers.

Its position (the last notification id Kafka has confirmed, with every id before it) is
recorded in the service's own database only after delivery reports arrive, so a crash
re-publishes at most the unconfirmed tail and never skips an event. Consumers dedupe on
aggregate id + version, so the effect is exactly once. An event that fails its contract
stops the relay loudly at that event: it is never dropped.

The database going away (a PostgreSQL restart) is waited out in `run`: the subscription's
connection dies with it, so the relay follows the store again from the last notification it
produced, keeping its producer and what is in flight; nothing is published twice or skipped.
Recording the position waits for the database too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import ApplicationSubscription
from opentelemetry import trace

from .base import EventContract
from .codec import encode
from .outages import Backoff, database_unavailable, discard_broken_connections, one_line
from .tracing import context_from_carrier, event_trace_context, trace_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer("okr_events.relay")

ToContract = Callable[[Any], EventContract]


class RelayStopped(RuntimeError):
    """The relay stopped on an event it must not skip."""


class ContractViolation(RelayStopped):
    """A recorded event does not satisfy its contract: a bug to fix, not to retry."""


class DeliveryFailed(RelayStopped):
    """Kafka did not confirm a message in time (e.g. a long outage): restart from the position."""


class _Confirmations:
    """Notification ids produced but not yet confirmed, in produce order.

    Deliveries to different partitions confirm out of order; the safe position is the
    highest id with every id before it confirmed."""

    def __init__(self, position: int) -> None:
        self.position = position
        self._pending: deque[int] = deque()
        self._confirmed: set[int] = set()
        self._lock = threading.Lock()
        self.failure: str | None = None

    def produced(self, notification_id: int) -> None:
        with self._lock:
            self._pending.append(notification_id)

    def confirmed(self, notification_id: int) -> None:
        with self._lock:
            self._confirmed.add(notification_id)
            while self._pending and self._pending[0] in self._confirmed:
                self._confirmed.discard(self._pending[0])
                self.position = self._pending.popleft()

    def failed(self, notification_id: int, error: str) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = f"delivery of notification {notification_id} failed: {error}"

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)


class OutboxRelay:
    def __init__(
        self,
        app: Application[Any],
        *,
        to_contract: ToContract,
        topic: str,
        source: str,
        positions: TrackingRecorder,
        producer_config: dict[str, Any],
        save_interval: float = 0.05,
    ) -> None:
        self.app = app
        self.to_contract = to_contract
        self.topic = topic
        self.source = source
        self.positions = positions
        self.producer = Producer(producer_config)
        self.save_interval = save_interval
        start = positions.max_tracking_id(app.name) or 0
        self._confirmations = _Confirmations(start)
        self._saved = start
        self._produced = start  # the last notification id handed to the producer
        self.waiting: str | None = None  # the database outage being waited out, if any
        self._stop = threading.Event()
        self._subscription: ApplicationSubscription[Any] | None = None
        self.published = 0  # messages produced by this process (duplicates after a crash too)
        self._span_name = f"{topic} publish"

    # ---- running ----------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Last notification id recorded as delivered."""
        return self._saved

    def lag(self) -> int:
        """Events in the store not yet confirmed on Kafka."""
        return max(0, (self.app.recorder.max_notification_id() or 0) - self._saved)

    def close(self) -> None:
        """Release the database connections (the application's and the position recorder's)."""
        self.app.close()
        self.positions.datastore.close()  # type: ignore[attr-defined]

    def stop(self) -> None:
        self._stop.set()
        if self._subscription is not None:
            self._subscription.stop()

    def run(self) -> None:
        """Publish until stop(); raises RelayStopped on an event it cannot publish. A database
        outage is waited out: the store is followed again from the last event produced."""
        confirmer = threading.Thread(target=self._confirm_loop, name="relay-confirm", daemon=True)
        confirmer.start()
        backoff = Backoff()
        try:
            while not self._stop.is_set():
                try:
                    self._follow(backoff)
                except Exception as error:
                    if not database_unavailable(error) or self._stop.is_set():
                        raise
                    delay = backoff.next_delay()
                    self.waiting = one_line(error)
                    log.warning(
                        "relay: PostgreSQL unavailable (%s); following the store again from "
                        "notification %s in %.1f s",
                        self.waiting,
                        self._produced,
                        delay,
                    )
                    self._stop.wait(delay)
                    discard_broken_connections(self.app, self.positions)
        finally:
            self._stop.set()
            confirmer.join()
            self._drain()
        if self._confirmations.failure:
            raise DeliveryFailed(self._confirmations.failure)

    def _follow(self, backoff: Backoff) -> None:
        """One subscription to the store, from the last event produced, until stop() or an
        error (the database's connection dying ends it)."""
        self._subscription = ApplicationSubscription(self.app, gt=self._produced)
        if self._stop.is_set():  # stop() came before the subscription existed
            self._subscription.stop()
        with self._subscription:
            for domain_event, tracking in self._subscription:
                if self.waiting is not None:
                    log.info(
                        "relay: PostgreSQL is back; publishing from notification %s",
                        tracking.notification_id,
                    )
                    self.waiting = None
                backoff.reset()
                self._publish(domain_event, tracking)
                self._produced = tracking.notification_id
                if self._confirmations.failure:
                    raise DeliveryFailed(self._confirmations.failure)
                if self._stop.is_set():
                    break

    def _publish(self, domain_event: Any, tracking: Tracking) -> None:
        try:
            contract = self.to_contract(domain_event)
        except Exception as exc:
            log.critical(
                "relay stopped: notification %s (%s v%s of %s) fails its contract: %s",
                tracking.notification_id,
                type(domain_event).__name__,
                domain_event.originator_version,
                domain_event.originator_id,
                exc,
            )
            raise ContractViolation(f"notification {tracking.notification_id}: {exc}") from exc
        carrier = event_trace_context(domain_event)
        if carrier:
            # Continue the request's trace: the publish span is a child of the HTTP span. It is
            # started and ended explicitly rather than made current (start_as_current_span):
            # the same span and headers, for about a sixth less of the relay's tracing time.
            span = tracer.start_span(
                self._span_name,
                context=context_from_carrier(carrier),
                kind=trace.SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": self.topic,
                    "messaging.operation.type": "send",
                    "messaging.message.id": str(tracking.notification_id),
                    "cloudevents.event_type": contract.cloudevents_type(),
                },
            )
            try:
                message = encode(
                    contract,
                    topic=self.topic,
                    source=self.source,
                    extra_headers=trace_headers(trace.set_span_in_context(span)),
                )
            except Exception as exc:  # as start_as_current_span would record it
                span.record_exception(exc)
                span.set_status(
                    trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
                )
                raise
            finally:
                span.end()
        else:
            message = encode(contract, topic=self.topic, source=self.source)
        notification_id = tracking.notification_id
        confirmations = self._confirmations

        def on_delivery(error: KafkaError | None, _msg: Message) -> None:
            if error is None:
                confirmations.confirmed(notification_id)
            else:
                confirmations.failed(notification_id, str(error))

        confirmations.produced(notification_id)
        while True:
            try:
                self.producer.produce(
                    message.topic,
                    value=message.value,
                    key=message.key,
                    # confluent-kafka types headers as an invariant List of (str, str | bytes |
                    # None); our list of (str, bytes) is valid, only the annotation rejects it.
                    headers=message.headers,  # type: ignore[arg-type]
                    on_delivery=on_delivery,
                )
                break
            except BufferError:  # local queue full (e.g. Kafka is down): wait for room
                self.producer.poll(0.1)
                if self._confirmations.failure:
                    raise DeliveryFailed(self._confirmations.failure) from None
        self.published += 1

    def _confirm_loop(self) -> None:
        unsaved = False  # the last attempt to record the position met a database outage
        while not self._stop.is_set():
            self.producer.poll(self.save_interval)
            try:
                self._save_position()
            except Exception as error:
                if not database_unavailable(error):
                    raise
                if not unsaved:  # once per outage: the position is retried every poll
                    log.warning("relay: position not recorded yet (%s); retrying", one_line(error))
                unsaved = True
                discard_broken_connections(self.positions)
            else:
                unsaved = False
            if self._confirmations.failure and self._subscription is not None:
                self._subscription.stop()  # wake the publishing loop, which then raises

    def _save_position(self) -> None:
        position = self._confirmations.position
        if position > self._saved:
            self.positions.insert_tracking(Tracking(self.app.name, position))
            self._saved = position

    def _drain(self, timeout: float = 30.0) -> None:
        """On the way out, wait for outstanding deliveries and record how far they got."""
        deadline = time.monotonic() + timeout
        while self._confirmations.in_flight and time.monotonic() < deadline:
            if self._confirmations.failure:
                break
            self.producer.poll(0.1)
        try:
            self._save_position()
        except Exception as error:
            if not database_unavailable(error):
                raise
            log.warning(
                "relay stopped without recording position %s (%s); the events after %s are "
                "re-published on restart (consumers skip what they already applied)",
                self._confirmations.position,
                one_line(error),
                self._saved,
            )
        if self._confirmations.in_flight:
            log.warning(
                "relay stopped with %s deliveries unconfirmed; they are re-published on restart",
                self._confirmations.in_flight,
            )
