"""HTTP API of the goals context (FastAPI). Routes translate HTTP to one use case each.

Follow a route's name to the GoalsApplication method it calls, then to the aggregate command.
"""

# No `from __future__ import annotations`: FastAPI must see the closure-local `Me` type.

import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from okr_platform.errors import InvalidInput
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .boards import alignment_tree, board_rows
from .domain.access import Principal
from .domain.organisation import Organisation
from .service import GoalsService
from .summaries import cycle_summary, objective_summary
from .views import event_payload

Lax = Field(strict=False)
Status = Literal["draft", "pending_approval", "active", "scoring", "scored", "closed", "cancelled"]
Level = Literal[
    "company", "department", "team", "personal"
]  # dates and UUIDs arrive as JSON strings


class Strict(BaseModel):
    """Request bodies: no unknown fields, no silent coercion of "5" into 5."""

    model_config = ConfigDict(strict=True, extra="forbid")


# ---- request models ------------------------------------------------------------------------


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
    roles: list[Literal["employee", "supervisor", "admin"]] = ["employee"]
    email: str | None = None


class MemberPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    department_id: str | None = None
    manager_id: str | None = None
    time_zone: str | None = None
    roles: list[Literal["employee", "supervisor", "admin"]] | None = None
    email: str | None = None
    active: bool | None = None


class SettingsIn(Strict):
    approval_required: bool
    approver_may_edit: bool
    subtasks_enabled: bool
    score_scale: Literal["0-100", "0-1"]
    confidence_scale: Literal[5]
    progress_warning_threshold: float = Field(gt=0, le=1)


class CycleIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["quarter", "month", "year", "half_year", "custom"]
    start_date: Annotated[date, Lax]
    end_date: Annotated[date, Lax]


class CycleTransitionIn(Strict):
    to: Literal["active", "scoring", "closed", "archived"]


class KeyResultIn(Strict):
    title: str = Field(min_length=1, max_length=500)
    kind: Literal["metric", "boolean"] = "metric"
    unit: Literal["number", "percent", "currency", "custom"] = "number"
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
    level: Literal["company", "department", "team", "personal"] | None = None
    owner_type: Literal["member", "department"] = "member"
    owner_id: str | None = Field(None, description="defaults to the caller")
    responsible_ids: list[str] | None = None
    visibility: Literal["public", "department", "private"] = "public"
    weight: float = Field(1.0, gt=0)
    key_results: list[KeyResultIn] = []
    align_to: list[AlignmentIn] = []


class ObjectivePatch(Strict):
    title: str | None = Field(None, min_length=1, max_length=500)
    description: str | None = None
    level: Literal["company", "department", "team", "personal"] | None = None
    visibility: Literal["public", "department", "private"] | None = None
    weight: float | None = Field(None, gt=0)


class KeyResultPatch(Strict):
    title: str | None = Field(None, min_length=1, max_length=500)
    owner_id: str | None = None
    due_date: Annotated[date | None, Lax] = None
    weight: float | None = Field(None, gt=0)
    unit_label: str | None = None
    target: float | None = None
    reason: str | None = Field(None, description="required when target changes")


class CheckInIn(Strict):
    current: float | None = None
    done: bool | None = Field(None, description="for boolean KRs, instead of current")
    confidence: int | None = Field(None, ge=1, le=5)
    risk: Literal["normal", "at_risk", "delayed"] | None = None
    note: str = Field("", max_length=5000)
    source: Literal["manual", "report", "task", "api"] = "manual"


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class OptionalReasonIn(Strict):
    reason: str = Field("", max_length=2000)


class ScoreIn(Strict):
    score: float = Field(ge=0, le=100)


# ---- helpers -------------------------------------------------------------------------------


def parse_if_match(if_match: str | None) -> int | None:
    """If-Match carries the version from an ETag: "5", W/"5" or 5; * means any."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise InvalidInput('If-Match must be a version ETag such as "3"', field="If-Match")
    return int(value)


def with_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def _changes(model: BaseModel) -> dict[str, Any]:
    changes = model.model_dump(exclude_unset=True)
    if not changes:
        raise InvalidInput("send at least one field to change", field="body")
    return changes


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


# ---- routes --------------------------------------------------------------------------------


def build_router(get_service: Callable[[], GoalsService]) -> APIRouter:
    router = APIRouter()

    async def principal(authorization: Annotated[str | None, Header()] = None) -> Principal:
        # async: verifying a JWT is quick CPU work; it saves a hop to the thread pool.
        return get_service().verifier.principal(authorization)

    Me = Annotated[Principal, Depends(principal)]
    IfMatch = Annotated[str | None, Header(alias="If-Match")]

    def app():  # type: ignore[no-untyped-def]
        return get_service().app

    # ---- directory ---------------------------------------------------------------------------

    @router.post("/directory/departments", status_code=201, tags=["directory"])
    def add_department(body: DepartmentIn, p: Me, response: Response) -> dict[str, Any]:
        department_id = body.id or uuid.uuid4().hex
        org = app().add_department(
            p,
            name=body.name,
            parent_id=body.parent_id,
            lead_ids=body.lead_ids,
            department_id=department_id,
        )
        with_etag(response, org.version)
        return department_out(org, department_id)

    @router.get("/directory/departments", tags=["directory"])
    def list_departments(p: Me) -> list[dict[str, Any]]:
        org = app().directory(p)
        return [department_out(org, d) for d in org.departments]

    @router.post("/directory/members", status_code=201, tags=["directory"])
    def add_member(body: MemberIn, p: Me, response: Response) -> dict[str, Any]:
        org = app().add_member(
            p,
            member_id=body.id,
            name=body.name,
            department_id=body.department_id,
            manager_id=body.manager_id,
            time_zone=body.time_zone,
            roles=list(body.roles),
            email=body.email,
        )
        with_etag(response, org.version)
        return member_out(org, body.id)

    @router.get("/directory/members", tags=["directory"])
    def list_members(p: Me) -> list[dict[str, Any]]:
        org = app().directory(p)
        return [member_out(org, m) for m in org.members]

    @router.get("/directory/members/{member_id}", tags=["directory"])
    def get_member(member_id: str, p: Me) -> dict[str, Any]:
        org = app().directory(p)
        org.member(member_id, field="member_id", not_found=True)
        return member_out(org, member_id)

    @router.patch("/directory/members/{member_id}", tags=["directory"])
    def update_member(
        member_id: str, body: MemberPatch, p: Me, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        org = app().update_member(p, member_id, _changes(body), parse_if_match(if_match))
        with_etag(response, org.version)
        return member_out(org, member_id)

    @router.get("/directory/settings", tags=["directory"])
    def get_settings(p: Me, response: Response) -> dict[str, Any]:
        org = app().directory(p)
        with_etag(response, org.version)
        return dict(org.settings.__dict__)

    @router.put("/directory/settings", tags=["directory"])
    def put_settings(
        body: SettingsIn, p: Me, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        org = app().change_settings(p, body.model_dump(), parse_if_match(if_match))
        with_etag(response, org.version)
        return dict(org.settings.__dict__)

    # ---- cycles ------------------------------------------------------------------------------

    @router.post("/cycles", status_code=201, tags=["cycles"])
    def plan_cycle(body: CycleIn, p: Me, response: Response) -> dict[str, Any]:
        cycle = app().plan_cycle(
            p,
            name=body.name,
            kind=body.kind,
            start_date=body.start_date,
            end_date=body.end_date,
        )
        with_etag(response, cycle.version)
        response.headers["Location"] = f"/cycles/{cycle.id}"
        return cycle_summary(cycle)

    @router.get("/cycles", tags=["cycles"])
    def list_cycles(p: Me) -> list[dict[str, Any]]:
        return app().list_cycles(p)

    @router.get("/cycles/{cycle_id}", tags=["cycles"])
    def get_cycle(cycle_id: uuid.UUID, p: Me, response: Response) -> dict[str, Any]:
        cycle = app().get_cycle(p, cycle_id)
        with_etag(response, cycle.version)
        return cycle_summary(cycle)

    @router.post("/cycles/{cycle_id}/transitions", tags=["cycles"])
    def transition_cycle(
        cycle_id: uuid.UUID,
        body: CycleTransitionIn,
        p: Me,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        cycle = app().transition_cycle(p, cycle_id, body.to, parse_if_match(if_match))
        with_etag(response, cycle.version)
        return cycle_summary(cycle)

    # ---- objectives --------------------------------------------------------------------------

    def objective_response(
        objective: Any,
        response: Response | None = None,
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

    @router.post("/objectives", status_code=201, tags=["objectives"])
    def create_objective(body: ObjectiveIn, p: Me, response: Response) -> dict[str, Any]:
        objective = app().create_objective(
            p,
            cycle_id=body.cycle_id,
            title=body.title,
            description=body.description,
            level=body.level,
            owner_type=body.owner_type,
            owner_id=body.owner_id,
            responsible_ids=body.responsible_ids,
            visibility=body.visibility,
            weight=body.weight,
            key_results=[kr.model_dump() for kr in body.key_results],
            align_to=[
                {"objective_id": a.parent_objective_id, "kr_id": a.parent_kr_id}
                for a in body.align_to
            ],
        )
        return objective_response(
            objective, status_code=201, location=f"/objectives/{objective.id}"
        )

    @router.get("/objectives", tags=["objectives"])
    def list_objectives(
        p: Me,
        cycle_id: uuid.UUID | None = None,
        department_id: str | None = None,
        owner_id: str | None = None,
        status: Literal[
            "draft", "pending_approval", "active", "scoring", "scored", "closed", "cancelled"
        ]
        | None = None,
        level: Literal["company", "department", "team", "personal"] | None = None,
    ) -> list[dict[str, Any]]:
        return app().list_objectives(
            p,
            cycle_id=str(cycle_id) if cycle_id else None,
            department_id=department_id,
            owner_id=owner_id,
            status=status,
            level=level,
        )

    @router.get("/me/objectives", tags=["objectives"])
    def my_objectives(p: Me, cycle_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
        """Objectives the caller owns or is responsible for."""
        return app().list_objectives(
            p, cycle_id=str(cycle_id) if cycle_id else None, owner_id=p.member_id
        )

    @router.get("/objectives/{objective_id}", tags=["objectives"])
    def get_objective(
        objective_id: uuid.UUID,
        p: Me,
        response: Response,
        version: Annotated[int | None, Query(ge=1)] = None,
        as_of: AwareDatetime | None = None,
    ) -> dict[str, Any]:
        if version is not None and as_of is not None:
            raise InvalidInput("ask for version or as_of, not both", field="as_of")
        objective = app().get_objective(p, objective_id, version=version, as_of=as_of)
        return objective_response(objective, response)

    @router.patch("/objectives/{objective_id}", tags=["objectives"])
    def edit_objective(
        objective_id: uuid.UUID,
        body: ObjectivePatch,
        p: Me,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        objective = app().edit_objective(p, objective_id, _changes(body), parse_if_match(if_match))
        return objective_response(objective, response)

    @router.post("/objectives/{objective_id}/key-results", status_code=201, tags=["key results"])
    def add_key_result(
        objective_id: uuid.UUID,
        body: KeyResultIn,
        p: Me,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        objective, kr_id = app().add_key_result(
            p, objective_id, body.model_dump(), parse_if_match(if_match)
        )
        return objective_response(
            objective,
            status_code=201,
            wrap={"key_result_id": kr_id},
            location=f"/objectives/{objective_id}/key-results/{kr_id}",
        )

    @router.patch("/objectives/{objective_id}/key-results/{kr_id}", tags=["key results"])
    def edit_key_result(
        objective_id: uuid.UUID,
        kr_id: str,
        body: KeyResultPatch,
        p: Me,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        changes = _changes(body)
        reason = changes.pop("reason", None)
        if not changes:
            raise InvalidInput("send at least one field to change", field="body")
        objective = app().edit_key_result(
            p, objective_id, kr_id, changes, reason, parse_if_match(if_match)
        )
        return objective_response(objective, response)

    @router.delete("/objectives/{objective_id}/key-results/{kr_id}", tags=["key results"])
    def remove_key_result(
        objective_id: uuid.UUID,
        kr_id: str,
        p: Me,
        response: Response,
        reason: str = "",
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        objective = app().remove_key_result(
            p, objective_id, kr_id, reason, parse_if_match(if_match)
        )
        return objective_response(objective, response)

    @router.post(
        "/objectives/{objective_id}/key-results/{kr_id}/check-ins",
        status_code=201,
        tags=["key results"],
    )
    def check_in(
        objective_id: uuid.UUID,
        kr_id: str,
        body: CheckInIn,
        p: Me,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        current = body.current
        if body.done is not None:
            if current is not None:
                raise InvalidInput("send current or done, not both", field="done")
            current = 1.0 if body.done else 0.0
        objective, check_in_id = app().check_in(
            p,
            objective_id,
            kr_id,
            current=current,
            confidence=body.confidence,
            risk=body.risk,
            note=body.note,
            source=body.source,
            expected_version=parse_if_match(if_match),
        )
        return objective_response(objective, status_code=201, wrap={"check_in_id": check_in_id})

    @router.post("/objectives/{objective_id}/alignments", status_code=201, tags=["alignment"])
    def align(
        objective_id: uuid.UUID,
        body: AlignmentIn,
        p: Me,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        objective = app().align_objective(
            p,
            objective_id,
            body.parent_objective_id,
            body.parent_kr_id,
            parse_if_match(if_match),
        )
        return objective_response(objective, status_code=201)

    @router.delete("/objectives/{objective_id}/alignments/{parent_id}", tags=["alignment"])
    def unalign(
        objective_id: uuid.UUID,
        parent_id: uuid.UUID,
        p: Me,
        response: Response,
        kr_id: str | None = None,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        objective = app().unalign_objective(
            p, objective_id, parent_id, kr_id, parse_if_match(if_match)
        )
        return objective_response(objective, response)

    # Lifecycle commands (approve/reject move to the reviews service's events later).
    @router.post("/objectives/{objective_id}/submit", tags=["lifecycle"])
    def submit(
        objective_id: uuid.UUID, p: Me, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        return objective_response(
            app().submit_objective(p, objective_id, parse_if_match(if_match)), response
        )

    @router.post("/objectives/{objective_id}/approve", tags=["lifecycle"])
    def approve(
        objective_id: uuid.UUID, p: Me, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        return objective_response(
            app().approve_objective(p, objective_id, parse_if_match(if_match)), response
        )

    @router.post("/objectives/{objective_id}/reject", tags=["lifecycle"])
    def reject(
        objective_id: uuid.UUID,
        body: ReasonIn,
        p: Me,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        return objective_response(
            app().reject_objective(p, objective_id, body.reason, parse_if_match(if_match)),
            response,
        )

    @router.post("/objectives/{objective_id}/cancel", tags=["lifecycle"])
    def cancel(
        objective_id: uuid.UUID,
        body: OptionalReasonIn,
        p: Me,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        return objective_response(
            app().cancel_objective(p, objective_id, body.reason, parse_if_match(if_match)),
            response,
        )

    @router.post("/objectives/{objective_id}/start-scoring", tags=["lifecycle"])
    def start_scoring(
        objective_id: uuid.UUID, p: Me, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        return objective_response(
            app().start_scoring(p, objective_id, parse_if_match(if_match)), response
        )

    @router.post("/objectives/{objective_id}/score", tags=["lifecycle"])
    def score(
        objective_id: uuid.UUID,
        body: ScoreIn,
        p: Me,
        response: Response,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        return objective_response(
            app().mark_scored(p, objective_id, body.score, parse_if_match(if_match)), response
        )

    @router.post("/objectives/{objective_id}/close", tags=["lifecycle"])
    def close(
        objective_id: uuid.UUID, p: Me, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        return objective_response(
            app().close_objective(p, objective_id, parse_if_match(if_match)), response
        )

    # ---- history, activity, boards -----------------------------------------------------------

    @router.get("/objectives/{objective_id}/history", tags=["audit"])
    def history(objective_id: uuid.UUID, p: Me) -> list[dict[str, Any]]:
        """The objective's raw events in order: what an auditor replays."""
        return [
            {
                "version": e.originator_version,
                "time": e.timestamp.isoformat(),
                "actor": e.actor,
                "type": type(e).__name__,
                "payload": event_payload(e),
            }
            for e in app().history(p, objective_id)
        ]

    @router.get("/objectives/{objective_id}/activity", tags=["audit"])
    def activity(objective_id: uuid.UUID, p: Me) -> list[dict[str, Any]]:
        return app().activity(p, objective_id)

    @router.get("/boards/goals", tags=["boards"])
    def goal_board(
        p: Me,
        request: Request,
        cycle_id: uuid.UUID | None = None,
        department_id: str | None = None,
        owner_id: str | None = None,
        status: Status | None = None,
        level: Level | None = None,
    ) -> dict[str, Any]:
        summaries = list_objectives(
            p,
            cycle_id=cycle_id,
            department_id=department_id,
            owner_id=owner_id,
            status=status,
            level=level,
        )
        org = app().directory(p)
        cycles = {c["id"]: c for c in app().list_cycles(p)}
        rows = board_rows(summaries, cycles, org, get_service().clock.now())
        return {"objectives": len(summaries), "rows": rows}

    @router.get("/alignment-tree", tags=["boards"])
    def get_alignment_tree(p: Me, cycle_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
        summaries = app().list_objectives(p, cycle_id=str(cycle_id) if cycle_id else None)
        return alignment_tree(summaries, app().directory(p))

    return router
