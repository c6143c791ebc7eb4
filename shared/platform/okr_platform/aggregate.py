"""The aggregates' base class: every event they record is stamped by one injectable clock.

eventsourcing stamps a new event with `create_timestamp()`, a static method of the event class
that it calls with no context at all, so the clock cannot be handed to a command or an
aggregate: it is held here, one per process. Each context's service installs its clock when it
is built (GoalsService, NotifierService; okr_platform.clock.SystemClock in production, the
default) and puts the system clock back when it closes. In tests one FakeClock drives every
context, so "due at the check-in's time" or "followed since" mean the same moment to all of
them. The contexts of one process share the clock: a service built with another clock
replaces the clock of those built before.

Thread-safe: the installed clock is one reference, rebound whole (atomic in CPython), and the
clocks themselves are safe to read from many threads (FakeClock holds a lock)."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate

from okr_platform.clock import Clock, SystemClock

_event_clock: Clock = SystemClock()


def install_event_clock(clock: Clock) -> None:
    """Stamp the goals events recorded from now on with `clock`."""
    global _event_clock
    _event_clock = clock


def event_clock() -> Clock:
    return _event_clock


class ClockedAggregate(Aggregate):
    """Aggregate whose events (and created event) take their timestamp from event_clock()."""

    class Event(Aggregate.Event):
        @staticmethod
        def create_timestamp() -> datetime:
            return _event_clock.now()

    class Created(Event, Aggregate.Created):
        pass
