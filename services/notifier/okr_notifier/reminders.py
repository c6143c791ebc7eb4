"""The live path's reminders: which event is which `rules.Change` for whose followers.

After the replica of goals' facts has applied an event (okr_platform.replica), `Reminders`
turns it into a Change (from the contract and the event's `FactsChange`: a KR's title as the
replica held it, for instance), flushes the batch, reads the objective's facts, followers and
directory, and stores what domain/rules.py decides. Off during a rebuild: replaying history
must not tell anyone again, and these reads cross aggregates (an objective's cycle,
organisation, followers), which a partition-parallel rebuild forbids."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from okr_events import execution, goals
from okr_events.codec import InboundEvent
from okr_platform.clock import utc_text
from okr_platform.replica import FactsChange, ObjectiveFacts, ReplicaBatch
from okr_platform.replica.objective_appliers import OBJECTIVE_STATUS
from okr_platform.replica.reads import DirectoryCache, objective_facts_and_org_version

from .domain import rules
from .domain.rules import Change
from .notices import followers_of, member_name, store_notices

#: What follows from the objective's facts once a change is applied (a check-in's warning).
Then = Callable[[ObjectiveFacts], Change | None]
#: An event's reminder: the objective, the change, and what follows; None for no reminder.
Reminder = tuple[str, Change | None, Then | None]


class Reminders:
    """Raises the notifications of the live path (see the module docstring)."""

    def __init__(self, on_notified: Callable[[], None]) -> None:
        self.on_notified = on_notified
        self.directories = DirectoryCache()

    def remind_of(
        self, event: InboundEvent, change: FactsChange | None, batch: ReplicaBatch
    ) -> None:
        make = _REMINDERS.get(type(event.contract))
        reminder = make(event.contract, change, batch) if make is not None else None
        if reminder is not None:
            self.remind(batch, event, *reminder)

    def remind(
        self,
        batch: ReplicaBatch,
        event: InboundEvent,
        objective_id: str,
        change: Change | None,
        then: Then | None = None,
    ) -> None:
        """Tell the objective's followers about ``change`` and about what ``then`` makes of
        the objective's facts after it: one read of the facts, followers and directory for
        both."""
        if change is None and then is None:
            return
        batch.flush()
        found = objective_facts_and_org_version(batch.tx.execute, objective_id)
        if found is None:
            return
        facts, org_version = found
        followers = followers_of(batch.tx, objective_id)
        if not followers:
            return
        changes = [change, then(facts) if then else None]
        directory = self.directories.get(batch, facts.org_id, org_version)
        actor = event.contract.actor
        notices = [
            notice
            for each in changes
            if each is not None
            for notice in rules.notices_for(
                Change(
                    each.rule,
                    each.message_key,
                    {"actor_name": member_name(directory, actor), **each.params},
                ),
                objective=facts,
                followers=followers,
                directory=directory,
                fact_id=event.event_id,
                actor=actor,
            )
        ]
        if store_notices(batch.tx, notices, utc_text(event.contract.occurred_at)):
            batch.tx.after_commit(self.on_notified)  # a woken reader must see the rows


def _objective_changed(message_key: str, **params: Any) -> Change:
    return Change(rules.OBJECTIVE_CHANGED, f"objective_changed.{message_key}", params)


def _edited(c: Any, change: FactsChange | None, batch: ReplicaBatch) -> Reminder:
    return (
        str(c.aggregate_id),
        _objective_changed("edited", fields=", ".join(sorted(c.changes))),
        None,
    )


def _kr_added(c: Any, change: FactsChange | None, batch: ReplicaBatch) -> Reminder:
    return str(c.aggregate_id), _objective_changed("kr_added", kr_title=c.title), None


def _kr_edited(c: Any, change: FactsChange | None, batch: ReplicaBatch) -> Reminder:
    objective_id = str(c.aggregate_id)
    title = batch.kr_title(objective_id, c.kr_id)  # as edited
    return (
        objective_id,
        _objective_changed("kr_edited", kr_title=title, fields=", ".join(c.changes)),
        None,
    )


def _target_changed(c: Any, change: FactsChange | None, batch: ReplicaBatch) -> Reminder | None:
    if change is None or change.kr is None:
        return None  # a KR the replica does not know: nothing changed
    return (
        str(c.aggregate_id),
        _objective_changed(
            "target_changed",
            kr_title=change.kr.title,
            old_target=c.old_target,
            new_target=c.new_target,
            reason=c.reason,
        ),
        None,
    )


def _kr_removed(c: Any, change: FactsChange | None, batch: ReplicaBatch) -> Reminder:
    title = change.kr.title if change is not None and change.kr is not None else c.kr_id
    return (
        str(c.aggregate_id),
        _objective_changed("kr_removed", kr_title=title, reason=c.reason),
        None,
    )


def _check_in(c: Any, change: FactsChange | None, batch: ReplicaBatch) -> Reminder:
    objective_id = str(c.aggregate_id)
    before, after = c.before, c.after
    moment: datetime = c.occurred_at
    return (
        objective_id,
        Change(
            rules.PROGRESS_UPDATED,
            "progress_updated",
            {
                "kr_title": batch.kr_title(objective_id, c.kr_id),
                "progress_before": before.progress,
                "progress_after": after.progress,
                "value_before": before.current,
                "value_after": after.current,
                "confidence_before": before.confidence,
                "confidence_after": after.confidence,
                "risk_after": after.risk,
                "note": c.note,
                "source": c.source,
            },
        ),
        lambda facts: rules.progress_warning(facts, moment),
    )


def _status(c: Any, change: FactsChange | None, batch: ReplicaBatch) -> Reminder:
    return str(c.aggregate_id), _objective_changed("status", status=OBJECTIVE_STATUS[type(c)]), None


def _alignment(c: Any, change: FactsChange | None, batch: ReplicaBatch) -> Reminder:
    kind = "aligned" if isinstance(c, goals.ObjectiveAligned) else "unaligned"
    return (
        str(c.aggregate_id),
        _objective_changed(
            kind,
            parent_objective_id=str(c.parent_objective_id),
            parent_kr_id=c.parent_kr_id,
        ),
        None,
    )


def _key_task_created(c: Any, change: FactsChange | None, batch: ReplicaBatch) -> Reminder:
    objective_id = str(c.objective_id)
    return (
        objective_id,
        Change(
            rules.KEY_TASK_CREATED,
            "key_task_created",
            {
                "task_title": c.title,
                "task_id": str(c.aggregate_id),
                "kr_title": batch.kr_title(objective_id, c.kr_id),
                "assignee_id": c.assignee_id,
            },
        ),
        None,
    )


_REMINDERS: dict[type[Any], Callable[[Any, FactsChange | None, ReplicaBatch], Reminder | None]] = {
    goals.ObjectiveEdited: _edited,
    goals.KeyResultAdded: _kr_added,
    goals.KeyResultEdited: _kr_edited,
    goals.KeyResultTargetChanged: _target_changed,
    goals.KeyResultRemoved: _kr_removed,
    goals.KRProgressUpdated: _check_in,
    **dict.fromkeys(OBJECTIVE_STATUS, _status),
    goals.ObjectiveAligned: _alignment,
    goals.ObjectiveUnaligned: _alignment,
    execution.KeyTaskCreated: _key_task_created,
}
