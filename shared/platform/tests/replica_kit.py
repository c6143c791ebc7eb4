"""The stores the replica's tests apply goals histories to (the histories themselves:
okr_testkit.goals_history)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from okr_events.codec import InboundEvent
from okr_events.consuming import ConsumerStore
from okr_platform.replica import REPLICA_TABLES, GoalsReplica


def apply_one_by_one(store: ConsumerStore, events: Iterable[InboundEvent]) -> None:
    """As the live consumer does: a transaction per event, through `handle`."""
    replica = GoalsReplica()
    store.setup(replica.create_statements)
    for event in events:
        assert store.apply_batch([event], lambda fresh, tx: replica.handle(fresh[0], tx)) == 1


def apply_in_batches(store: ConsumerStore, events: list[InboundEvent], size: int) -> None:
    """As a rebuild does: many events per transaction, through `handle_batch`."""
    replica = GoalsReplica()
    store.setup(replica.create_statements)
    for start in range(0, len(events), size):
        chunk = events[start : start + size]
        assert store.apply_batch(chunk, replica.handle_batch) == len(chunk)


def snapshot(store: ConsumerStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every replica table's rows, sorted: equal snapshots, equal replicas."""
    return {
        table: sorted(
            tuple(json.dumps(value, sort_keys=True, default=str) for value in dict(row).values())
            for row in store.query(f"SELECT * FROM {table}")
        )
        for table in REPLICA_TABLES
    }
