"""RFC 9457 problem+json: what every service answers the same way, and a service's domain
errors mapped to statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import FastAPI, Header
from fastapi.testclient import TestClient
from okr_platform.auth import TokenVerifier
from okr_platform.principal import Principal
from okr_platform.problems import (
    PROBLEM_JSON,
    install_domain_error_handler,
    install_problem_handlers,
)
from pydantic import BaseModel
from web_kit import SECRET, ExampleSettings


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, detail: str, field: str | None = None):
        super().__init__(detail)
        self.detail, self.field = detail, field


class NotFound(DomainError):
    code = "not_found"


class Gone(NotFound):
    code = "gone"


class Body(BaseModel):
    count: int


def client(settings: ExampleSettings) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)
    install_domain_error_handler(app, DomainError, {NotFound: 404})
    verifier = TokenVerifier(settings)

    @app.get("/me")
    def me(authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        p: Principal = verifier.principal(authorization)
        return {"member_id": p.member_id, "org": p.org, "roles": sorted(p.roles)}

    @app.post("/things")
    def things(body: Body) -> dict[str, int]:
        return {"count": body.count}

    @app.get("/errors/{kind}")
    def errors(kind: str) -> None:
        raise {"gone": Gone("it went", "thing_id"), "plain": DomainError("no")}.get(
            kind, RuntimeError("boom")
        )

    return TestClient(app, raise_server_exceptions=False)


def problem_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == f"https://okr.example/problems/{code}"
    assert (body["status"], body["code"]) == (status, code)
    return body


def token(**changes: Any) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {"sub": "bailu", "org": "acme", "iat": now, "exp": now + timedelta(hours=1)}
    claims = {k: v for k, v in (claims | changes).items() if v is not None}
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


def test_authentication_errors_are_401_problems_with_www_authenticate(
    hs256: ExampleSettings,
) -> None:
    c = client(hs256)
    assert c.get("/me", headers=token(roles=["admin"])).json() == {
        "member_id": "bailu",
        "org": "acme",
        "roles": ["admin"],
    }
    past = datetime.now(UTC) - timedelta(hours=1)
    for headers, code in (
        ({}, "unauthenticated"),
        (token(exp=past, iat=past - timedelta(hours=1)), "token_expired"),
        (token(org=None), "invalid_token"),
    ):
        r = c.get("/me", headers=headers)
        body = problem_of(r, 401, code)
        assert body["title"] == "Unauthenticated"
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert problem_of(c.get("/me", headers=token(org=None)), 401, "invalid_token")["detail"] == (
        'invalid token: Token is missing the "org" claim'
    )


def test_invalid_requests_are_422_with_the_field(hs256: ExampleSettings) -> None:
    c = client(hs256)
    body = problem_of(c.post("/things", json={"count": "many"}), 422, "validation_error")
    assert (body["title"], body["field"]) == ("Invalid input", "count")
    assert body["errors"][0]["field"] == "count"
    r = c.post("/things", content=b"{", headers={"Content-Type": "application/json"})
    assert problem_of(r, 422, "malformed_json")["field"] == "body"


def test_routing_domain_and_unexpected_errors(hs256: ExampleSettings) -> None:
    c = client(hs256)
    assert problem_of(c.get("/nowhere"), 404, "not_found")["title"] == "Not found"
    assert problem_of(c.delete("/things"), 405, "method_not_allowed")["title"] == (
        "Method not allowed"
    )
    gone = problem_of(c.get("/errors/gone"), 404, "gone")  # a subclass of a mapped class
    assert (gone["detail"], gone["field"]) == ("it went", "thing_id")
    plain = problem_of(c.get("/errors/plain"), 400, "domain_error")  # unmapped: 400
    assert plain["title"] == "Bad request" and "field" not in plain
    unexpected = problem_of(c.get("/errors/boom"), 500, "internal_error")
    assert unexpected["detail"] == "an unexpected error occurred; it was logged"
