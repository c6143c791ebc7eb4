"""Read routes over objectives: their raw history and activity, the goal board and the
alignment tree. See docs/domain.md#boards."""

# No `from __future__ import annotations`: FastAPI must see the closure-local `Me` type.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from okr_events.vocabulary import Level, ObjectiveStatus
from okr_platform.openapi import problem_responses
from okr_platform.principal import Principal

from ..application import GoalsApplication
from ..boards import alignment_tree, board_rows
from ..views import event_payload
from .wiring import AUTHENTICATED, VIEWS_READ, ServiceGetter, principal_dependency


def build_reads_router(get_service: ServiceGetter) -> APIRouter:
    router = APIRouter(responses=AUTHENTICATED)
    Me = Annotated[Principal, Depends(principal_dependency(get_service))]

    def app() -> GoalsApplication:
        return get_service().app

    @router.get(
        "/objectives/{objective_id}/history", tags=["audit"], responses=problem_responses(404, 422)
    )
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

    @router.get(
        "/objectives/{objective_id}/activity",
        tags=["audit"],
        responses=problem_responses(404) | VIEWS_READ,
    )
    def activity(objective_id: uuid.UUID, p: Me) -> list[dict[str, Any]]:
        return app().activity(p, objective_id)

    @router.get("/boards/goals", tags=["boards"], responses=VIEWS_READ)
    def goal_board(
        p: Me,
        cycle_id: uuid.UUID | None = None,
        department_id: str | None = None,
        owner_id: str | None = None,
        status: ObjectiveStatus | None = None,
        level: Level | None = None,
    ) -> dict[str, Any]:
        summaries = app().list_objectives(
            p,
            cycle_id=str(cycle_id) if cycle_id else None,
            department_id=department_id,
            owner_id=owner_id,
            status=status,
            level=level,
        )
        org = app().directory(p)
        cycles = {c["id"]: c for c in app().list_cycles(p)}
        rows = board_rows(summaries, cycles, org, get_service().clock.now())
        return {"objectives": len(summaries), "rows": rows}

    @router.get("/alignment-tree", tags=["boards"], responses=VIEWS_READ)
    def get_alignment_tree(p: Me, cycle_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
        summaries = app().list_objectives(p, cycle_id=str(cycle_id) if cycle_id else None)
        return alignment_tree(summaries, app().directory(p))

    return router
