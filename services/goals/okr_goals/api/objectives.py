"""Routes of objectives and what they hold: creating, listing, reading and editing objectives,
their key results and check-ins, and their alignment to parents.
See docs/domain.md#objectives, #check-ins and #alignment."""

# No `from __future__ import annotations`: FastAPI must see the closure-local `Me` type.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from okr_events.vocabulary import Level, ObjectiveStatus
from okr_platform.errors import InvalidInput
from okr_platform.openapi import MAX_ROW_ID, problem_responses
from okr_platform.principal import Principal
from pydantic import AwareDatetime

from ..application import GoalsApplication
from .models import (
    AlignmentIn,
    CheckInIn,
    KeyResultIn,
    KeyResultPatch,
    ObjectiveIn,
    ObjectivePatch,
    objective_response,
)
from .wiring import (
    AUTHENTICATED,
    OBJECTIVE_COMMAND,
    VIEWS_READ,
    IfMatch,
    ServiceGetter,
    changes_of,
    parse_if_match,
    principal_dependency,
)


def build_objectives_router(get_service: ServiceGetter) -> APIRouter:
    router = APIRouter(responses=AUTHENTICATED)
    Me = Annotated[Principal, Depends(principal_dependency(get_service))]

    def app() -> GoalsApplication:
        return get_service().app

    # ---- objectives --------------------------------------------------------------------------

    # For someone else (403), unknown cycle, owner or parent (404/422), cycle closed (409).
    @router.post(
        "/objectives",
        status_code=201,
        tags=["objectives"],
        responses=problem_responses(403, 404, 409, 422),
    )
    def create_objective(body: ObjectiveIn, p: Me) -> dict[str, Any]:
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

    @router.get("/objectives", tags=["objectives"], responses=VIEWS_READ)
    def list_objectives(
        p: Me,
        cycle_id: uuid.UUID | None = None,
        department_id: str | None = None,
        owner_id: str | None = None,
        status: ObjectiveStatus | None = None,
        level: Level | None = None,
    ) -> list[dict[str, Any]]:
        return app().list_objectives(
            p,
            cycle_id=str(cycle_id) if cycle_id else None,
            department_id=department_id,
            owner_id=owner_id,
            status=status,
            level=level,
        )

    @router.get("/me/objectives", tags=["objectives"], responses=VIEWS_READ)
    def my_objectives(p: Me, cycle_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
        """Objectives the caller owns or is responsible for."""
        return app().list_objectives(
            p, cycle_id=str(cycle_id) if cycle_id else None, owner_id=p.member_id
        )

    @router.get(
        "/objectives/{objective_id}", tags=["objectives"], responses=problem_responses(404, 422)
    )
    def get_objective(
        objective_id: uuid.UUID,
        p: Me,
        version: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
        as_of: AwareDatetime | None = None,
    ) -> dict[str, Any]:
        """The objective now, at a `version`, or as it was at `as_of`."""
        if version is not None and as_of is not None:
            raise InvalidInput("ask for version or as_of, not both", field="as_of")
        objective = app().get_objective(p, objective_id, version=version, as_of=as_of)
        return objective_response(objective)

    @router.patch("/objectives/{objective_id}", tags=["objectives"], responses=OBJECTIVE_COMMAND)
    def edit_objective(
        objective_id: uuid.UUID, body: ObjectivePatch, p: Me, if_match: IfMatch = None
    ) -> dict[str, Any]:
        objective = app().edit_objective(
            p, objective_id, changes_of(body), parse_if_match(if_match)
        )
        return objective_response(objective)

    # ---- key results and check-ins -----------------------------------------------------------

    @router.post(
        "/objectives/{objective_id}/key-results",
        status_code=201,
        tags=["key results"],
        responses=OBJECTIVE_COMMAND,
    )
    def add_key_result(
        objective_id: uuid.UUID, body: KeyResultIn, p: Me, if_match: IfMatch = None
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

    @router.patch(
        "/objectives/{objective_id}/key-results/{kr_id}",
        tags=["key results"],
        responses=OBJECTIVE_COMMAND,
    )
    def edit_key_result(
        objective_id: uuid.UUID,
        kr_id: str,
        body: KeyResultPatch,
        p: Me,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        changes = changes_of(body)
        reason = changes.pop("reason", None)
        if not changes:
            raise InvalidInput("send at least one field to change", field="body")
        objective = app().edit_key_result(
            p, objective_id, kr_id, changes, reason, parse_if_match(if_match)
        )
        return objective_response(objective)

    @router.delete(
        "/objectives/{objective_id}/key-results/{kr_id}",
        tags=["key results"],
        responses=OBJECTIVE_COMMAND,
    )
    def remove_key_result(
        objective_id: uuid.UUID,
        kr_id: str,
        p: Me,
        reason: str = "",
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        objective = app().remove_key_result(
            p, objective_id, kr_id, reason, parse_if_match(if_match)
        )
        return objective_response(objective)

    @router.post(
        "/objectives/{objective_id}/key-results/{kr_id}/check-ins",
        status_code=201,
        tags=["key results"],
        responses=OBJECTIVE_COMMAND,
    )
    def check_in(
        objective_id: uuid.UUID,
        kr_id: str,
        body: CheckInIn,
        p: Me,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        """A new current value (or `done` on a boolean KR), confidence and/or risk."""
        objective, check_in_id = app().check_in(
            p,
            objective_id,
            kr_id,
            current=body.current,
            done=body.done,
            confidence=body.confidence,
            risk=body.risk,
            note=body.note,
            source=body.source,
            expected_version=parse_if_match(if_match),
        )
        return objective_response(objective, status_code=201, wrap={"check_in_id": check_in_id})

    # ---- alignment ---------------------------------------------------------------------------

    @router.post(
        "/objectives/{objective_id}/alignments",
        status_code=201,
        tags=["alignment"],
        responses=OBJECTIVE_COMMAND,
    )
    def align(
        objective_id: uuid.UUID, body: AlignmentIn, p: Me, if_match: IfMatch = None
    ) -> dict[str, Any]:
        objective = app().align_objective(
            p,
            objective_id,
            body.parent_objective_id,
            body.parent_kr_id,
            parse_if_match(if_match),
        )
        return objective_response(objective, status_code=201)

    @router.delete(
        "/objectives/{objective_id}/alignments/{parent_id}",
        tags=["alignment"],
        responses=OBJECTIVE_COMMAND,
    )
    def unalign(
        objective_id: uuid.UUID,
        parent_id: uuid.UUID,
        p: Me,
        kr_id: str | None = None,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        objective = app().unalign_objective(
            p, objective_id, parent_id, kr_id, parse_if_match(if_match)
        )
        return objective_response(objective)

    return router
