"""The replica's appliers of key results' events: added, edited, retargeted, removed, checked
in; and the objective's progress recomputed after each structural change.

All write only the rows of the event's objective: its key_results and its objectives row (see
the invariant in okr_platform.replica). Progress formulas: okr_platform.progress."""

from __future__ import annotations

from typing import Any

from okr_events import goals
from okr_events.codec import InboundEvent

from ..clock import utc_text
from ..progress import metric_progress, weighted_progress
from .batch import Applier, ReplicaBatch
from .facts import FactsChange, KRPoint


def _kr_added(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    """Pending until the flush (a rebuild adds thousands of KRs per batch): the objective's
    progress is recomputed from the batch's view of its KRs (`ReplicaBatch.progress_of`)."""
    objective_id = str(c.aggregate_id)
    progress = (
        (1.0 if c.current else 0.0)
        if c.kind == "boolean"
        else metric_progress(c.start, c.target, c.current)
    )
    known = batch.progress_of(objective_id)
    batch.kr_inserts.setdefault(
        (objective_id, c.kr_id),
        {
            "objective_id": objective_id,
            "kr_id": c.kr_id,
            "title": c.title,
            "kind": c.kind,
            "unit": c.unit,
            "unit_label": c.unit_label,
            "start_value": c.start,
            "target": c.target,
            "current_value": c.current,
            "progress": progress,
            "confidence": None,
            "risk": "normal",
            "weight": c.weight,
            "active": 1,
            "owner_id": c.owner_id,
            "due_date": c.due_date.isoformat() if c.due_date else None,
        },
    )
    if known is not None:
        known.krs.setdefault(c.kr_id, (c.weight, progress))  # as the insert: DO NOTHING
    batch.targets[(objective_id, c.kr_id)] = c.target
    at = utc_text(c.occurred_at)
    return FactsChange(
        event,
        at,
        objective_id=objective_id,
        kr=KRPoint(c.kr_id, c.title, c.current, c.target, progress),
        objective_progress=recompute_progress(batch, objective_id, at),
    )


#: KeyResultEdited.changes field -> key_results column (goals' editable KR fields).
_KR_COLUMNS = {
    "title": "title",
    "weight": "weight",
    "unit_label": "unit_label",
    "owner_id": "owner_id",
    "due_date": "due_date",  # ISO date text in the contract's changes, as stored
}


def _kr_edited(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    batch.flush()  # it writes key_results directly: a KR added in this batch must be there
    objective_id = str(c.aggregate_id)
    changes = {_KR_COLUMNS[k]: v for k, v in c.changes.items() if k in _KR_COLUMNS}
    if changes:
        assignments = ", ".join(f"{column} = :{column}" for column in changes)
        batch.tx.execute(
            f"""UPDATE key_results SET {assignments}
            WHERE objective_id = :objective_id AND kr_id = :kr_id""",
            {**changes, "objective_id": objective_id, "kr_id": c.kr_id},
        )
    at = utc_text(c.occurred_at)
    return FactsChange(
        event,
        at,
        objective_id=objective_id,
        objective_progress=(
            recompute_progress(batch, objective_id, at) if "weight" in changes else None
        ),
    )


def _target_changed(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    """``kr`` is None (and nothing changes) when the replica does not know the KR."""
    batch.flush()
    objective_id = str(c.aggregate_id)
    at = utc_text(c.occurred_at)
    rows = batch.tx.execute(
        """SELECT start_value, current_value, title FROM key_results
        WHERE objective_id = :objective_id AND kr_id = :kr_id""",
        {"objective_id": objective_id, "kr_id": c.kr_id},
    )
    if not rows:
        return FactsChange(event, at, objective_id=objective_id)
    kr = rows[0]
    progress = metric_progress(kr["start_value"], c.new_target, kr["current_value"])
    batch.tx.execute(
        """UPDATE key_results SET target = :target, progress = :progress
        WHERE objective_id = :objective_id AND kr_id = :kr_id""",
        {
            "target": c.new_target,
            "progress": progress,
            "objective_id": objective_id,
            "kr_id": c.kr_id,
        },
    )
    batch.targets[(objective_id, c.kr_id)] = c.new_target
    return FactsChange(
        event,
        at,
        objective_id=objective_id,
        kr=KRPoint(c.kr_id, kr["title"], kr["current_value"], c.new_target, progress),
        objective_progress=recompute_progress(batch, objective_id, at),
    )


def _kr_removed(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    """``kr``: the KR as it was when removed (None if the replica did not know it)."""
    batch.flush()
    objective_id = str(c.aggregate_id)
    rows = batch.tx.execute(
        """SELECT title, current_value, target, progress FROM key_results
        WHERE objective_id = :objective_id AND kr_id = :kr_id""",
        {"objective_id": objective_id, "kr_id": c.kr_id},
    )
    batch.tx.execute(
        "UPDATE key_results SET active = 0 WHERE objective_id = :objective_id AND kr_id = :kr_id",
        {"objective_id": objective_id, "kr_id": c.kr_id},
    )
    at = utc_text(c.occurred_at)
    kr = rows[0] if rows else None
    return FactsChange(
        event,
        at,
        objective_id=objective_id,
        kr=(
            KRPoint(c.kr_id, kr["title"], kr["current_value"], kr["target"], kr["progress"])
            if kr is not None
            else None
        ),
        objective_progress=recompute_progress(batch, objective_id, at),
    )


def _check_in(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    """The hot path: pending writes only, no read (see batch.py)."""
    objective_id = str(c.aggregate_id)
    after = c.after
    at = utc_text(c.occurred_at)
    batch.kr_updates[(objective_id, c.kr_id)] = {
        "objective_id": objective_id,
        "kr_id": c.kr_id,
        "current_value": after.current,
        "progress": after.progress,
        "confidence": after.confidence,
        "risk": after.risk,
    }
    batch.objective_progress[objective_id] = {
        "objective_id": objective_id,
        "progress": c.objective_progress_after,
        "updated_at": at,
    }
    return FactsChange(event, at, objective_id=objective_id)


def recompute_progress(
    batch: ReplicaBatch, objective_id: str, at: str
) -> tuple[float, float] | None:
    """Recompute an objective's progress from its active KRs after a structural change (the
    batch's view of them, with its pending check-ins overlaid) and keep it pending; (before,
    after), or None if the objective is unknown."""
    known = batch.progress_of(objective_id)
    if known is None:
        return None
    pending = batch.objective_progress.get(objective_id)
    before = pending["progress"] if pending else known.progress
    after = weighted_progress(
        (weight, batch.kr_progress(objective_id, kr_id, progress))
        for kr_id, (weight, progress) in sorted(known.krs.items())  # one order, live or not
    )
    batch.objective_progress[objective_id] = {
        "objective_id": objective_id,
        "progress": after,
        "updated_at": at,
    }
    return before, after


APPLIERS: dict[type[Any], Applier] = {
    goals.KeyResultAdded: _kr_added,
    goals.KeyResultEdited: _kr_edited,
    goals.KeyResultTargetChanged: _target_changed,
    goals.KeyResultRemoved: _kr_removed,
    goals.KRProgressUpdated: _check_in,
}
