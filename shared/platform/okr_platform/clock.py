"""The suite's one clock: what "now" is for every context (goals' event timestamps and board,
the notifier's daily checks, webhook retries, read marks...).

A service takes a `Clock` where it is built (GoalsService, NotifierService, their contexts) and
asks it, never `datetime.now()`, so a test can set the time: one FakeClock handed to both
contexts drives the whole suite (okr_testkit.suite). In production it is the SystemClock, the
default everywhere; a developer trying tomorrow's 10:00 check today runs the notifier with a
ticking FakeClock (NOTIFIER_FAKE_CLOCK)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that is set. Frozen, it stays where it is put (tests); ticking, it runs on
    from there at the real pace (a developer's stack travelling to tomorrow)."""

    def __init__(self, start: datetime | None = None, *, ticking: bool = False) -> None:
        self._lock = threading.Lock()
        self.ticking = ticking
        self.set(start or datetime.now(UTC))

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("the clock needs an aware datetime (with its UTC offset)")
        with self._lock:
            self._at = moment.astimezone(UTC)
            self._since = time.monotonic()

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

    def now(self) -> datetime:
        with self._lock:
            if not self.ticking:
                return self._at
            return self._at + timedelta(seconds=time.monotonic() - self._since)


def utc_text(moment: datetime) -> str:
    """How a time is stored as text: UTC ISO-8601 to the microsecond with a Z, fixed width
    ("2025-03-03T02:00:00.000000Z"), so stored times sort as text on SQLite and PostgreSQL.
    (isoformat, not strftime: it is on the notifier rebuild's hot path, about 3 times faster,
    and of the same width for every year.)"""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"
