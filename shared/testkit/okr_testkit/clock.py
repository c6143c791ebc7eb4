"""The kits' time: relative to today, so a test passes on any date (docs/testing.md#time).

A kit's FakeClock starts at 01:00 UTC of the system clock's date: the time of day a test runs
at never matters, and it is before 10:00 in Asia/Shanghai (02:00 UTC), the members' default
zone and daily check time, so a test sees that day's check come. The kit's cycle runs 45 days
before to 46 days after that date (a quarter's 92 days): now is always well inside it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from okr_platform.clock import SystemClock

CYCLE_DAYS_BEFORE = 45
CYCLE_DAYS_AFTER = 46


def kit_start(today: date | None = None) -> datetime:
    """01:00 UTC of `today` (default: the system clock's date)."""
    day = today or SystemClock().now().date()
    return datetime.combine(day, time(1, 0), tzinfo=UTC)


def quarter_around(today: date) -> tuple[date, date]:
    """Start and end dates of a 92-day cycle with `today` inside it."""
    return today - timedelta(days=CYCLE_DAYS_BEFORE), today + timedelta(days=CYCLE_DAYS_AFTER)
