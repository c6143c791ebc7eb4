"""RFC 9457 problem+json for every error (docs/architecture.md#errors): stable code, human
detail, field.

`install_problem_handlers` maps what every service shares: unauthenticated, invalid requests,
unknown routes, the domain errors of `okr_platform.errors` (by `errors.STATUS_OF`), the read
side not caught up (`errors.ReadSideBehind`, 503), the database away (503) and unexpected
errors. A context adds a
handler only for an error of its own (its `install_problem_handlers`). `okr_platform.openapi`
documents the body (the Problem schema)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from okr_events.outages import DATABASE_ERRORS, one_line
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .auth import AuthenticationError
from .errors import STATUS_OF, DomainError, ReadSideBehind
from .openapi import PROBLEM_JSON, document_problems

__all__ = ["PROBLEM_JSON", "install_domain_error_handler", "install_problem_handlers", "problem"]

log = logging.getLogger(__name__)

TYPE_BASE = "https://okr.example/problems/"
TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    415: "Unsupported media type",
    422: "Invalid input",
    428: "Precondition required",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(
    status: int, code: str, detail: str, field: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_domain_error_handler(
    app: FastAPI, base: type[Exception], status_of: Mapping[type[Any], int]
) -> None:
    """A service's domain errors (each with `code`, `detail` and `field`): the status of the
    first class in `status_of` the error is an instance of, 400 for the others."""

    @app.exception_handler(base)
    async def domain_error(request: Request, error: Any) -> JSONResponse:
        status = next((s for cls, s in status_of.items() if isinstance(error, cls)), 400)
        return problem(status, error.code, error.detail, error.field)


def install_problem_handlers(
    app: FastAPI, discard_broken_connections: Callable[[], None] = lambda: None
) -> None:
    """The handlers every service shares, and their Problem schema in the app's OpenAPI (each
    route declares its statuses with `okr_platform.openapi.problem_responses`). The database
    being unreachable is a 503 `database_unavailable`, after which
    ``discard_broken_connections`` drops the pools' dead connections (so that, once it is
    back, the next requests do not each meet one)."""
    install_domain_error_handler(app, DomainError, STATUS_OF)
    document_problems(app)

    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning(
            "%s %s: the database is unavailable: %s",
            request.method,
            request.url.path,
            one_line(error),
        )
        await run_in_threadpool(discard_broken_connections)
        return problem(503, "database_unavailable", "the database is unavailable; try again")

    for database_error in DATABASE_ERRORS:
        if issubclass(database_error, Exception):
            app.add_exception_handler(database_error, database_unavailable)

    @app.exception_handler(ReadSideBehind)
    async def read_side_behind(request: Request, error: ReadSideBehind) -> JSONResponse:
        return problem(503, error.code, str(error))

    @app.exception_handler(AuthenticationError)
    async def unauthenticated(request: Request, error: AuthenticationError) -> JSONResponse:
        return problem(401, error.code, error.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_of(tuple(e["loc"])), "message": e["msg"], "type": e["type"]}
            for e in error.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        code = "validation_error"
        if first.get("type") == "json_invalid":  # the location is a character offset
            code, first["field"] = "malformed_json", "body"
        return problem(
            422, code, f"{first['field']}: {first['message']}", first["field"], errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError):
            # FastAPI's 400 for a body that is not UTF-8: malformed JSON, like any other.
            return problem(422, "malformed_json", "body: the body is not UTF-8 JSON", "body")
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return problem(error.status_code, code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "an unexpected error occurred; it was logged")
