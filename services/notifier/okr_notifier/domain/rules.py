"""The reminder rules (docs/domain.md#following): which fact becomes which work notification,
for whom.

Pure functions. The reminders (reminders.py) gather the facts (the objective as the replica
of goals' facts knows it, its followers, the directory) and store what these return; the
database's unique `dedupe_key` is what makes "nobody is told twice about the same fact" hold
under redelivery and with several notifier replicas."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from okr_events.notifier import ReminderSettings
from okr_events.vocabulary import OPEN_UNSCORED_STATUSES
from okr_platform.access import can_see, member_caller
from okr_platform.directory import OrgDirectory
from okr_platform.progress import is_behind
from okr_platform.replica import ObjectiveFacts  # goals' facts, as the replica keeps them

OBJECTIVE_CHANGED = "objective_changed"
PROGRESS_UPDATED = "progress_updated"
PROGRESS_WARNING = "progress_warning"
CONFIDENCE_WARNING = "confidence_warning"
KEY_TASK_CREATED = "key_task_created"
RULES = (
    OBJECTIVE_CHANGED,
    PROGRESS_UPDATED,
    PROGRESS_WARNING,
    CONFIDENCE_WARNING,
    KEY_TASK_CREATED,
)


@dataclass(frozen=True)
class Change:
    """A fact about an objective that a rule reminds followers of."""

    rule: str
    message_key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """One work notification to store (and deliver)."""

    recipient_id: str
    objective_id: str
    org_id: str
    rule: str
    dedupe_key: str
    message_key: str
    params: dict[str, Any]
    link: str


def wants(settings: ReminderSettings, rule: str) -> bool:
    return bool(getattr(settings, rule))


def notices_for(
    change: Change,
    *,
    objective: ObjectiveFacts,
    followers: Iterable[tuple[str, ReminderSettings]],
    directory: OrgDirectory,
    fact_id: str,
    actor: str | None = None,
) -> list[Notice]:
    """The followers to tell about ``change``: those who asked for the rule, can still see the
    objective, and did not cause the change themselves. ``fact_id`` identifies the fact (an
    event id, or a date for daily checks) in the dedupe key."""
    notices = []
    for follower_id, settings in followers:
        if follower_id == actor or not wants(settings, change.rule):
            continue
        if not can_see(
            member_caller(follower_id),  # a follower has no token: the directory speaks for them
            directory,
            visibility=objective.visibility,
            owner_ids=objective.owner_ids,
            department_id=objective.department_id,
        ):
            continue
        notices.append(
            Notice(
                recipient_id=follower_id,
                objective_id=objective.objective_id,
                org_id=objective.org_id,
                rule=change.rule,
                dedupe_key=dedupe_key(change.rule, objective.objective_id, follower_id, fact_id),
                message_key=change.message_key,
                params={"objective_title": objective.title, **change.params},
                link=objective.link,
            )
        )
    return notices


def dedupe_key(rule: str, objective_id: str, follower_id: str, fact_id: str) -> str:
    return f"{rule}:{objective_id}:{follower_id}:{fact_id}"


def progress_warning(objective: ObjectiveFacts, now: datetime) -> Change | None:
    """Behind pace (docs/domain.md#progress): progress < expected x threshold."""
    expected = objective.expected(now)
    if objective.status not in OPEN_UNSCORED_STATUSES or expected is None:
        return None
    if not is_behind(objective.progress, expected, objective.threshold):
        return None
    return Change(
        PROGRESS_WARNING,
        "progress_warning",
        {
            "progress": round(objective.progress, 4),
            "expected": round(expected, 4),
            "threshold": objective.threshold,
        },
    )


def confidence_warning(objective: ObjectiveFacts, below: int) -> Change | None:
    """Confidence (the lowest of the KRs') under the follower's threshold."""
    if objective.status not in OPEN_UNSCORED_STATUSES or objective.confidence is None:
        return None
    if objective.confidence >= below:
        return None
    return Change(
        CONFIDENCE_WARNING,
        "confidence_warning",
        {"confidence": objective.confidence, "below": below},
    )


def daily_changes(
    objective: ObjectiveFacts, settings: ReminderSettings, now: datetime
) -> list[Change]:
    """What the once-a-day check at the follower's chosen time reminds of."""
    changes = []
    if settings.confidence_warning:
        change = confidence_warning(objective, settings.confidence_below)
        if change:
            changes.append(change)
    if settings.progress_warning:
        change = progress_warning(objective, now)
        if change:
            changes.append(change)
    return changes


def daily_fact_id(local_day: date) -> str:
    return f"day:{local_day.isoformat()}"
