"""The replica's appliers of an objective's events: created, edited, its status.

Each writes only the objective's own row (see the invariant in okr_platform.replica); its
key results' events are in key_result_appliers.py."""

from __future__ import annotations

import json
from typing import Any

from okr_events import goals
from okr_events.base import EventContract
from okr_events.codec import InboundEvent

from ..clock import utc_text
from .batch import Applier, ReplicaBatch
from .facts import FactsChange


def _objective_created(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    objective_id = str(c.aggregate_id)
    at = utc_text(c.occurred_at)
    batch.tx.execute(
        """INSERT INTO objectives (objective_id, org_id, cycle_id, title, level, owner_type,
            owner_id, owner_ids, department_id, visibility, weight, status, progress, updated_at)
        VALUES (:objective_id, :org_id, :cycle_id, :title, :level, :owner_type, :owner_id,
            :owner_ids, :department_id, :visibility, :weight, 'draft', 0, :at)
        ON CONFLICT (objective_id) DO NOTHING""",
        {
            "objective_id": objective_id,
            "org_id": str(c.org_id),
            "cycle_id": str(c.cycle_id),
            "title": c.title,
            "level": c.level,
            "owner_type": c.owner_type,
            "owner_id": c.owner_id,
            "owner_ids": json.dumps(c.responsible_ids),
            "department_id": c.department_id,
            "visibility": c.visibility,
            "weight": c.weight,
            "at": at,
        },
    )
    return FactsChange(event, at, objective_id=objective_id)


#: The fields of ObjectiveEdited.changes the replica keeps (the description it does not).
_OBJECTIVE_COLUMNS = ("title", "level", "visibility", "weight", "department_id")


def _objective_edited(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    objective_id = str(c.aggregate_id)
    changes = {k: v for k, v in c.changes.items() if k in _OBJECTIVE_COLUMNS}
    if changes:
        assignments = ", ".join(f"{column} = :{column}" for column in changes)  # known names
        batch.tx.execute(
            f"UPDATE objectives SET {assignments} WHERE objective_id = :objective_id",
            {**changes, "objective_id": objective_id},
        )
    return FactsChange(event, utc_text(c.occurred_at), objective_id=objective_id)


OBJECTIVE_STATUS: dict[type[EventContract], str] = {
    goals.ObjectiveSubmittedForApproval: "pending_approval",
    goals.ObjectiveActivated: "active",
    goals.ObjectiveApproved: "active",
    goals.ObjectiveRejected: "draft",
    goals.ObjectiveScoringStarted: "scoring",
    goals.ObjectiveScored: "scored",
    goals.ObjectiveClosed: "closed",
    goals.ObjectiveCancelled: "cancelled",
}


def _objective_moved(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    """Pending until the flush (a rebuild activates every objective)."""
    objective_id = str(c.aggregate_id)
    batch.statuses[objective_id] = {
        "objective_id": objective_id,
        "status": OBJECTIVE_STATUS[type(c)],
    }
    return FactsChange(event, utc_text(c.occurred_at), objective_id=objective_id)


APPLIERS: dict[type[Any], Applier] = {
    goals.ObjectiveCreated: _objective_created,
    goals.ObjectiveEdited: _objective_edited,
    **dict.fromkeys(OBJECTIVE_STATUS, _objective_moved),
}
