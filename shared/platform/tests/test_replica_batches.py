"""The replica alone, applied in big batches (as a rebuild does: writes pending in the batch)
gives exactly the tables it gives one event at a time (as the live consumer does); and
partitions applied in any interleaving give the tables of one replay (its invariant: an
applier touches only its own aggregate's rows). SQLite and PostgreSQL, random histories that
mix the directory's, settings', cycles', objectives' and key results' events."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from okr_events.consuming import ConsumerStore
from okr_testkit.goals_history import RandomHistory, inbound
from replica_kit import apply_in_batches, apply_one_by_one, snapshot

OpenStores = Callable[[int], list[ConsumerStore]]


@pytest.mark.parametrize("batch_size", [7, 5000])
def test_batches_give_the_tables_single_events_give(
    open_stores: OpenStores, batch_size: int
) -> None:
    single, batched = open_stores(2)
    events = inbound(RandomHistory(seed=batch_size).contracts())
    kinds = {type(event.contract).__name__ for event in events}
    assert {
        "MemberUpdated",
        "SettingsChanged",
        "KeyResultRemoved",
        "KeyResultEdited",
        "KeyResultTargetChanged",
        "ObjectiveEdited",
    } <= kinds

    apply_one_by_one(single, events)
    apply_in_batches(batched, events, batch_size)

    expected = snapshot(single)
    assert len(expected["key_results"]) > len(expected["objectives"])
    assert len(expected["members"]) > 4
    assert snapshot(batched) == expected


def test_partitions_applied_in_any_interleaving_give_one_replays_tables(
    open_stores: OpenStores,
) -> None:
    """What a partition-parallel rebuild relies on: each partition's events (an aggregate's
    are all in one) applied share after share, in either order, equal all of them in order."""
    in_order, first_then_second, second_then_first = open_stores(3)
    events = inbound(RandomHistory(seed=3).contracts(), partitions=2)
    shares = [[e for e in events if e.partition == p] for p in (0, 1)]
    assert all(len(share) > 50 for share in shares)

    apply_in_batches(in_order, events, 50)
    apply_in_batches(first_then_second, [*shares[0], *shares[1]], 50)
    apply_in_batches(second_then_first, [*shares[1], *shares[0]], 50)

    expected = snapshot(in_order)
    assert snapshot(first_then_second) == expected
    assert snapshot(second_then_first) == expected
