"""What the tests of commands from events (okr_events.commands) on SQLite and real PostgreSQL
share: the counter context's topic, a dead-letter sink, a processor and encoded
messages of the counter context."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application
from okr_events.codec import InboundEvent, decode, encode
from okr_events.commands import CommandProcessor
from okr_events.consuming import EventProcessor, RawMessage
from tally_context import (
    COUNTER_SOURCE,
    Counted,
    CounterStarted,
    TallyApplication,
    TallyHandler,
)

TOPIC = "okr.counter.events.v1"


# ---- fixtures and helpers -------------------------------------------------------------------


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
