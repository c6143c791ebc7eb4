"""Objectives and their key results: one objective = one event stream (docs/domain.md#objectives,
docs/domain.md#alignment).

Public methods are the commands: they validate, then call a private method decorated with the
event it records. The decorated methods only apply state, so replaying history never re-checks
rules that may since have changed.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict
from datetime import date
from typing import Any

from eventsourcing.domain import event
from okr_events.vocabulary import (
    CHECK_IN_SOURCES,
    EDITABLE_STATUSES,
    KR_KINDS,
    KR_UNITS,
    LATE_EDITABLE_STATUSES,
    LEVELS,
    OPEN_STATUSES,
    OWNER_TYPES,
    RISKS,
    VISIBILITIES,
)
from okr_platform.aggregate import ClockedAggregate
from okr_platform.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from okr_platform.progress import weighted_progress

from .key_result import (
    KeyResult,
    checked_in_value,
    confidence_stars,
    finite,
    one_of,
    positive,
    title_text,
)


class Objective(ClockedAggregate):
    @event("ObjectiveCreated")
    def __init__(
        self,
        org_id: uuid.UUID,
        cycle_id: uuid.UUID,
        title: str,
        description: str,
        level: str,
        owner_type: str,
        owner_id: str,
        responsible_ids: list[str],
        department_id: str | None,
        visibility: str,
        weight: float,
        created_for_report: bool,
        actor: str,
    ):
        self.org_id = org_id
        self.cycle_id = cycle_id
        self.title = title
        self.description = description
        self.level = level
        self.owner_type = owner_type
        self.owner_id = owner_id
        self.responsible_ids = responsible_ids
        self.department_id = department_id
        self.visibility = visibility
        self.weight = weight
        self.created_for_report = created_for_report
        self.created_by = actor
        self.status = "draft"
        self.key_results: dict[str, KeyResult] = {}
        self.parents: list[dict[str, str | None]] = []
        self.rejection_reason: str | None = None
        self.cancel_reason: str | None = None
        self.score: float | None = None

    @classmethod
    def draft(
        cls,
        *,
        org_id: uuid.UUID,
        cycle_id: uuid.UUID,
        title: str,
        description: str = "",
        level: str = "personal",
        owner_type: str = "member",
        owner_id: str,
        responsible_ids: list[str] | None = None,
        department_id: str | None = None,
        visibility: str = "public",
        weight: float = 1.0,
        created_for_report: bool = False,
        actor: str,
    ) -> Objective:
        one_of(level, LEVELS, "level")
        one_of(owner_type, OWNER_TYPES, "owner_type")
        one_of(visibility, VISIBILITIES, "visibility")
        if owner_type == "member":
            responsible = [owner_id]
        else:
            responsible = list(dict.fromkeys(responsible_ids or []))
        return cls(
            org_id=org_id,
            cycle_id=cycle_id,
            title=title_text(title),
            description=description.strip(),
            level=level,
            owner_type=owner_type,
            owner_id=owner_id,
            responsible_ids=responsible,
            department_id=department_id,
            visibility=visibility,
            weight=positive(weight, "weight"),
            created_for_report=created_for_report,
            actor=actor,
        )

    # ---- derived state -----------------------------------------------------------------------

    @property
    def active_key_results(self) -> list[KeyResult]:
        return [kr for kr in self.key_results.values() if kr.active]

    @property
    def progress(self) -> float:
        """Normalised weighted mean of active KRs' progress (docs/domain.md#progress)."""
        return weighted_progress((kr.weight, kr.progress) for kr in self.active_key_results)

    @property
    def confidence(self) -> int | None:
        """The lowest confidence among active KRs that have one."""
        rated = [kr.confidence for kr in self.active_key_results if kr.confidence is not None]
        return min(rated) if rated else None

    def is_owned_by(self, member_id: str) -> bool:
        return member_id in self.responsible_ids or (
            self.owner_type == "member" and self.owner_id == member_id
        )

    def key_result(self, kr_id: str) -> KeyResult:
        kr = self.key_results.get(kr_id)
        if kr is None or not kr.active:
            raise NotFound(f"objective has no key result {kr_id!r}", field="kr_id")
        return kr

    def _ensure_writable(self, late: bool) -> None:
        if self.status in EDITABLE_STATUSES or (late and self.status in LATE_EDITABLE_STATUSES):
            return
        raise IllegalTransition(
            f"objective is {self.status!r}; it can no longer be changed", field="status"
        )

    def _ensure_status(self, command: str, *allowed: str) -> None:
        if self.status not in allowed:
            raise IllegalTransition(
                f"cannot {command} an objective that is {self.status!r}", field="status"
            )

    # ---- editing -----------------------------------------------------------------------------

    def edit(self, changes: dict[str, Any], actor: str, late: bool = False) -> None:
        self._ensure_writable(late)
        allowed = {"title", "description", "level", "visibility", "weight", "department_id"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(f"cannot change {sorted(unknown)} here", field=sorted(unknown)[0])
        clean = dict(changes)
        if "title" in clean:
            clean["title"] = title_text(clean["title"])
        if "description" in clean:
            clean["description"] = (clean["description"] or "").strip()
        if "level" in clean:
            one_of(clean["level"], LEVELS, "level")
        if "visibility" in clean:
            one_of(clean["visibility"], VISIBILITIES, "visibility")
        if "weight" in clean:
            clean["weight"] = positive(clean["weight"], "weight")
        effective = {k: v for k, v in clean.items() if getattr(self, k) != v}
        if effective:
            previous = {k: getattr(self, k) for k in effective}
            self._edited(changes=effective, previous=previous, late=late, actor=actor)

    @event("ObjectiveEdited")
    def _edited(
        self, changes: dict[str, Any], previous: dict[str, Any], late: bool, actor: str
    ) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    # ---- key results -------------------------------------------------------------------------

    def add_key_result(
        self,
        *,
        title: str,
        kind: str = "metric",
        unit: str = "number",
        unit_label: str | None = None,
        start: float = 0.0,
        target: float = 1.0,
        current: float | None = None,
        owner_id: str | None = None,
        due_date: date | None = None,
        weight: float = 1.0,
        actor: str,
        late: bool = False,
        kr_id: str | None = None,
    ) -> str:
        self._ensure_writable(late)
        one_of(kind, KR_KINDS, "kind")
        if kind == "boolean":
            start, target, unit, unit_label = 0.0, 1.0, "number", None
        else:
            one_of(unit, KR_UNITS, "unit")
            start, target = finite(start, "start"), finite(target, "target")
            if start == target:
                raise InvalidInput("target must differ from start", field="target")
            if unit == "currency" and not (unit_label and re.fullmatch("[A-Za-z]{3}", unit_label)):
                raise InvalidInput(
                    "a currency KR needs unit_label set to an ISO 4217 code such as CNY",
                    field="unit_label",
                )
            if unit == "custom" and not (unit_label and unit_label.strip()):
                raise InvalidInput(
                    "a custom unit needs unit_label, such as 次 or 家", field="unit_label"
                )
        current = start if current is None else finite(current, "current")
        if kind == "boolean" and current not in (0.0, 1.0):
            raise InvalidInput("a boolean KR's current value is 0 or 1", field="current")
        new_id = kr_id or uuid.uuid4().hex
        if new_id in self.key_results:
            raise Conflict(f"key result {new_id!r} already exists", field="id")
        self._key_result_added(
            kr_id=new_id,
            title=title_text(title),
            kind=kind,
            unit=unit,
            unit_label=unit_label.upper() if unit == "currency" and unit_label else unit_label,
            start=start,
            target=target,
            current=current,
            owner_id=owner_id or (self.owner_id if self.owner_type == "member" else None),
            due_date=due_date,
            weight=positive(weight, "weight"),
            late=late,
            actor=actor,
        )
        return new_id

    @event("KeyResultAdded")
    def _key_result_added(
        self,
        kr_id: str,
        title: str,
        kind: str,
        unit: str,
        unit_label: str | None,
        start: float,
        target: float,
        current: float,
        owner_id: str | None,
        due_date: date | None,
        weight: float,
        late: bool,
        actor: str,
    ) -> None:
        self.key_results[kr_id] = KeyResult(
            kr_id, title, kind, unit, unit_label, start, target, current, owner_id, due_date, weight
        )

    def edit_key_result(
        self, kr_id: str, changes: dict[str, Any], actor: str, late: bool = False
    ) -> None:
        self._ensure_writable(late)
        kr = self.key_result(kr_id)
        allowed = {"title", "owner_id", "due_date", "weight", "unit_label"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(f"cannot change {sorted(unknown)} here", field=sorted(unknown)[0])
        clean = dict(changes)
        if "title" in clean:
            clean["title"] = title_text(clean["title"])
        if "weight" in clean:
            clean["weight"] = positive(clean["weight"], "weight")
        effective = {k: v for k, v in clean.items() if getattr(kr, k) != v}
        if effective:
            previous = {k: getattr(kr, k) for k in effective}
            self._key_result_edited(
                kr_id=kr_id, changes=effective, previous=previous, late=late, actor=actor
            )

    @event("KeyResultEdited")
    def _key_result_edited(
        self, kr_id: str, changes: dict[str, Any], previous: dict[str, Any], late: bool, actor: str
    ) -> None:
        kr = self.key_results[kr_id]
        for name, value in changes.items():
            setattr(kr, name, value)

    def change_target(
        self, kr_id: str, target: float, reason: str, actor: str, late: bool = False
    ) -> None:
        """Targets change with a reason kept beside old and new values
        (docs/domain.md#objectives)."""
        self._ensure_writable(late)
        kr = self.key_result(kr_id)
        if kr.kind == "boolean":
            raise InvalidInput("a boolean KR has no target to change", field="target")
        target = finite(target, "target")
        if not reason or not reason.strip():
            raise InvalidInput("a target change needs a reason", field="reason")
        if target == kr.start:
            raise InvalidInput("target must differ from start", field="target")
        if target != kr.target:
            self._target_changed(
                kr_id=kr_id,
                old_target=kr.target,
                new_target=target,
                reason=reason.strip(),
                progress_before=kr.progress,
                late=late,
                actor=actor,
            )

    @event("KeyResultTargetChanged")
    def _target_changed(
        self,
        kr_id: str,
        old_target: float,
        new_target: float,
        reason: str,
        progress_before: float,
        late: bool,
        actor: str,
    ) -> None:
        self.key_results[kr_id].target = new_target

    def remove_key_result(self, kr_id: str, reason: str, actor: str) -> None:
        self._ensure_writable(False)
        self.key_result(kr_id)
        self._key_result_removed(kr_id=kr_id, reason=reason.strip(), actor=actor)

    @event("KeyResultRemoved")
    def _key_result_removed(self, kr_id: str, reason: str, actor: str) -> None:
        self.key_results[kr_id].active = False

    # ---- check-ins ---------------------------------------------------------------------------

    def check_in(
        self,
        kr_id: str,
        *,
        current: float | None = None,
        done: bool | None = None,
        confidence: int | None = None,
        risk: str | None = None,
        note: str = "",
        source: str = "manual",
        actor: str,
        late: bool = False,
    ) -> str:
        """Update a KR's current value and/or confidence and/or risk, keeping before/after.

        A metric KR takes `current`; a boolean KR takes `done` or `current` 0 or 1."""
        if self.status != "active" and not (late and self.status in LATE_EDITABLE_STATUSES):
            raise IllegalTransition(
                f"check-ins need an active objective; this one is {self.status!r}",
                field="status",
            )
        kr = self.key_result(kr_id)
        one_of(source, CHECK_IN_SOURCES, "source")
        current = checked_in_value(kr, current, done)
        if current is None and confidence is None and risk is None:
            raise InvalidInput(
                "a check-in changes at least one of current, confidence, risk", field="current"
            )
        if risk is not None:
            one_of(risk, RISKS, "risk")
        before = kr.snapshot()
        after = {
            "current": kr.current if current is None else current,
            "confidence": kr.confidence if confidence is None else confidence_stars(confidence),
            "risk": kr.risk if risk is None else risk,
        }
        progress_after = KeyResult(**{**asdict(kr), "current": after["current"]}).progress
        after["progress"] = progress_after
        objective_before = self.progress
        weights = [
            (k.weight, progress_after if k.id == kr_id else k.progress)
            for k in self.active_key_results
        ]
        check_in_id = uuid.uuid4().hex
        self._progress_updated(
            kr_id=kr_id,
            check_in_id=check_in_id,
            before=before,
            after=after,
            objective_progress_before=objective_before,
            objective_progress_after=weighted_progress(weights),
            note=note,
            source=source,
            late=late,
            actor=actor,
        )
        return check_in_id

    @event("KRProgressUpdated")
    def _progress_updated(
        self,
        kr_id: str,
        check_in_id: str,
        before: dict[str, Any],
        after: dict[str, Any],
        objective_progress_before: float,
        objective_progress_after: float,
        note: str,
        source: str,
        late: bool,
        actor: str,
    ) -> None:
        kr = self.key_results[kr_id]
        kr.current = after["current"]
        kr.confidence = after["confidence"]
        kr.risk = after["risk"]
        kr.check_ins += 1

    # ---- alignment ---------------------------------------------------------------------------

    def align(self, parent_objective_id: uuid.UUID, parent_kr_id: str | None, actor: str) -> None:
        """Align to a parent objective or one of its KRs. The application checks the parent
        exists, is visible and that the graph stays acyclic: that needs other aggregates."""
        self._ensure_writable(False)
        if parent_objective_id == self.id:
            raise Conflict(
                "an objective cannot align to itself",
                field="parent_objective_id",
                code="alignment_cycle",
            )
        link = {"objective_id": str(parent_objective_id), "kr_id": parent_kr_id}
        if link in self.parents:
            raise Conflict("already aligned to that parent", field="parent_objective_id")
        self._aligned(
            parent_objective_id=parent_objective_id, parent_kr_id=parent_kr_id, actor=actor
        )

    @event("ObjectiveAligned")
    def _aligned(
        self, parent_objective_id: uuid.UUID, parent_kr_id: str | None, actor: str
    ) -> None:
        self.parents.append({"objective_id": str(parent_objective_id), "kr_id": parent_kr_id})

    def unalign(self, parent_objective_id: uuid.UUID, parent_kr_id: str | None, actor: str) -> None:
        self._ensure_writable(False)
        link = {"objective_id": str(parent_objective_id), "kr_id": parent_kr_id}
        if link not in self.parents:
            raise NotFound("not aligned to that parent", field="parent_objective_id")
        self._unaligned(
            parent_objective_id=parent_objective_id, parent_kr_id=parent_kr_id, actor=actor
        )

    @event("ObjectiveUnaligned")
    def _unaligned(
        self, parent_objective_id: uuid.UUID, parent_kr_id: str | None, actor: str
    ) -> None:
        self.parents.remove({"objective_id": str(parent_objective_id), "kr_id": parent_kr_id})

    @property
    def parent_objective_ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(str(p["objective_id"])) for p in self.parents]

    # ---- lifecycle ---------------------------------------------------------------------------

    def submit(self, approval_required: bool, actor: str) -> None:
        """draft -> pending_approval, or straight to active when no approval is needed."""
        self._ensure_status("submit", "draft")
        if not self.active_key_results:
            raise Conflict(
                "add at least one key result before submitting",
                field="key_results",
                code="no_key_results",
            )
        if approval_required:
            self._submitted(actor=actor)
        else:
            self._activated(reason="approval_not_required", actor=actor)

    @event("ObjectiveSubmittedForApproval")
    def _submitted(self, actor: str) -> None:
        self.status = "pending_approval"
        self.rejection_reason = None

    @event("ObjectiveActivated")
    def _activated(self, reason: str, actor: str) -> None:
        self.status = "active"

    def approve(self, actor: str) -> None:
        self._ensure_status("approve", "pending_approval")
        self._approved(actor=actor)

    @event("ObjectiveApproved")
    def _approved(self, actor: str) -> None:
        self.status = "active"

    def reject(self, reason: str, actor: str) -> None:
        self._ensure_status("reject", "pending_approval")
        if not reason or not reason.strip():
            raise InvalidInput("a rejection needs a reason", field="reason")
        self._rejected(reason=reason.strip(), actor=actor)

    @event("ObjectiveRejected")
    def _rejected(self, reason: str, actor: str) -> None:
        self.status = "draft"
        self.rejection_reason = reason

    def start_scoring(self, actor: str) -> None:
        self._ensure_status("start scoring", "active")
        self._scoring_started(actor=actor)

    @event("ObjectiveScoringStarted")
    def _scoring_started(self, actor: str) -> None:
        self.status = "scoring"

    def mark_scored(self, score: float, actor: str) -> None:
        self._ensure_status("score", "scoring")
        score = finite(score, "score")
        if not 0 <= score <= 100:
            raise InvalidInput("score is on the 0-100 scale", field="score")
        self._scored(score=score, actor=actor)

    @event("ObjectiveScored")
    def _scored(self, score: float, actor: str) -> None:
        self.status = "scored"
        self.score = score

    def close(self, actor: str) -> None:
        self._ensure_status("close", "scored")
        self._closed(actor=actor)

    @event("ObjectiveClosed")
    def _closed(self, actor: str) -> None:
        self.status = "closed"

    def cancel(self, reason: str, actor: str) -> None:
        self._ensure_status("cancel", *OPEN_STATUSES)
        self._cancelled(reason=(reason or "").strip(), actor=actor)

    @event("ObjectiveCancelled")
    def _cancelled(self, reason: str, actor: str) -> None:
        self.status = "cancelled"
        self.cancel_reason = reason
