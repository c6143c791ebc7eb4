"""The daily checks (docs/domain.md#following): confidence and progress warnings at each
follower's chosen local time, once per follow per local day.

APScheduler wakes the notifier every `scheduler_tick_seconds`; what is due is decided from
the injected clock, so tests (and a developer with NOTIFIER_FAKE_CLOCK) control time. Each
follow's check time in its follower's IANA zone is computed with APScheduler's CronTrigger,
which knows daylight-saving gaps. Two replicas may both tick: the first to insert the
(follow, local date) row in `daily_checks` runs that check, the other skips it, and the
notifications' unique key backs this up."""

from __future__ import annotations

import logging
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from okr_events.consuming import ConsumerStore
from okr_events.notifier import ReminderSettings
from okr_platform.clock import Clock, utc_text
from okr_platform.replica.reads import OBJECTIVE_FACTS, facts_from_row, load_directory

from .domain import rules
from .notices import store_notices

log = logging.getLogger(__name__)

# Every active follow with its follower's time zone and the objective's facts.
DUE_FOLLOWS = (
    OBJECTIVE_FACTS.replace(
        "SELECT ", "SELECT f.follow_id, f.follower_id, f.settings, f.since, m.time_zone, ", 1
    )
    + """
JOIN follows f ON f.objective_id = o.objective_id
JOIN members m ON m.org_id = f.org_id AND m.member_id = f.follower_id
WHERE f.active = 1"""
)


def scheduled_time(check_time: str, time_zone: str, day_of: datetime) -> datetime:
    """Today's check time (in the follower's zone) on the local date of ``day_of``."""
    zone = _zone(time_zone)
    local_day = day_of.astimezone(zone).date()
    hour, minute = (int(part) for part in check_time.split(":"))
    trigger = CronTrigger(hour=hour, minute=minute, timezone=zone)
    midnight = datetime.combine(local_day, time.min, tzinfo=zone)
    fire = trigger.get_next_fire_time(None, midnight)
    assert fire is not None  # a daily cron always fires again
    return fire


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class DailyChecks:
    def __init__(self, store: ConsumerStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.runs = 0

    def run_due(self) -> int:
        """Run every daily check that is due now and has not run today; notifications made."""
        now = self.clock.now()
        made = 0
        for row in self.store.query(DUE_FOLLOWS):
            settings = ReminderSettings.model_validate_json(row["settings"])
            if not (settings.confidence_warning or settings.progress_warning):
                continue
            due = scheduled_time(settings.check_time, row["time_zone"], now)
            if now < due or row["since"] > utc_text(due):
                continue  # not yet today, or followed after today's check time
            made += self._check(row, settings, due, now)
        self.runs += 1
        return made

    def _check(self, row: Any, settings: ReminderSettings, due: datetime, now: datetime) -> int:
        local_day = due.date()  # `due` is in the follower's zone
        facts = facts_from_row(row)
        with self.store.transaction() as tx:
            claimed = tx.execute(
                """INSERT INTO daily_checks (follow_id, local_date, checked_at)
                VALUES (:follow_id, :local_date, :checked_at)
                ON CONFLICT DO NOTHING RETURNING follow_id""",
                {
                    "follow_id": row["follow_id"],
                    "local_date": local_day.isoformat(),
                    "checked_at": utc_text(now),
                },
            )
            if not claimed:
                return 0  # this check ran already (here or on another replica)
            changes = rules.daily_changes(facts, settings, now)
            if not changes:
                return 0
            directory = load_directory(tx.execute, facts.org_id)
            made = 0
            for change in changes:
                notices = rules.notices_for(
                    change,
                    objective=facts,
                    followers=[(row["follower_id"], settings)],
                    directory=directory,
                    fact_id=rules.daily_fact_id(local_day),
                )
                made += store_notices(tx, notices, utc_text(now))
            return made


class Scheduler:
    """APScheduler running the daily checks in a background thread."""

    def __init__(self, checks: DailyChecks, tick_seconds: float) -> None:
        self.checks = checks
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=tick_seconds),
            id="daily-checks",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(ZoneInfo("UTC")),
        )
        self.error: BaseException | None = None

    def _tick(self) -> None:
        try:
            made = self.checks.run_due()
            self.error = None
            if made:
                log.info("daily checks: %s notification(s)", made)
        except Exception as error:  # keep ticking: the next tick retries what is still due
            self.error = error
            log.exception("daily checks failed")

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
