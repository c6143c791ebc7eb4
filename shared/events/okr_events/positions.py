"""The read-your-writes wait of the consumer runtime (docs/read-models.md)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .transaction import TRANSIENT

log = logging.getLogger(__name__)


class PositionWatch:
    """The positions this process knows are applied, and the requests waiting for one.

    Commits made in this process notify the condition at once (no polling); a position applied
    by another process sharing the store is seen when a waiter re-reads the database, every
    `recheck` seconds while it waits."""

    recheck = 0.2

    def __init__(self, read: Callable[[str], int | None]) -> None:
        self._read = read
        self._known: dict[str, int] = {}
        self._changed = threading.Condition()

    def advanced(self, name: str, position: int) -> None:
        with self._changed:
            if position > self._known.get(name, 0):
                self._known[name] = position
                self._changed.notify_all()

    def forget(self) -> None:
        """Forget every known position (they were deleted: re-read them when asked)."""
        with self._changed:
            self._known.clear()

    def wake(self) -> None:
        """Let every waiter look again (e.g. the runner feeding the store stopped)."""
        with self._changed:
            self._changed.notify_all()

    def wait_for(
        self,
        name: str,
        position: int,
        timeout: float,
        give_up: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Block until position ``name`` is at least ``position``: True; False when
        ``timeout`` seconds pass, or as soon as ``give_up()`` says so."""
        deadline = time.monotonic() + timeout
        if name not in self._known:
            self._reread(name)
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._known.get(name, 0) >= position or give_up(),
                    timeout=max(0.0, min(self.recheck, deadline - time.monotonic())),
                )
                if self._known.get(name, 0) >= position:
                    return True
                if give_up() or time.monotonic() >= deadline:
                    return False
            self._reread(name)  # outside the lock: a slow database never blocks a commit

    def _reread(self, name: str) -> None:
        try:
            self.advanced(name, self._read(name) or 0)
        except TRANSIENT as error:  # the database is away: the wait times out, honestly
            log.debug("position %s unreadable: %s", name, error)
