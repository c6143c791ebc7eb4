"""Embedded transport of the consumer runtime: no Kafka, same handlers.

It follows the producing application's notification log in this process and hands each
event to the same `EventProcessor` the Kafka transport uses, after the same encode/decode a
Kafka message goes through. The log is one ordered sequence, so it is "partition 0" and a
notification id n is "offset" n - 1: positions are stored exactly as on the Kafka path.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from eventsourcing.application import Application
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
    ) -> None:
        self.app = app
        self.to_contract = to_contract
        self.topic = topic
        self.source = source
        self.store = store
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
                for domain_event, tracking in self._subscription:
                    self._deliver(domain_event, tracking.notification_id - 1)
        except BaseException as error:
            self.error = error
            log.exception("in-process consumer %s stopped", self.processor.handler.name)
            raise

    def _deliver(self, domain_event: Any, offset: int) -> None:
        contract = self.to_contract(domain_event)
        carrier = event_trace_context(domain_event)
        headers = trace_headers(context_from_carrier(carrier)) if carrier else []
        message = encode(contract, topic=self.topic, source=self.source, extra_headers=headers)
        self.processor.receive(
            RawMessage(self.topic, 0, offset, message.key, message.value, message.headers)
        )

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
