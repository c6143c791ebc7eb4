"""Contracts of the goals context's events: organisation directory, cycles, objectives.

Field names equal the domain events' attribute names so the goals service maps them
generically. Enumerations come from okr_events.vocabulary (not the goals domain, which
consumers must not import); a new value there is a contract change that shows up in the JSON
Schemas.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from .base import EventContract, JsonObject
from .registry import register
from .vocabulary import (
    CheckInSource,
    CycleKind,
    KRKind,
    KRUnit,
    Level,
    OwnerType,
    Risk,
    Role,
    Stars,
    Visibility,
)

GOALS_TOPIC = "okr.goals.events.v1"
GOALS_SOURCE = "/okr/goals"

Fraction = Annotated[float, Field(ge=0, le=1)]

_LATE = "True for a late update: made after the objective left its editable statuses."


class KRValues(BaseModel):
    """A key result's values on one side of a check-in."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    current: float
    progress: Fraction
    confidence: Stars | None = Field(description="Stars, 1-5; None when never rated.")
    risk: Risk


# ---- organisation ----------------------------------------------------------------------------


@register
class OrganisationRegistered(EventContract):
    """An organisation (tenant) was registered."""

    event_type = "okr.goals.OrganisationRegistered"

    slug: str
    name: str


@register
class DepartmentAdded(EventContract):
    """A department was added to the organisation's department tree."""

    event_type = "okr.goals.DepartmentAdded"

    department_id: str
    name: str
    parent_id: str | None
    lead_ids: list[str]


@register
class MemberAdded(EventContract):
    """A member joined the organisation directory."""

    event_type = "okr.goals.MemberAdded"

    member_id: str
    name: str
    department_id: str | None
    manager_id: str | None = Field(description="The member's direct manager.")
    time_zone: str = Field(description="IANA time zone name, e.g. Asia/Shanghai.")
    roles: list[Role]
    email: str | None


@register
class MemberUpdated(EventContract):
    """A member's directory entry changed."""

    event_type = "okr.goals.MemberUpdated"

    member_id: str
    changes: JsonObject = Field(description="Changed fields only, with their new values.")


@register
class SettingsChanged(EventContract):
    """The organisation's settings changed."""

    event_type = "okr.goals.SettingsChanged"

    changes: JsonObject = Field(description="Changed settings only, with their new values.")
    settings: JsonObject = Field(description="All settings after the change.")


# ---- cycles ----------------------------------------------------------------------------------


@register
class CycleCreated(EventContract):
    """A cycle (the period OKRs run for) was planned."""

    event_type = "okr.goals.CycleCreated"

    org_id: UUID
    name: str
    kind: CycleKind
    start_date: date
    end_date: date


@register
class CycleActivated(EventContract):
    """A cycle moved from planning to active."""

    event_type = "okr.goals.CycleActivated"


@register
class CycleScoringStarted(EventContract):
    """A cycle moved from active to scoring."""

    event_type = "okr.goals.CycleScoringStarted"


@register
class CycleClosed(EventContract):
    """A cycle moved from scoring to closed."""

    event_type = "okr.goals.CycleClosed"


@register
class CycleArchived(EventContract):
    """A closed cycle was archived."""

    event_type = "okr.goals.CycleArchived"


# ---- objectives ------------------------------------------------------------------------------


@register
class ObjectiveCreated(EventContract):
    """An objective was drafted."""

    event_type = "okr.goals.ObjectiveCreated"

    org_id: UUID
    cycle_id: UUID
    title: str
    description: str
    level: Level
    owner_type: OwnerType
    owner_id: str = Field(description="A member id or a department id, per owner_type.")
    responsible_ids: list[str]
    department_id: str | None
    visibility: Visibility
    weight: float = Field(gt=0)
    created_for_report: bool


@register
class ObjectiveEdited(EventContract):
    """An objective's title, description, level, visibility, weight or department changed."""

    event_type = "okr.goals.ObjectiveEdited"

    changes: JsonObject = Field(description="Changed fields only, with their new values.")
    previous: JsonObject = Field(description="The same fields' values before the change.")
    late: bool = Field(description=_LATE)


@register
class KeyResultAdded(EventContract):
    """A key result was added to an objective."""

    event_type = "okr.goals.KeyResultAdded"

    kr_id: str
    title: str
    kind: KRKind
    unit: KRUnit
    unit_label: str | None = Field(
        description="ISO 4217 code for currency, free text (e.g. 家, 次) for custom units."
    )
    start: float
    target: float
    current: float
    owner_id: str | None
    due_date: date | None
    weight: float = Field(gt=0)
    late: bool = Field(description=_LATE)


@register
class KeyResultEdited(EventContract):
    """A key result's title, owner, due date, weight or unit label changed."""

    event_type = "okr.goals.KeyResultEdited"

    kr_id: str
    changes: JsonObject = Field(description="Changed fields only, with their new values.")
    previous: JsonObject = Field(description="The same fields' values before the change.")
    late: bool = Field(description=_LATE)


@register
class KeyResultTargetChanged(EventContract):
    """A metric key result's target changed, with the reason."""

    event_type = "okr.goals.KeyResultTargetChanged"

    kr_id: str
    old_target: float
    new_target: float
    reason: str
    progress_before: Fraction
    late: bool = Field(description=_LATE)


@register
class KeyResultRemoved(EventContract):
    """A key result was removed (deactivated) from an objective."""

    event_type = "okr.goals.KeyResultRemoved"

    kr_id: str
    reason: str


@register
class KRProgressUpdated(EventContract):
    """A check-in changed a key result's current value, confidence and/or risk."""

    event_type = "okr.goals.KRProgressUpdated"

    kr_id: str
    check_in_id: str
    before: KRValues
    after: KRValues
    objective_progress_before: Fraction
    objective_progress_after: Fraction
    note: str
    source: CheckInSource
    late: bool = Field(description=_LATE)


@register
class ObjectiveAligned(EventContract):
    """An objective was aligned to a parent objective, or to one of its key results."""

    event_type = "okr.goals.ObjectiveAligned"

    parent_objective_id: UUID
    parent_kr_id: str | None


@register
class ObjectiveUnaligned(EventContract):
    """An objective's alignment to a parent objective (or key result) was removed."""

    event_type = "okr.goals.ObjectiveUnaligned"

    parent_objective_id: UUID
    parent_kr_id: str | None


@register
class ObjectiveSubmittedForApproval(EventContract):
    """A draft objective was submitted and now waits for approval."""

    event_type = "okr.goals.ObjectiveSubmittedForApproval"


@register
class ObjectiveActivated(EventContract):
    """A draft objective became active without an approval step."""

    event_type = "okr.goals.ObjectiveActivated"

    reason: str = Field(description='Why no approval was needed, e.g. "approval_not_required".')


@register
class ObjectiveApproved(EventContract):
    """An objective waiting for approval was approved and is now active."""

    event_type = "okr.goals.ObjectiveApproved"


@register
class ObjectiveRejected(EventContract):
    """An objective waiting for approval was sent back to draft, with the reason."""

    event_type = "okr.goals.ObjectiveRejected"

    reason: str


@register
class ObjectiveScoringStarted(EventContract):
    """An active objective moved to scoring."""

    event_type = "okr.goals.ObjectiveScoringStarted"


@register
class ObjectiveScored(EventContract):
    """An objective was given its final score."""

    event_type = "okr.goals.ObjectiveScored"

    score: float = Field(ge=0, le=100, description="On the 0-100 scale.")


@register
class ObjectiveClosed(EventContract):
    """A scored objective was closed."""

    event_type = "okr.goals.ObjectiveClosed"


@register
class ObjectiveCancelled(EventContract):
    """An open objective was cancelled."""

    event_type = "okr.goals.ObjectiveCancelled"

    reason: str
