"""What the goals API error tests share: the problem+json assertion and small readers of what
an organisation holds (so a test can assert nothing changed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

PROBLEM = "application/problem+json"
ANY = object()  # "do not check the field"
OTHER_SECRET = "another-secret-that-is-also-long-enough-for-hs256-9876543210"


def assert_problem(response: Any, status: int, code: str, field: Any = ANY) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith("/" + code)
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if field is not ANY:
        assert body.get("field") == field, body
    return body


def get_objective(org: Any, objective_id: str, member: str = "bailu") -> dict[str, Any]:
    r = org.client.get(f"/objectives/{objective_id}", headers=org.h(member))
    assert r.status_code == 200, r.text
    return r.json()


def history(org: Any, objective_id: str, member: str = "bailu") -> list[dict[str, Any]]:
    r = org.client.get(f"/objectives/{objective_id}/history", headers=org.h(member))
    assert r.status_code == 200, r.text
    return r.json()


def listed_ids(org: Any, member: str, path: str = "/objectives", **params: Any) -> list[str]:
    r = org.client.get(path, headers=org.h(member), params=params)
    assert r.status_code == 200, r.text
    return [o["id"] for o in r.json()]


def board_ids(org: Any, member: str, **params: Any) -> set[str]:
    r = org.client.get("/boards/goals", headers=org.h(member), params=params)
    assert r.status_code == 200, r.text
    return {row["objective_id"] for row in r.json()["rows"]}


def tree_ids(org: Any, member: str) -> set[str]:
    r = org.client.get("/alignment-tree", headers=org.h(member))
    assert r.status_code == 200, r.text
    found: set[str] = set()

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            found.add(node["id"])
            walk(node["children"])

    walk(r.json())
    return found


def all_ids(org: Any) -> list[str]:
    """Every objective of the organisation, as the admin sees it."""
    r = org.client.get("/objectives", headers=org.admin)
    assert r.status_code == 200, r.text
    return sorted(o["id"] for o in r.json())


def kr_of(objective: dict[str, Any], index: int = 0) -> str:
    return objective["key_results"][index]["id"]


def token(secret: str, **claims: Any) -> dict[str, str]:
    now = datetime.now(UTC)
    body = {"sub": "bailu", "org": "acme", "roles": [], "iat": now, "exp": now + timedelta(hours=1)}
    body |= claims
    body = {k: v for k, v in body.items() if v is not None}
    return {"Authorization": "Bearer " + jwt.encode(body, secret, algorithm="HS256")}


def secret_of(org: Any) -> str:
    return org.settings.jwt_secret.get_secret_value()


def add_member(org: Any, body: dict[str, Any]) -> None:
    r = org.client.post("/directory/members", json=body, headers=org.admin)
    assert r.status_code == 201, r.text


def chain(org: Any) -> None:
    """bigboss manages boss, who manages bailu and mengbo."""
    add_member(org, {"id": "bigboss", "name": "大老板", "department_id": "cs"})
    r = org.client.patch(
        "/directory/members/boss", json={"manager_id": "bigboss"}, headers=org.admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["manager_id"] == "bigboss"


def kr(**fields: Any) -> dict[str, Any]:
    return {
        "title": "获取100家客户的5星好评",
        "unit": "custom",
        "unit_label": "家",
        "start": 0,
        "target": 100,
    } | fields
