"""Authentication over HTTP: no token, a forged, expired or malformed one is a 401 problem.

Every refusal asserts the status, the problem+json `code` (and `field` where it means
something) and that nothing changed (SQLite only, for speed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from goals_api_kit import OTHER_SECRET, all_ids, assert_problem, get_objective, secret_of, token


def test_no_token_is_401_with_www_authenticate(sqlite_org):
    org = sqlite_org
    for method, path, body in (
        ("get", "/objectives", None),
        ("get", "/boards/goals", None),
        ("get", "/me/objectives", None),
        ("post", "/objectives", {"cycle_id": org.cycle_id, "title": "匿名"}),
        (
            "post",
            "/cycles",
            {"name": "x", "kind": "quarter", "start_date": "2027-01-01", "end_date": "2027-03-31"},
        ),
    ):
        kwargs = {"json": body} if body else {}
        r = getattr(org.client, method)(path, **kwargs)
        assert_problem(r, 401, "unauthenticated")
        assert r.headers["WWW-Authenticate"] == "Bearer"
    for header in ("Basic Ym9zczpwYXNz", "Bearer", "Bearer   ", "token"):
        r = org.client.get("/objectives", headers={"Authorization": header})
        assert_problem(r, 401, "unauthenticated")
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert all_ids(org) == []


def test_forged_token_is_401_invalid_token(sqlite_org):
    org = sqlite_org
    o = org.objective()
    forged = token(OTHER_SECRET, roles=["admin"])
    r = org.client.get(f"/objectives/{o['id']}", headers=forged)
    assert_problem(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    r = org.client.patch(f"/objectives/{o['id']}", json={"title": "伪造"}, headers=forged)
    assert_problem(r, 401, "invalid_token")
    r = org.client.get("/objectives", headers={"Authorization": "Bearer not.a.jwt"})
    assert_problem(r, 401, "invalid_token")
    # A token signed with "none" is not accepted either.
    unsigned = jwt.encode(
        {"sub": "root", "org": "acme", "roles": ["admin"]}, None, algorithm="none"
    )
    r = org.client.get("/objectives", headers={"Authorization": f"Bearer {unsigned}"})
    assert_problem(r, 401, "invalid_token")
    assert get_objective(org, o["id"]) == o


def test_expired_token_is_401_token_expired(sqlite_org):
    org = sqlite_org
    past = datetime.now(UTC) - timedelta(hours=1)
    expired = token(secret_of(org), exp=past, iat=past - timedelta(hours=1))
    r = org.client.get("/objectives", headers=expired)
    assert_problem(r, 401, "token_expired")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    r = org.client.post(
        "/objectives", json={"cycle_id": org.cycle_id, "title": "过期"}, headers=expired
    )
    assert_problem(r, 401, "token_expired")
    assert all_ids(org) == []


@pytest.mark.parametrize(
    "claims",
    [
        {"org": None},
        {"sub": None},
        {"org": 5},
        {"roles": "admin"},
    ],
    ids=["no-org", "no-sub", "org-not-string", "roles-not-list"],
)
def test_tokens_with_bad_claims_are_401(sqlite_org, claims):
    org = sqlite_org
    r = org.client.get("/objectives", headers=token(secret_of(org), **claims))
    assert_problem(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"] == "Bearer"
