"""Embedded transport of the consumer runtime: no Kafka, same handlers.

It follows the producing application's notification log in this process and hands the events
to the same `EventProcessor` the Kafka transport uses, after the same encode/decode a Kafka
message goes through. The log is one ordered sequence, so it is "partition 0" and a
notification id n is "offset" n - 1: positions are stored exactly as on the Kafka path.
Events the subscription has already read are applied together, up to `batch_size`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import ListenNotifySubscription, Tracking
from eventsourcing.projection import ApplicationSubscription

from .codec import InboundEvent, encode
from .consuming import ConsumerStore, EventHandler, EventProcessor, RawMessage, StoppableRunner
from .relay import ToContract
from .tracing import context_from_carrier, event_trace_context, trace_headers

log = logging.getLogger(__name__)


class InProcessRunner(StoppableRunner):
    def __init__(
        self,
        handler: EventHandler,
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
        self.app = app
        self.to_contract = to_contract
        self.topic = topic
        self.source = source
        self.store = store
        self.batch_size = batch_size
        self.processor = EventProcessor(
            handler,
            store,
            dead_letter=self._dead_letter,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            stopping=lambda: self._stopped.is_set(),
        )
        self.error: BaseException | None = None
        self._subscription: ApplicationSubscription[Any] | None = None
        self._stopped = threading.Event()

    def run(self) -> None:
        gt = self.store.next_offset(self.topic, 0) or 0  # next offset == last notification id
        self._subscription = ApplicationSubscription(self.app, gt=gt)
        if self._stopped.is_set():
            self._subscription.stop()
        try:
            with self._subscription:
                for batch in _batches(self._subscription, self.batch_size):
                    self._deliver(batch)
        except BaseException as error:
            self.error = error
            log.exception("in-process consumer %s stopped", self.processor.handler.name)
            raise

    def _deliver(self, batch: list[tuple[Any, Tracking]]) -> None:
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

    def _dead_letter(
        self, event: InboundEvent | None, raw: RawMessage, error: BaseException
    ) -> None:
        self.store.record_dead_letter(raw, event.event_id if event else None, error)

    def stop(self) -> None:
        self._stopped.set()
        if self._subscription is not None:
            self._subscription.stop()

    def caught_up(self) -> bool:
        last = self.app.recorder.max_notification_id() or 0
        return (self.store.next_offset(self.topic, 0) or 0) >= last


def _batches(
    subscription: ApplicationSubscription[Any], size: int
) -> Iterator[list[tuple[Any, Tracking]]]:
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
