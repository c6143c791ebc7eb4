"""Routes that move an objective through its lifecycle: submit, approve or reject, cancel,
score and close. See docs/domain.md#lifecycle, #approval and #scoring."""

# No `from __future__ import annotations`: FastAPI must see the closure-local `Me` type.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from okr_platform.principal import Principal

from ..application import GoalsApplication
from .models import OptionalReasonIn, ReasonIn, ScoreIn, objective_response
from .wiring import (
    AUTHENTICATED,
    OBJECTIVE_COMMAND,
    IfMatch,
    ServiceGetter,
    parse_if_match,
    principal_dependency,
)


def build_lifecycle_router(get_service: ServiceGetter) -> APIRouter:
    # Every command may be refused as any objective command is (wiring.OBJECTIVE_COMMAND).
    router = APIRouter(tags=["lifecycle"], responses=AUTHENTICATED | OBJECTIVE_COMMAND)
    Me = Annotated[Principal, Depends(principal_dependency(get_service))]

    def app() -> GoalsApplication:
        return get_service().app

    # Approve and reject move to the reviews service's events later.
    @router.post("/objectives/{objective_id}/submit")
    def submit(objective_id: uuid.UUID, p: Me, if_match: IfMatch = None) -> dict[str, Any]:
        return objective_response(app().submit_objective(p, objective_id, parse_if_match(if_match)))

    @router.post("/objectives/{objective_id}/approve")
    def approve(objective_id: uuid.UUID, p: Me, if_match: IfMatch = None) -> dict[str, Any]:
        return objective_response(
            app().approve_objective(p, objective_id, parse_if_match(if_match))
        )

    @router.post("/objectives/{objective_id}/reject")
    def reject(
        objective_id: uuid.UUID, body: ReasonIn, p: Me, if_match: IfMatch = None
    ) -> dict[str, Any]:
        return objective_response(
            app().reject_objective(p, objective_id, body.reason, parse_if_match(if_match))
        )

    @router.post("/objectives/{objective_id}/cancel")
    def cancel(
        objective_id: uuid.UUID, body: OptionalReasonIn, p: Me, if_match: IfMatch = None
    ) -> dict[str, Any]:
        return objective_response(
            app().cancel_objective(p, objective_id, body.reason, parse_if_match(if_match))
        )

    @router.post("/objectives/{objective_id}/start-scoring")
    def start_scoring(objective_id: uuid.UUID, p: Me, if_match: IfMatch = None) -> dict[str, Any]:
        return objective_response(app().start_scoring(p, objective_id, parse_if_match(if_match)))

    @router.post("/objectives/{objective_id}/score")
    def score(
        objective_id: uuid.UUID, body: ScoreIn, p: Me, if_match: IfMatch = None
    ) -> dict[str, Any]:
        return objective_response(
            app().mark_scored(p, objective_id, body.score, parse_if_match(if_match))
        )

    @router.post("/objectives/{objective_id}/close")
    def close(objective_id: uuid.UUID, p: Me, if_match: IfMatch = None) -> dict[str, Any]:
        return objective_response(app().close_objective(p, objective_id, parse_if_match(if_match)))

    return router
