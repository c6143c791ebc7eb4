"""Events for the consumer runtime's tests, as a transport would deliver them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer
from okr_events import GOALS_SOURCE
from okr_events.codec import InboundEvent, decode, encode
from okr_events.consuming import ConsumerStore, RawMessage, Tx
from okr_events.goals import CycleActivated
from okr_events.ledger import Ledger


def contract(aggregate_id: uuid.UUID, version: int, actor: str = "admin") -> CycleActivated:
    return CycleActivated(
        aggregate_id=aggregate_id,
        aggregate_version=version,
        occurred_at=datetime(2026, 10, 1, tzinfo=UTC),
        actor=actor,
    )


def raw(
    aggregate_id: uuid.UUID, version: int, offset: int, *, topic: str = "t", partition: int = 0
) -> RawMessage:
    message = encode(contract(aggregate_id, version), topic=topic, source=GOALS_SOURCE)
    return RawMessage(topic, partition, offset, message.key, message.value, message.headers)


def poison(offset: int, *, topic: str = "t", partition: int = 0) -> RawMessage:
    return RawMessage(topic, partition, offset, b"key", b"not json at all", [])


def decoded(message: RawMessage) -> InboundEvent:
    return decode(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=message.headers,
    )


def numbered(pairs: Iterable[tuple[uuid.UUID, int]], *, topic: str = "t") -> list[RawMessage]:
    """(aggregate, version) pairs as consecutive offsets of partition 0, from 0."""
    return [raw(a, v, offset, topic=topic) for offset, (a, v) in enumerate(pairs)]


def ledger_rows(store: ConsumerStore) -> list[dict[str, Any]]:
    rows = store.query(
        'SELECT aggregate_id, aggregate_version, topic, partition, "offset", event_id, digest '
        'FROM ledger_events ORDER BY topic, partition, "offset"'
    )
    return [dict(row) for row in rows]


def streams(store: ConsumerStore) -> dict[str, tuple[int, int, str]]:
    rows = store.query("SELECT aggregate_id, events, last_version, digest FROM ledger_streams")
    return {r["aggregate_id"]: (r["events"], r["last_version"], r["digest"]) for r in rows}


def produce(bootstrap: str, topic: str, pairs: Iterable[tuple[uuid.UUID, int]]) -> int:
    """Publish events as the relay does (key = aggregate id); how many."""
    # Idempotent, as the relay's: a retried send on a loaded machine must not duplicate an
    # event, or the tests' counts of what was applied would be off by the duplicates.
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    n = 0
    for aggregate_id, version in pairs:
        message = encode(contract(aggregate_id, version), topic=topic, source=GOALS_SOURCE)
        producer.produce(topic, key=message.key, value=message.value, headers=message.headers)
        n += 1
        if n % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    return n


class Recording(Ledger):
    """The ledger, keeping what the runtime handed it."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.singles: list[tuple[str, int]] = []

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        self.singles.append((str(event.aggregate_id), event.aggregate_version))
        Ledger.handle_batch(self, [event], tx)  # not recorded as a batch

    def handle_batch(self, events: Sequence[InboundEvent], tx: Tx) -> None:
        self.batches.append([(str(e.aggregate_id), e.aggregate_version) for e in events])
        super().handle_batch(events, tx)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def applied_count(store: ConsumerStore) -> int:
    return int(store.query("SELECT count(*) AS n FROM ledger_events")[0]["n"])
