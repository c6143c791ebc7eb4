"""The optimistic write loop (okr_platform.writes): retries on a version collision, If-Match
refused before the change and on a collision, contention after the last attempt, and the
per-aggregate lock this process's writers queue on."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError
from okr_platform.errors import Conflict, StaleVersion
from okr_platform.writes import MAX_RETRIES, OptimisticWrites, contention


@dataclass
class Counter:
    version: int = 1
    value: int = 0


class Store:
    """A save that collides (another writer saved first) the first `collisions` times."""

    def __init__(self, collisions: int = 0) -> None:
        self.collisions = collisions
        self.saves = 0
        self.saved: list[int] = []

    def save(self, *aggregates: Counter) -> list[str]:
        self.saves += 1
        if self.saves <= self.collisions:
            raise IntegrityError("version collision")
        self.saved += [aggregate.value for aggregate in aggregates]
        return ["recording"]


def increment(writes: OptimisticWrites, expected_version: int | None = None) -> Counter:
    """The loop as a use case writes it: a fresh copy per attempt."""
    for attempt in writes.attempts(expected_version):
        counter = Counter()
        attempt.check(counter)
        counter.value += 1
        if attempt.saved(counter):
            return counter
    raise contention()


def no_pause(attempt: int) -> None:
    pass


def test_a_collision_is_retried_on_fresh_state() -> None:
    store = Store(collisions=3)
    writes = OptimisticWrites(store.save, pause=no_pause)
    assert increment(writes).value == 1
    assert store.saves == 4 and store.saved == [1]


def test_after_the_last_attempt_collides_it_is_contention() -> None:
    store = Store(collisions=MAX_RETRIES)
    writes = OptimisticWrites(store.save, pause=no_pause)
    with pytest.raises(Conflict) as caught:
        increment(writes)
    assert caught.value.code == "contention"
    assert store.saves == MAX_RETRIES and store.saved == []


def test_if_match_is_checked_before_the_change() -> None:
    store = Store()
    writes = OptimisticWrites(store.save, pause=no_pause)
    with pytest.raises(StaleVersion) as caught:
        increment(writes, expected_version=2)
    assert caught.value.field == "If-Match"
    assert "version 2 is stale; the current version is 1" in caught.value.detail
    assert store.saves == 0  # nothing changed, nothing saved


def test_with_if_match_a_collision_is_stale_not_retried() -> None:
    store = Store(collisions=1)
    writes = OptimisticWrites(store.save, pause=no_pause)
    with pytest.raises(StaleVersion):
        increment(writes, expected_version=1)
    assert store.saves == 1


def test_pauses_grow_between_attempts_and_not_after_the_last() -> None:
    pauses: list[int] = []
    store = Store(collisions=MAX_RETRIES)
    writes = OptimisticWrites(store.save, pause=pauses.append)
    with pytest.raises(Conflict):
        increment(writes)
    assert pauses == list(range(MAX_RETRIES - 1))


def test_a_single_attempt_keeps_what_it_recorded() -> None:
    store = Store()
    attempt = OptimisticWrites(store.save).attempt()
    assert attempt.saved(Counter(value=7))
    assert attempt.recordings == ["recording"] and store.saved == [7]


def test_writers_of_one_aggregate_in_this_process_take_turns() -> None:
    writes = OptimisticWrites(Store().save)
    aggregate = uuid.uuid4()
    assert writes.locked(aggregate) is writes.locked(uuid.UUID(str(aggregate)))
    inside = 0
    most = 0
    guard = threading.Lock()

    def write() -> Any:
        nonlocal inside, most
        with writes.locked(aggregate):
            with guard:
                inside += 1
                most = max(most, inside)
            threading.Event().wait(0.005)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1
