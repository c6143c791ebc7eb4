"""Progress history: one row per change of a KR's or an objective's progress (kr_id '' = the
objective), what the history route and the operations report read.

Made from what the replica of goals' facts (okr_platform.replica) did with each event, in the
same batch: the KR's values and the objective's recomputed progress come in its `FactsChange`,
a check-in's KR target through `ReplicaBatch.fill_target` (the hot path reads nothing). The
rows are written once, after the replica's last flush of the batch (when every target is
known). Like the replica's, these rows belong to the event's own objective."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from okr_events import goals
from okr_platform.replica import FactsChange, ReplicaBatch

HISTORY_COLUMNS = (
    "objective_id", "kr_id", "version", "at", "actor", "source", "check_in_id",
    "value_before", "value_after", "target", "progress_before", "progress_after",
    "confidence_before", "confidence_after", "risk_after", "note",
)  # fmt: skip


class ProgressHistory:
    """The progress_history rows of one batch, pending until `flush`."""

    def __init__(self, batch: ReplicaBatch) -> None:
        self.batch = batch
        self.rows: list[dict[str, Any]] = []

    def flush(self) -> None:
        """Write the rows; after the replica batch's flush, which fills their targets."""
        self.batch.tx.insert_many(
            "progress_history",
            HISTORY_COLUMNS,
            self.rows,
            on_conflict="ON CONFLICT (objective_id, kr_id, version) DO NOTHING",
        )
        self.rows.clear()

    def row(
        self,
        c: Any,
        change: FactsChange,
        kr_id: str,
        source: str,
        value_before: float | None,
        value_after: float | None,
        target: float | None,
        progress_before: float | None,
        progress_after: float,
        note: str = "",
    ) -> None:
        self.rows.append(
            {
                "objective_id": change.objective_id,
                "kr_id": kr_id,
                "version": c.aggregate_version,
                "at": change.at,
                "actor": c.actor,
                "source": source,
                "check_in_id": None,
                "value_before": value_before,
                "value_after": value_after,
                "target": target,
                "progress_before": progress_before,
                "progress_after": progress_after,
                "confidence_before": None,
                "confidence_after": None,
                "risk_after": None,
                "note": note,
            }
        )

    def objective_row(self, c: Any, change: FactsChange, source: str) -> None:
        """The objective's point, when the replica's recomputation moved its progress."""
        if change.objective_progress is None:
            return
        before, after = change.objective_progress
        if after != before:
            self.row(c, change, "", source, None, None, None, before, after)


def _kr_added(history: ProgressHistory, c: Any, change: FactsChange) -> None:
    kr = change.kr
    assert kr is not None  # the replica describes every KR it adds
    history.row(c, change, kr.kr_id, "kr_added", None, kr.current, kr.target, None, kr.progress)
    history.objective_row(c, change, "kr_added")


def _kr_edited(history: ProgressHistory, c: Any, change: FactsChange) -> None:
    history.objective_row(c, change, "kr_weight_changed")


def _target_changed(history: ProgressHistory, c: Any, change: FactsChange) -> None:
    kr = change.kr
    if kr is None:
        return  # a KR the replica does not know: nothing changed
    history.row(
        c,
        change,
        kr.kr_id,
        "target_change",
        kr.current,
        kr.current,
        kr.target,
        c.progress_before,
        kr.progress,
        note=c.reason,
    )
    history.objective_row(c, change, "target_change")


def _kr_removed(history: ProgressHistory, c: Any, change: FactsChange) -> None:
    kr = change.kr
    if kr is not None:  # the KR's series ends here (the operations report leaves it out after)
        history.row(
            c,
            change,
            kr.kr_id,
            "kr_removed",
            kr.current,
            kr.current,
            kr.target,
            kr.progress,
            kr.progress,
            note=c.reason,
        )
    history.objective_row(c, change, "kr_removed")


def _check_in(history: ProgressHistory, c: Any, change: FactsChange) -> None:
    """The hot path: two rows, no read (the KR's target is filled at the flush if unknown).
    Two flat dict literals: measurably cheaper than a shared part unpacked into both."""
    objective_id = change.objective_id
    after, before = c.after, c.before
    at, version, actor, source, check_in_id, note = (
        change.at,
        c.aggregate_version,
        c.actor,
        c.source,
        c.check_in_id,
        c.note,
    )
    kr_row = {
        "objective_id": objective_id,
        "kr_id": c.kr_id,
        "version": version,
        "at": at,
        "actor": actor,
        "source": source,
        "check_in_id": check_in_id,
        "value_before": before.current,
        "value_after": after.current,
        "progress_before": before.progress,
        "progress_after": after.progress,
        "confidence_before": before.confidence,
        "confidence_after": after.confidence,
        "risk_after": after.risk,
        "note": note,
    }
    history.batch.fill_target(kr_row, objective_id, c.kr_id)  # type: ignore[arg-type]
    history.rows.append(kr_row)
    history.rows.append(
        {
            "objective_id": objective_id,
            "kr_id": "",
            "version": version,
            "at": at,
            "actor": actor,
            "source": source,
            "check_in_id": check_in_id,
            "value_before": None,
            "value_after": None,
            "target": None,
            "progress_before": c.objective_progress_before,
            "progress_after": c.objective_progress_after,
            "confidence_before": None,
            "confidence_after": None,
            "risk_after": None,
            "note": note,
        }
    )


Recorder = Callable[[ProgressHistory, Any, FactsChange], None]

#: Goals' contract -> its history rows, made from the replica's FactsChange of the event.
RECORDERS: dict[type[Any], Recorder] = {
    goals.KeyResultAdded: _kr_added,
    goals.KeyResultEdited: _kr_edited,
    goals.KeyResultTargetChanged: _target_changed,
    goals.KeyResultRemoved: _kr_removed,
    goals.KRProgressUpdated: _check_in,
}
