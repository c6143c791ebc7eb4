"""The goals service's errors as problem+json (DESIGN "Errors"); what every service answers the
same way (401, invalid requests, unknown routes, 500) is okr_web.problems."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from okr_web import problems as common
from okr_web.problems import install_domain_error_handler, problem

from .application import ViewsUnavailable
from .domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    StaleVersion,
)

STATUS_OF: dict[type[Exception], int] = {
    InvalidInput: 422,
    NotFound: 404,
    IllegalTransition: 409,
    Conflict: 409,
    Forbidden: 403,
    StaleVersion: 412,
}


def install_problem_handlers(app: FastAPI) -> None:
    common.install_problem_handlers(app)
    install_domain_error_handler(app, DomainError, STATUS_OF)

    @app.exception_handler(ViewsUnavailable)
    async def views_unavailable(request: Request, error: ViewsUnavailable) -> JSONResponse:
        return problem(503, "views_unavailable", str(error))
