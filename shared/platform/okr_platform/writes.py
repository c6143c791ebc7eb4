"""The optimistic write loop: load, check, change, save; again on fresh state when another
writer saved the same aggregate first (docs/architecture.md#guarantees).

Writers of one aggregate in this process queue on a lock (striped by aggregate id: no wasted
work); writers in other processes collide on the aggregate's version when saving and retry on
a fresh copy, so no update is lost. A caller's If-Match (``expected_version``) makes a stale
copy a 412 before the change, and a collision a 412 rather than a retry (the caller's view of
the aggregate is out of date). After `MAX_RETRIES` collisions: `contention()`, a 409.

    with writes.locked(objective_id):
        for attempt in writes.attempts(expected_version):
            objective = load()                  # a fresh private copy
            attempt.check(objective)            # If-Match: StaleVersion (412)
            objective.rename(title)
            if attempt.saved(objective):
                return objective
        raise contention()
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from eventsourcing.persistence import IntegrityError

from .errors import Conflict, StaleVersion

MAX_RETRIES = 10
LOCK_STRIPES = 256


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


def check_version(aggregate: Versioned, expected_version: int | None) -> None:
    """If-Match: the caller's version must be the aggregate's (StaleVersion, 412)."""
    if expected_version is not None and aggregate.version != expected_version:
        raise StaleVersion(
            f"version {expected_version} is stale; the current version is {aggregate.version}",
            field="If-Match",
        )


def back_off(attempt: int) -> None:
    """A short, growing pause before attempt ``attempt + 1`` (the other writer finishes)."""
    time.sleep(0.002 * (attempt + 1))


class Attempt:
    """One try at a change: `check` before changing, `saved` to save."""

    def __init__(self, save: Callable[..., Sequence[Any]], expected_version: int | None) -> None:
        self._save = save
        self.expected_version = expected_version
        #: What the successful save recorded (e.g. to wait for a read model to apply it).
        self.recordings: Sequence[Any] = ()

    def check(self, aggregate: Versioned) -> None:
        check_version(aggregate, self.expected_version)

    def saved(self, *aggregates: Any) -> bool:
        """Save; False when another writer saved first (try again on fresh state), unless the
        caller gave If-Match: then StaleVersion."""
        try:
            self.recordings = self._save(*aggregates)
        except IntegrityError:
            if self.expected_version is not None:
                raise StaleVersion(
                    "the aggregate changed meanwhile; reload and retry", field="If-Match"
                ) from None
            return False
        return True


class OptimisticWrites:
    """An application's write loop: ``OptimisticWrites(app.save)``."""

    def __init__(
        self,
        save: Callable[..., Sequence[Any]],
        *,
        max_retries: int = MAX_RETRIES,
        stripes: int = LOCK_STRIPES,
        pause: Callable[[int], None] = back_off,
    ) -> None:
        self._save = save
        self.max_retries = max_retries
        self._pause = pause
        self._locks = [threading.Lock() for _ in range(stripes)]

    def locked(self, aggregate_id: uuid.UUID) -> threading.Lock:
        """The lock this process's writers of ``aggregate_id`` queue on (``with`` it)."""
        return self._locks[aggregate_id.int % len(self._locks)]

    def attempt(self, expected_version: int | None = None) -> Attempt:
        """A single try (for a change that is not retried: a collision is then the caller's)."""
        return Attempt(self._save, expected_version)

    def attempts(self, expected_version: int | None = None) -> Iterator[Attempt]:
        """Up to `max_retries` tries, pausing between them (after the last, the caller
        raises `contention()`)."""
        for number in range(self.max_retries):
            if number:
                self._pause(number - 1)
            yield Attempt(self._save, expected_version)


def contention() -> Conflict:
    """What a write loop raises when its last attempt collided too (409 ``contention``)."""
    return Conflict("too many concurrent changes; try again", code="contention")
