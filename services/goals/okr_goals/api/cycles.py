"""Routes of cycles: planning, listing and moving a cycle through its states (admins).
See docs/domain.md#cycles."""

# No `from __future__ import annotations`: FastAPI must see the closure-local `Me` type.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from okr_platform.openapi import problem_responses
from okr_platform.principal import Principal

from ..application import GoalsApplication
from ..summaries import cycle_summary
from .models import CycleIn, CycleTransitionIn
from .wiring import (
    AUTHENTICATED,
    IfMatch,
    ServiceGetter,
    parse_if_match,
    principal_dependency,
    with_etag,
)


def build_cycles_router(get_service: ServiceGetter) -> APIRouter:
    router = APIRouter(tags=["cycles"], responses=AUTHENTICATED)
    Me = Annotated[Principal, Depends(principal_dependency(get_service))]

    def app() -> GoalsApplication:
        return get_service().app

    # Not an admin (403), no directory yet (404), invalid dates (422).
    @router.post("/cycles", status_code=201, responses=problem_responses(403, 404, 422))
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

    @router.get("/cycles", responses=problem_responses(503))
    def list_cycles(p: Me) -> list[dict[str, Any]]:
        return app().list_cycles(p)

    @router.get("/cycles/{cycle_id}", responses=problem_responses(404, 422))
    def get_cycle(cycle_id: uuid.UUID, p: Me, response: Response) -> dict[str, Any]:
        cycle = app().get_cycle(p, cycle_id)
        with_etag(response, cycle.version)
        return cycle_summary(cycle)

    @router.post(
        "/cycles/{cycle_id}/transitions", responses=problem_responses(403, 404, 409, 412, 422)
    )
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

    return router
