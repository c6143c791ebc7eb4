"""okr_platform.openapi: a route declares its problem statuses with `problem_responses`, and an
app with the shared problem handlers documents every 422 and the Problem schema."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from okr_platform.openapi import PROBLEM_JSON, Problem, problem_responses
from okr_platform.problems import install_problem_handlers
from pydantic import BaseModel

PROBLEM_SCHEMA = {"schema": {"$ref": "#/components/schemas/Problem"}}


class Thing(BaseModel):
    count: int


def app_with_routes() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    router = APIRouter(responses=problem_responses(401))

    @router.post("/things", responses=problem_responses(403, 409))
    def add_thing(body: Thing) -> dict[str, int]:
        return {"count": body.count}

    @router.get("/things")
    def list_things() -> list[dict[str, int]]:
        return []

    app.include_router(router)
    return app


def test_problem_responses_declare_problem_json_with_a_description() -> None:
    responses = problem_responses(404, 412)
    assert list(responses) == [404, 412]
    assert responses[404]["content"] == {PROBLEM_JSON: PROBLEM_SCHEMA}
    assert responses[412]["description"].startswith("If-Match")
    with pytest.raises(ValueError, match="418"):
        problem_responses(418)


def test_the_openapi_has_the_problem_schema_and_every_422_as_a_problem() -> None:
    spec = app_with_routes().openapi()
    add, listing = spec["paths"]["/things"]["post"], spec["paths"]["/things"]["get"]
    assert sorted(add["responses"]) == ["200", "401", "403", "409", "422"]
    for status in ("401", "403", "409", "422"):  # 422: FastAPI's own, for the body
        assert add["responses"][status]["content"] == {PROBLEM_JSON: PROBLEM_SCHEMA}, status
    assert sorted(listing["responses"]) == ["200", "401"]  # no parameters, no 422
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    problem = schemas["Problem"]
    assert problem["required"] == ["type", "title", "status", "code", "detail"]
    assert {"field", "errors"} <= set(problem["properties"])
    assert problem["properties"]["errors"]["anyOf"][0]["items"]["$ref"].endswith("/FieldError")
    assert app_with_routes().openapi() == spec  # built once, the same each time


def test_what_the_handlers_answer_is_a_problem_of_that_schema() -> None:
    client = TestClient(app_with_routes())
    bodies: list[Any] = [
        client.post("/things", json={"count": "many"}).json(),
        client.post("/things", content=b"{", headers={"Content-Type": "application/json"}).json(),
        client.get("/nowhere").json(),
    ]
    for body in bodies:
        Problem.model_validate(body)


def test_a_body_that_is_not_utf8_is_malformed_json() -> None:
    client = TestClient(app_with_routes())
    response = client.post(
        "/things", content=b'{"count": "\xff"}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert (response.json()["code"], response.json()["field"]) == ("malformed_json", "body")
