"""The goals service's own error as problem+json; everything else (401, invalid requests,
domain errors, unknown routes, 500) is okr_platform.problems'."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from okr_platform.problems import problem

from .application import ViewsUnavailable


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ViewsUnavailable)
    async def views_unavailable(request: Request, error: ViewsUnavailable) -> JSONResponse:
        return problem(503, "views_unavailable", str(error))
