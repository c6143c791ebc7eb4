"""The projection of goals' own log into its views: the goal board, cycles list, activity log.

A handler of the consumer runtime (okr_events.consuming.EventHandler) fed by a
`ReadModelRunner` with goals' domain events: each event's rows and the log position commit in
one transaction, so a restart resumes exactly where it stopped and never applies an event
twice. It folds an objective's events with the aggregate's own methods, so the view's progress
is the domain's progress.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from typing import Any

from eventsourcing.application import Repository
from okr_events.consuming import Tx
from okr_events.in_process import RecordedEvent
from okr_events.tracing import TRACE_CONTEXT_KEY

from ..domain.cycle import Cycle
from ..domain.objective import Objective
from ..summaries import cycle_summary, objective_summary
from .schema import CREATE_STATEMENTS, INSERT_ACTIVITY, UPSERT_CYCLE, UPSERT_OBJECTIVE

ACTIONS = {
    "ObjectiveCreated": "objective.created",
    "ObjectiveEdited": "objective.edited",
    "KeyResultAdded": "key_result.added",
    "KeyResultEdited": "key_result.edited",
    "KeyResultTargetChanged": "key_result.target_changed",
    "KeyResultRemoved": "key_result.removed",
    "KRProgressUpdated": "key_result.checked_in",
    "ObjectiveAligned": "objective.aligned",
    "ObjectiveUnaligned": "objective.unaligned",
    "ObjectiveSubmittedForApproval": "objective.submitted",
    "ObjectiveActivated": "objective.activated",
    "ObjectiveApproved": "objective.approved",
    "ObjectiveRejected": "objective.rejected",
    "ObjectiveScoringStarted": "objective.scoring_started",
    "ObjectiveScored": "objective.scored",
    "ObjectiveClosed": "objective.closed",
    "ObjectiveCancelled": "objective.cancelled",
}


def event_payload(event: Any) -> dict[str, Any]:
    """An event's own attributes, JSON-ready (ids and dates as strings).

    The stored trace context is operational metadata, not history: left out."""
    skip = {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        TRACE_CONTEXT_KEY,
    }
    return {k: _jsonable(v) for k, v in event.__dict__.items() if k not in skip and k != "actor"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class GoalViewsProjection:
    """Objective and cycle events -> view rows; the directory's events change nothing here."""

    name = "goals_views"
    create_statements = CREATE_STATEMENTS

    def __init__(self, repository: Repository[uuid.UUID], max_cached: int = 2_000) -> None:
        self._repository = repository
        # The objectives being folded, most recently used last; a miss reloads from the store.
        self._objectives: OrderedDict[uuid.UUID, Objective] = OrderedDict()
        self._max_cached = max_cached

    def handle(self, event: RecordedEvent, tx: Tx) -> None:
        domain_event = event.domain_event
        if isinstance(domain_event, Objective.Event):
            self._objective_event(domain_event, tx)
        elif isinstance(domain_event, Cycle.Event):
            self._cycle_event(domain_event, tx)

    def _cycle_event(self, event: Any, tx: Tx) -> None:
        cycle: Cycle = self._repository.get(event.originator_id, version=event.originator_version)
        summary = cycle_summary(cycle)
        row = {
            "cycle_id": summary["id"],
            "org_id": summary["org_id"],
            "start_date": summary["start_date"],
            "doc": json.dumps(summary, ensure_ascii=False),
        }
        tx.execute(UPSERT_CYCLE, row)

    def _fold(self, event: Objective.Event) -> Objective:
        """The objective after ``event``. A cached copy one version behind takes the event
        (a rolled-back batch leaves copies ahead of the store: they miss and reload)."""
        cached = self._objectives.pop(event.originator_id, None)
        if cached is not None and cached.version == event.originator_version - 1:
            objective = event.mutate(cached)
        elif event.originator_version == 1:
            objective = event.mutate(None)
        else:
            objective = self._repository.get(event.originator_id, version=event.originator_version)
        assert isinstance(objective, Objective)
        self._objectives[event.originator_id] = objective
        if len(self._objectives) > self._max_cached:
            self._objectives.popitem(last=False)
        return objective

    def _objective_event(self, event: Any, tx: Tx) -> None:
        objective = self._fold(event)
        summary = objective_summary(objective)
        row = {
            "objective_id": summary["id"],
            "org_id": summary["org_id"],
            "cycle_id": summary["cycle_id"],
            "department_id": summary["department_id"],
            "owner_id": summary["owner_id"],
            "status": summary["status"],
            "level": summary["level"],
            "version": summary["version"],
            "doc": json.dumps(summary, ensure_ascii=False),
        }
        name = type(event).__name__
        activity = {
            "objective_id": summary["id"],
            "version": event.originator_version,
            "at": event.timestamp.isoformat(),
            "actor": event.actor,
            "action": ACTIONS.get(name, name),
            "params": json.dumps(event_payload(event), ensure_ascii=False),
        }
        tx.execute(UPSERT_OBJECTIVE, row)
        tx.execute(INSERT_ACTIVITY, activity)
