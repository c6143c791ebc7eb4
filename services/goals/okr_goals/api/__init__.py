"""HTTP API of the goals context (FastAPI). Routes translate HTTP to one use case each.

Follow a route's name to the GoalsApplication method it calls, then to the aggregate command.
One module per area (directory, cycles, objectives with their key results and alignment,
lifecycle, reads); `models` holds the request bodies and response shapes, `wiring` what every
route shares. Each route declares its error statuses (okr_platform.openapi.problem_responses)."""

from __future__ import annotations

from fastapi import APIRouter

from .cycles import build_cycles_router
from .directory import build_directory_router
from .lifecycle import build_lifecycle_router
from .objectives import build_objectives_router
from .reads import build_reads_router
from .wiring import ServiceGetter

__all__ = ["build_router"]


def build_router(get_service: ServiceGetter) -> APIRouter:
    router = APIRouter()
    for build in (
        build_directory_router,
        build_cycles_router,
        build_objectives_router,
        build_lifecycle_router,
        build_reads_router,
    ):
        router.include_router(build(get_service))
    return router
