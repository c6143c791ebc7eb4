"""What every service's OpenAPI says about its errors: the `Problem` schema (the body
`okr_platform.problems` sends as application/problem+json) and `problem_responses`, the
`responses=` a route declares its error statuses with.

    from okr_platform.openapi import problem_responses

    router = APIRouter(responses=problem_responses(401))  # every route here authenticates
    @router.post("/cycles", responses=problem_responses(403, 409, 422))

`document_problems(app)` (run by `problems.install_problem_handlers`) adds the Problem schema to
the app's OpenAPI and turns FastAPI's own 422 (request validation, declared on any route with
parameters or a body) into problem+json, since that is what the handler answers.

Also here: `MAX_ROW_ID`, the largest id or cursor a store can hold (SQLite INTEGER, PostgreSQL
BIGINT); a request model bounds integer ids by it, so a larger one is a 422 and never reaches
the database as an overflow."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
MAX_ROW_ID = 2**63 - 1

# What each status means on this suite's routes (a route's own detail is in the problem body).
DESCRIPTIONS = {
    400: "Bad request",
    401: "No bearer token, or a forged, expired or malformed one",
    403: "The caller is known but may not do this",
    404: "Unknown id, or one the caller may not see",
    409: "The current state does not allow this, or it conflicts with existing data",
    412: "If-Match names a version that is not the current one",
    422: "Invalid input; `field` names it (`errors` lists every invalid field)",
    428: "This change needs an If-Match header",
    503: "Temporarily unavailable; try again shortly",
}


class FieldError(BaseModel):
    """One invalid field of a request (request validation lists them all)."""

    field: str = Field(description="dotted path of the field, e.g. key_results.0.target")
    message: str
    type: str = Field(description="pydantic's error type, e.g. missing or int_parsing")


class Problem(BaseModel):
    """An RFC 9457 problem: every error of the suite's APIs has this body."""

    # A problem may carry more members (e.g. /ready's `contexts`).
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI of the problem type; ends with /<code>")
    title: str = Field(description="the status's short title, e.g. Invalid input")
    status: int = Field(description="the HTTP status, repeated")
    code: str = Field(description="stable machine-readable code, e.g. stale_version")
    detail: str = Field(description="what went wrong, for a person")
    field: str | None = Field(None, description="the offending field, header or parameter")
    errors: list[FieldError] | None = Field(None, description="every invalid field (422)")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route (or router) that answers these statuses as problems."""
    unknown = [status for status in statuses if status not in DESCRIPTIONS]
    if unknown:
        raise ValueError(f"no description for statuses {unknown}; add them to DESCRIPTIONS")
    return {
        status: {
            "description": DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }


def _problem_components() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schema.pop("$defs", {})
    components["Problem"] = schema
    return components


def _as_problem(response: dict[str, Any]) -> None:
    """FastAPI's own 422 (HTTPValidationError as application/json) as the problem it is."""
    content = response.get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    if schema.get("$ref", "").endswith("/HTTPValidationError"):
        response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
        response["description"] = DESCRIPTIONS[422]


def with_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the Problem schema and every 422 as problem+json."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "422" in operation.get("responses", {}):
                _as_problem(operation["responses"]["422"])
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_problem_components())
    for fastapis_own in ("HTTPValidationError", "ValidationError"):  # now unreferenced
        if f'"#/components/schemas/{fastapis_own}"' not in json.dumps(schema.get("paths", {})):
            schemas.pop(fastapis_own, None)
    return schema


def document_problems(app: FastAPI) -> None:
    """Post-process the app's OpenAPI once, when it is first built."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
