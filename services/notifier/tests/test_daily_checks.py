"""The daily checks: confidence (and progress) warnings at each follower's local check time,
once per follow per local day, driven by a clock the test sets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from okr_notifier.scheduler import DailyChecks, scheduled_time
from okr_testkit.suite import Suite


def tomorrow(suite: Suite) -> date:
    """The day after the suite's clock: ask before moving it."""
    return (suite.clock.now() + timedelta(days=1)).date()


def at(local: time, zone: str, day: date) -> datetime:
    return datetime.combine(day, local, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def warnings(suite: Suite, member: str) -> list[dict]:
    return [n for n in suite.inbox(member)["items"] if n["rule"] == "confidence_warning"]


def move_to(suite: Suite, member: str, zone: str) -> None:
    r = suite.client.patch(
        f"/directory/members/{member}", json={"time_zone": zone}, headers=suite.org.admin
    )
    assert r.status_code == 200, r.text


def next_local(local: time, zone: str, after: datetime) -> datetime:
    """The first moment at `local` o'clock in `zone` after `after`."""
    day = after.astimezone(ZoneInfo(zone)).date()
    while (moment := at(local, zone, day)) <= after:
        day += timedelta(days=1)
    return moment


def test_confidence_warning_at_ten_in_each_followers_time_zone(suite: Suite):
    move_to(suite, "lufei", "America/New_York")  # mengbo stays in Asia/Shanghai
    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"])
    suite.follow("lufei", objective["id"])
    suite.follow("boss", objective["id"], confidence_warning=False)
    suite.check_in("bailu", objective, current=20, confidence=1)
    checks = suite.service.checks
    followed = suite.clock.now()
    # Each follower's first 10:00 after following, in their own zone, in the order they come.
    firsts = sorted(
        (next_local(time(10), zone, followed), member)
        for member, zone in (("mengbo", "Asia/Shanghai"), ("lufei", "America/New_York"))
    )
    suite.clock.set(firsts[0][0] - timedelta(minutes=1))
    assert checks.run_due() == 0
    for moment, member in firsts:
        suite.clock.set(moment - timedelta(minutes=1))
        assert checks.run_due() == 0
        suite.clock.set(moment)
        assert checks.run_due() == 1
        [warning] = warnings(suite, member)
        assert warning["params"] == {
            "objective_title": objective["title"],
            "confidence": 1,
            "below": 2,
        }
        assert checks.run_due() == 0  # once a day, however often the scheduler ticks
    assert warnings(suite, "boss") == []

    suite.clock.set(firsts[-1][0] + timedelta(days=1))
    assert checks.run_due() == 2  # a new local day for both: still below, warned again
    assert len(warnings(suite, "mengbo")) == 2 and len(warnings(suite, "lufei")) == 2


def test_threshold_and_time_are_the_followers_choice(suite: Suite):
    day = tomorrow(suite)
    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"], confidence_below=3, check_time="08:15")
    suite.follow("boss", objective["id"])  # below 2 stars: 2 stars is fine
    suite.check_in("bailu", objective, current=20, confidence=2)
    suite.clock.set(at(time(8, 15), "Asia/Shanghai", day))
    assert suite.service.checks.run_due() == 1
    assert len(warnings(suite, "mengbo")) == 1
    suite.clock.set(at(time(10, 0), "Asia/Shanghai", day))
    assert suite.service.checks.run_due() == 0
    assert warnings(suite, "boss") == []


def test_no_warning_without_low_confidence_or_for_a_closed_objective(suite: Suite):
    day = tomorrow(suite)
    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"])
    suite.check_in("bailu", objective, current=20)  # never rated
    cancelled = suite.org.active_objective("bailu")
    suite.follow("mengbo", cancelled["id"])
    suite.check_in("bailu", cancelled, current=20, confidence=1)
    r = suite.client.post(
        f"/objectives/{cancelled['id']}/cancel",
        json={"reason": "dropped"},
        headers=suite.h("bailu"),
    )
    assert r.status_code == 200, r.text
    suite.settle()
    suite.clock.set(at(time(10, 0), "Asia/Shanghai", day))
    assert suite.service.checks.run_due() == 0
    assert warnings(suite, "mengbo") == []


def test_two_replicas_run_each_check_once(suite_factory):
    suite = suite_factory("postgres")
    day = tomorrow(suite)
    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"])
    suite.check_in("bailu", objective, current=20, confidence=1)
    suite.clock.set(at(time(10, 0), "Asia/Shanghai", day))
    # A second replica: its own store connection and checks over the same database.
    from okr_notifier.service import open_store

    other_store = open_store(suite.service.settings)
    try:
        replicas = [suite.service.checks, DailyChecks(other_store, suite.clock)]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            made = list(pool.map(lambda checks: checks.run_due(), replicas))
    finally:
        other_store.datastore.close()
    assert sorted(made) == [0, 1]
    assert len(warnings(suite, "mengbo")) == 1


def test_check_time_follows_daylight_saving():
    winter = scheduled_time("10:00", "Europe/Berlin", datetime(2026, 1, 15, 12, tzinfo=UTC))
    summer = scheduled_time("10:00", "Europe/Berlin", datetime(2026, 7, 15, 12, tzinfo=UTC))
    assert winter.astimezone(UTC).hour == 9 and summer.astimezone(UTC).hour == 8
    # 02:30 does not exist on the spring-forward night: the check still runs that day.
    gap = scheduled_time("02:30", "Europe/Berlin", datetime(2026, 3, 29, 12, tzinfo=UTC))
    assert gap.date().isoformat() == "2026-03-29"


def test_the_scheduler_ticks_with_apscheduler(suite_factory):
    suite = suite_factory("sqlite")
    day = tomorrow(suite)
    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"])
    suite.check_in("bailu", objective, current=20, confidence=1)
    suite.clock.set(at(time(10, 0), "Asia/Shanghai", day))
    from okr_notifier.scheduler import Scheduler

    scheduler = Scheduler(suite.service.checks, tick_seconds=0.1)
    scheduler.start()
    try:
        import time as clock

        deadline = clock.monotonic() + 5
        while not warnings(suite, "mengbo"):
            assert clock.monotonic() < deadline, "the scheduler never ran the check"
            clock.sleep(0.05)
    finally:
        scheduler.stop()
    assert scheduler.error is None
