"""The suite's vocabulary: every enumerated value an OKR fact can take, spelled once.

Each is a Literal type (for contracts, request models and type hints) and the tuple of its
values (for checks and loops), in the order the domain lists them (docs/domain.md). The
contracts' JSON Schemas are generated from these Literals, so adding a value here is a contract
change and shows up in `python -m okr_events.schemas check`. Every context depends on
okr_events, so this is where the goals domain, its API and the consumers all read them.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field

# ---- organisation (docs/domain.md#organisation) ------------------------------------------------

Role = Literal["employee", "supervisor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

ScoreScale = Literal["0-100", "0-1"]
SCORE_SCALES: tuple[ScoreScale, ...] = get_args(ScoreScale)

# ---- cycles (docs/domain.md#cycles) ------------------------------------------------------------

CycleKind = Literal["quarter", "month", "year", "half_year", "custom"]
CYCLE_KINDS: tuple[CycleKind, ...] = get_args(CycleKind)

#: In lifecycle order: planning -> active -> scoring -> closed -> archived.
CycleState = Literal["planning", "active", "scoring", "closed", "archived"]
CYCLE_STATES: tuple[CycleState, ...] = get_args(CycleState)

#: The states a cycle can be moved to (every state but the one it is created in).
CycleTarget = Literal["active", "scoring", "closed", "archived"]
CYCLE_TARGETS: tuple[CycleTarget, ...] = get_args(CycleTarget)

# ---- objectives (docs/domain.md#objectives) ----------------------------------------------------

#: From the top of the alignment tree down: lists, boards and the tree sort by this order.
Level = Literal["company", "department", "team", "personal"]
LEVELS: tuple[Level, ...] = get_args(Level)
LEVEL_RANK: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS)}

Visibility = Literal["public", "department", "private"]
VISIBILITIES: tuple[Visibility, ...] = get_args(Visibility)

OwnerType = Literal["member", "department"]
OWNER_TYPES: tuple[OwnerType, ...] = get_args(OwnerType)

# Lifecycle (docs/domain.md#lifecycle): draft -> (pending_approval ->) active -> scoring ->
# scored -> closed; cancelled from any open status.
ObjectiveStatus = Literal[
    "draft", "pending_approval", "active", "scoring", "scored", "closed", "cancelled"
]
OBJECTIVE_STATUSES: tuple[ObjectiveStatus, ...] = get_args(ObjectiveStatus)

# Two meanings of "open", named apart because a `scored` objective is one and not the other.
#: Not yet closed or cancelled: the objective is still in its lifecycle and may be cancelled.
#: `scored` is open (it waits to be closed). Goals' cancel rule uses this.
OPEN_STATUSES: tuple[ObjectiveStatus, ...] = (
    "draft",
    "pending_approval",
    "active",
    "scoring",
    "scored",
)
#: Open and not yet scored: progress and confidence can still change the outcome, so a
#: warning about them still means something. The notifier's progress and confidence
#: warnings watch these; once scored (or closed, cancelled) they stay quiet.
OPEN_UNSCORED_STATUSES: tuple[ObjectiveStatus, ...] = tuple(
    status for status in OPEN_STATUSES if status != "scored"
)

#: Statuses whose objectives the owners (and their managers) edit freely.
EDITABLE_STATUSES: tuple[ObjectiveStatus, ...] = ("draft", "pending_approval", "active")
#: Statuses changed only by an admin's late update (recorded with late=True).
LATE_EDITABLE_STATUSES: tuple[ObjectiveStatus, ...] = ("scoring", "scored", "closed")

# ---- key results and check-ins (docs/domain.md#objectives, #check-ins, #confidence) ------------

KRKind = Literal["metric", "boolean"]
KR_KINDS: tuple[KRKind, ...] = get_args(KRKind)

KRUnit = Literal["number", "percent", "currency", "custom"]
KR_UNITS: tuple[KRUnit, ...] = get_args(KRUnit)

Risk = Literal["normal", "at_risk", "delayed"]
RISKS: tuple[Risk, ...] = get_args(Risk)

CheckInSource = Literal["manual", "report", "task", "api"]
CHECK_IN_SOURCES: tuple[CheckInSource, ...] = get_args(CheckInSource)

#: Confidence is rated in whole stars, 1 to 5 (the organisation's confidence_scale is 5).
MIN_STARS = 1
MAX_STARS = 5
Stars = Annotated[int, Field(ge=MIN_STARS, le=MAX_STARS)]
