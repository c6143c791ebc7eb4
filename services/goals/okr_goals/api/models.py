"""What the goals API reads and answers: strict request bodies and the shapes of responses.

A PATCH field that may be left out but means nothing as null (a name, a time zone, roles) is
`omittable`: null is refused with a 422 on that field, so the domain never sees a None it
cannot take. Fields where null means "clear it" (manager_id, email...) stay `X | None`."""

# No `from __future__ import annotations`: FastAPI and pydantic read these annotations at runtime.

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi.responses import JSONResponse
from okr_events.vocabulary import (
    CheckInSource,
    CycleKind,
    CycleTarget,
    KRKind,
    KRUnit,
    Level,
    OwnerType,
    Risk,
    Role,
    ScoreScale,
    Visibility,
)
from pydantic import BaseModel, ConfigDict, Field

from ..domain.organisation import Organisation
from ..summaries import objective_summary

Lax = Field(strict=False)  # dates and UUIDs arrive as JSON strings


class Strict(BaseModel):
    """Request bodies: no unknown fields, no silent coercion of "5" into 5."""

    model_config = ConfigDict(strict=True, extra="forbid")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable(**constraints: Any) -> Any:
    """A field that may be left out but not sent as null. Pydantic never validates a default,
    so leaving it out gives None (dropped by `exclude_unset`), while an explicit null fails the
    field's type; the OpenAPI schema shows the type alone, without a null default."""
    return Field(None, json_schema_extra=_no_default, **constraints)


# ---- directory -------------------------------------------------------------------------------


class DepartmentIn(Strict):
    id: str | None = Field(None, min_length=1, max_length=64, description="defaults to a new id")
    name: str = Field(min_length=1, max_length=200)
    parent_id: str | None = None
    lead_ids: list[str] = []


class MemberIn(Strict):
    id: str = Field(min_length=1, max_length=64, description="the member's id, as in the IdP")
    name: str = Field(min_length=1, max_length=200)
    department_id: str | None = None
    manager_id: str | None = None
    time_zone: str = "Asia/Shanghai"
    roles: list[Role] = ["employee"]
    email: str | None = None


class MemberPatch(Strict):
    """Only the fields sent change; null clears department_id, manager_id or email."""

    name: str = omittable(min_length=1, max_length=200)
    department_id: str | None = None
    manager_id: str | None = None
    time_zone: str = omittable(description="an IANA time zone, e.g. Asia/Shanghai")
    roles: list[Role] = omittable()
    email: str | None = None
    active: bool = omittable()


class SettingsIn(Strict):
    """Every setting (PUT replaces them all)."""

    approval_required: bool
    approver_may_edit: bool
    subtasks_enabled: bool
    score_scale: ScoreScale
    confidence_scale: Literal[5]
    progress_warning_threshold: float = Field(gt=0, le=1)


class SettingsPatch(Strict):
    """The settings to change (PATCH); the others keep their value."""

    approval_required: bool = omittable()
    approver_may_edit: bool = omittable()
    subtasks_enabled: bool = omittable()
    score_scale: ScoreScale = omittable()
    confidence_scale: Literal[5] = omittable()
    progress_warning_threshold: float = omittable(gt=0, le=1)


# ---- cycles ----------------------------------------------------------------------------------


class CycleIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: CycleKind
    start_date: Annotated[date, Lax]
    end_date: Annotated[date, Lax]


class CycleTransitionIn(Strict):
    to: CycleTarget


# ---- objectives and key results --------------------------------------------------------------


class KeyResultIn(Strict):
    title: str = Field(min_length=1, max_length=500)
    kind: KRKind = "metric"
    unit: KRUnit = "number"
    unit_label: str | None = Field(None, max_length=20, description="ISO currency or 次/家/位")
    start: float = 0.0
    target: float = 1.0
    current: float | None = None
    owner_id: str | None = None
    due_date: Annotated[date | None, Lax] = None
    weight: float = Field(1.0, gt=0)


class AlignmentIn(Strict):
    parent_objective_id: Annotated[uuid.UUID, Lax]
    parent_kr_id: str | None = None


class ObjectiveIn(Strict):
    cycle_id: Annotated[uuid.UUID, Lax]
    title: str = Field(min_length=1, max_length=500)
    description: str = ""
    level: Level | None = None
    owner_type: OwnerType = "member"
    owner_id: str | None = Field(None, description="defaults to the caller")
    responsible_ids: list[str] | None = None
    visibility: Visibility = "public"
    weight: float = Field(1.0, gt=0)
    key_results: list[KeyResultIn] = []
    align_to: list[AlignmentIn] = []


class ObjectivePatch(Strict):
    title: str = omittable(min_length=1, max_length=500)
    description: str | None = None
    level: Level = omittable()
    visibility: Visibility = omittable()
    weight: float = omittable(gt=0)


class KeyResultPatch(Strict):
    title: str = omittable(min_length=1, max_length=500)
    owner_id: str | None = None
    due_date: Annotated[date | None, Lax] = None
    weight: float = omittable(gt=0)
    unit_label: str | None = None
    target: float = omittable()
    reason: str | None = Field(None, description="required when target changes")


class CheckInIn(Strict):
    """At least one of current (or done), confidence, risk."""

    current: float | None = Field(
        None, description="the KR's new value; on a boolean KR 0 (not done) or 1 (done)"
    )
    done: bool | None = Field(
        None, description="boolean KRs only (422 on a metric KR), instead of current"
    )
    confidence: int | None = Field(None, ge=1, le=5)
    risk: Risk | None = None
    note: str = Field("", max_length=5000)
    source: CheckInSource = "manual"


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class OptionalReasonIn(Strict):
    reason: str = Field("", max_length=2000)


class ScoreIn(Strict):
    score: float = Field(ge=0, le=100)


# ---- responses -------------------------------------------------------------------------------


def department_out(org: Organisation, department_id: str) -> dict[str, Any]:
    d = org.departments[department_id]
    return {"id": d.id, "name": d.name, "parent_id": d.parent_id, "lead_ids": d.lead_ids}


def member_out(org: Organisation, member_id: str) -> dict[str, Any]:
    m = org.members[member_id]
    return {
        "id": m.id,
        "name": m.name,
        "department_id": m.department_id,
        "manager_id": m.manager_id,
        "time_zone": m.time_zone,
        "roles": m.roles,
        "email": m.email,
        "active": m.active,
    }


def objective_response(
    objective: Any,
    *,
    status_code: int = 200,
    wrap: dict[str, Any] | None = None,
    location: str | None = None,
) -> Any:
    """The objective as JSON with its ETag. Built here rather than by FastAPI: validating
    and re-encoding the nested dict was a large share of a check-in's CPU time."""
    body = objective_summary(objective)
    if wrap is not None:
        body = {**wrap, "objective": body}
    headers = {"ETag": f'"{objective.version}"'}
    if location is not None:
        headers["Location"] = location
    return JSONResponse(body, status_code=status_code, headers=headers)
