"""Bad input, refused commands and visibility over HTTP (SQLite only, for speed).

Every refusal asserts the exact status, the problem+json `code` (and `field` where it means
something) and that nothing changed afterwards: same version, same list, same history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

PROBLEM = "application/problem+json"
ANY = object()  # "do not check the field"
OTHER_SECRET = "another-secret-that-is-also-long-enough-for-hs256-9876543210"


# ---- helpers ---------------------------------------------------------------------------------


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


# ---- wrong types, missing and unknown fields ----------------------------------------------------


def kr(**fields: Any) -> dict[str, Any]:
    return {
        "title": "获取100家客户的5星好评",
        "unit": "custom",
        "unit_label": "家",
        "start": 0,
        "target": 100,
    } | fields


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": 5}, "title"),
        ({"title": ""}, "title"),
        ({"title": None}, "title"),
        ({"description": 7}, "description"),
        ({"weight": "2"}, "weight"),
        ({"weight": 0}, "weight"),
        ({"visibility": "secret"}, "visibility"),
        ({"level": "galaxy"}, "level"),
        ({"cycle_id": 123}, "cycle_id"),
        ({"cycle_id": "not-a-uuid"}, "cycle_id"),
        ({"key_results": "none"}, "key_results"),
        ({"key_results": [kr(target="100")]}, "key_results.0.target"),
        ({"key_results": [kr(start="0")]}, "key_results.0.start"),
        ({"key_results": [kr(unit="furlongs")]}, "key_results.0.unit"),
        ({"key_results": [kr(weight=-1)]}, "key_results.0.weight"),
        ({"key_results": [kr(due_date="next week")]}, "key_results.0.due_date"),
        ({"align_to": [{"parent_objective_id": "x"}]}, "align_to.0.parent_objective_id"),
    ],
)
def test_create_objective_with_wrong_types_is_422_and_creates_nothing(sqlite_org, change, field):
    org = sqlite_org
    before = all_ids(org)
    body = {"cycle_id": org.cycle_id, "title": "建立高效专业的客户支持团队"} | change
    r = org.client.post("/objectives", json=body, headers=org.h("bailu"))
    problem = assert_problem(r, 422, "validation_error", field)
    assert problem["errors"][0]["field"] == field
    assert all_ids(org) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "cycle_id"),
        ({"title": "没有周期"}, "cycle_id"),
        ({"cycle_id": "CYCLE"}, "title"),
        (
            {"cycle_id": "CYCLE", "title": "t", "key_results": [{"target": 5}]},
            "key_results.0.title",
        ),
        ({"cycle_id": "CYCLE", "title": "t", "align_to": [{}]}, "align_to.0.parent_objective_id"),
    ],
)
def test_create_objective_with_missing_fields_is_422(sqlite_org, body, field):
    org = sqlite_org
    before = all_ids(org)
    body = {k: (org.cycle_id if v == "CYCLE" else v) for k, v in body.items()}
    r = org.client.post("/objectives", json=body, headers=org.h("bailu"))
    problem = assert_problem(r, 422, "validation_error", field)
    assert problem["errors"][0]["type"] == "missing"
    assert all_ids(org) == before


def test_a_target_sent_as_a_string_is_refused_not_coerced(sqlite_org):
    org = sqlite_org
    o = org.objective()
    r = org.client.post(
        f"/objectives/{o['id']}/key-results",
        json={"title": "新增KR", "target": "100"},
        headers=org.h("bailu"),
    )
    assert_problem(r, 422, "validation_error", "target")
    r = org.client.patch(
        f"/objectives/{o['id']}/key-results/{kr_of(o)}",
        json={"target": "200", "reason": "调整"},
        headers=org.h("bailu"),
    )
    assert_problem(r, 422, "validation_error", "target")
    after = get_objective(org, o["id"])
    assert after["version"] == o["version"]
    assert after["key_results"] == o["key_results"]


def test_missing_fields_elsewhere_are_422(sqlite_org):
    org = sqlite_org
    o = org.active_objective()
    cycles_before = org.client.get("/cycles", headers=org.admin).json()
    r = org.client.post(
        "/cycles",
        json={"name": "2027 Q1", "kind": "quarter", "start_date": "2027-01-01"},
        headers=org.admin,
    )
    assert_problem(r, 422, "validation_error", "end_date")
    r = org.client.post(f"/cycles/{org.cycle_id}/transitions", json={}, headers=org.admin)
    assert_problem(r, 422, "validation_error", "to")
    assert org.client.get("/cycles", headers=org.admin).json() == cycles_before

    r = org.client.post(f"/objectives/{o['id']}/alignments", json={}, headers=org.h("bailu"))
    assert_problem(r, 422, "validation_error", "parent_objective_id")
    # A check-in that changes nothing is refused by the domain.
    r = org.client.post(
        f"/objectives/{o['id']}/key-results/{kr_of(o)}/check-ins",
        json={"note": "只是说一声"},
        headers=org.h("bailu"),
    )
    assert_problem(r, 422, "invalid_input", "current")
    # PATCH with an empty body changes nothing and says so.
    r = org.client.patch(f"/objectives/{o['id']}", json={}, headers=org.h("bailu"))
    assert_problem(r, 422, "invalid_input", "body")
    assert get_objective(org, o["id"])["version"] == o["version"]


def test_reject_needs_a_reason(sqlite_org):
    org = sqlite_org
    o = org.objective()
    submitted = org.client.post(f"/objectives/{o['id']}/submit", headers=org.h("bailu")).json()
    assert submitted["status"] == "pending_approval"
    r = org.client.post(f"/objectives/{o['id']}/reject", json={}, headers=org.h("boss"))
    assert_problem(r, 422, "validation_error", "reason")
    r = org.client.post(f"/objectives/{o['id']}/reject", json={"reason": ""}, headers=org.h("boss"))
    assert_problem(r, 422, "validation_error", "reason")
    after = get_objective(org, o["id"])
    assert (after["status"], after["version"]) == ("pending_approval", submitted["version"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"current": "60"}, "current"),
        ({"current": 60, "confidence": 6}, "confidence"),
        ({"current": 60, "confidence": 0}, "confidence"),
        ({"current": 60, "confidence": 3.5}, "confidence"),
        ({"current": 60, "risk": "doomed"}, "risk"),
        ({"current": 60, "source": "rumour"}, "source"),
        ({"done": "yes"}, "done"),
        ({"note": 5, "current": 1}, "note"),
    ],
)
def test_check_in_with_wrong_types_is_422_and_records_nothing(sqlite_org, body, field):
    org = sqlite_org
    o = org.active_objective()
    r = org.client.post(
        f"/objectives/{o['id']}/key-results/{kr_of(o)}/check-ins",
        json=body,
        headers=org.h("bailu"),
    )
    assert_problem(r, 422, "validation_error", field)
    after = get_objective(org, o["id"])
    assert after["version"] == o["version"]
    assert after["key_results"][0]["check_ins"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/objectives", {"priority": 1}, "priority"),
        ("patch", "/objectives/{id}", {"title": "新标题", "status": "active"}, "status"),
        ("patch", "/objectives/{id}", {"progress": 1}, "progress"),
        ("patch", "/objectives/{id}/key-results/{kr}", {"current": 50}, "current"),
        ("post", "/objectives/{id}/key-results/{kr}/check-ins", {"current": 1, "x": 1}, "x"),
        ("post", "/objectives/{id}/key-results", {"title": "kr", "progress": 1}, "progress"),
    ],
)
def test_unknown_fields_are_refused(sqlite_org, method, path, body, field):
    org = sqlite_org
    o = org.active_objective()
    if path == "/objectives":
        body = {"cycle_id": org.cycle_id, "title": "多了一个字段"} | body
    ids_before = all_ids(org)
    url = path.format(id=o["id"], kr=kr_of(o))
    r = getattr(org.client, method)(url, json=body, headers=org.h("bailu"))
    problem = assert_problem(r, 422, "validation_error", field)
    assert problem["errors"][0]["type"] == "extra_forbidden"
    assert all_ids(org) == ids_before
    assert get_objective(org, o["id"]) == o


def test_unknown_fields_are_refused_on_directory_and_cycles(sqlite_org):
    org = sqlite_org
    departments = org.client.get("/directory/departments", headers=org.admin).json()
    r = org.client.post(
        "/directory/departments", json={"name": "研发部", "budget": 1}, headers=org.admin
    )
    assert_problem(r, 422, "validation_error", "budget")
    r = org.client.post(
        "/cycles",
        json={
            "name": "Q1",
            "kind": "quarter",
            "start_date": "2027-01-01",
            "end_date": "2027-03-31",
            "state": "active",
        },
        headers=org.admin,
    )
    assert_problem(r, 422, "validation_error", "state")
    assert org.client.get("/directory/departments", headers=org.admin).json() == departments
    assert len(org.client.get("/cycles", headers=org.admin).json()) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/objectives"),
        ("patch", "/objectives/{id}"),
        ("post", "/objectives/{id}/key-results/{kr}/check-ins"),
        ("post", "/cycles"),
    ],
)
@pytest.mark.parametrize("payload", [b'{"title": ', b"not json at all", b'{"title": "a",}'])
def test_malformed_json_is_422_malformed_json(sqlite_org, method, path, payload):
    org = sqlite_org
    o = org.active_objective()
    url = path.format(id=o["id"], kr=kr_of(o))
    headers = org.h("bailu", roles=["admin"]) | {"Content-Type": "application/json"}
    r = getattr(org.client, method)(url, content=payload, headers=headers)
    assert_problem(r, 422, "malformed_json")
    assert get_objective(org, o["id"]) == o
    assert all_ids(org) == [o["id"]]
    assert len(org.client.get("/cycles", headers=org.admin).json()) == 1


# ---- unknown ids and non-UUID ids -------------------------------------------------------------


def test_unknown_objective_ids_are_404(sqlite_org):
    org = sqlite_org
    o = org.active_objective()
    ghost = str(uuid.uuid4())
    me = org.h("bailu")
    c = org.client
    assert_problem(c.get(f"/objectives/{ghost}", headers=me), 404, "not_found", "objective_id")
    assert_problem(
        c.patch(f"/objectives/{ghost}", json={"title": "x"}, headers=me),
        404,
        "not_found",
        "objective_id",
    )
    assert_problem(c.post(f"/objectives/{ghost}/submit", headers=me), 404, "not_found")
    assert_problem(c.post(f"/objectives/{ghost}/approve", headers=org.admin), 404, "not_found")
    assert_problem(c.get(f"/objectives/{ghost}/history", headers=me), 404, "not_found")
    assert_problem(c.get(f"/objectives/{ghost}/activity", headers=me), 404, "not_found")
    assert_problem(
        c.post(
            f"/objectives/{ghost}/key-results/{kr_of(o)}/check-ins", json={"current": 1}, headers=me
        ),
        404,
        "not_found",
        "objective_id",
    )
    # Aligning to an unknown parent.
    r = c.post(f"/objectives/{o['id']}/alignments", json={"parent_objective_id": ghost}, headers=me)
    assert_problem(r, 404, "not_found", "parent_objective_id")
    # A version the objective never had.
    r = c.get(f"/objectives/{o['id']}", params={"version": o["version"] + 5}, headers=me)
    assert_problem(r, 404, "not_found", "version")
    assert get_objective(org, o["id"]) == o
    assert all_ids(org) == [o["id"]]


def test_unknown_key_result_ids_are_404(sqlite_org):
    org = sqlite_org
    o = org.active_objective()
    me = org.h("bailu")
    base = f"/objectives/{o['id']}/key-results/no-such-kr"
    assert_problem(
        org.client.post(base + "/check-ins", json={"current": 5}, headers=me),
        404,
        "not_found",
        "kr_id",
    )
    assert_problem(
        org.client.patch(base, json={"title": "新"}, headers=me), 404, "not_found", "kr_id"
    )
    assert_problem(org.client.delete(base, headers=me), 404, "not_found", "kr_id")
    parent = org.active_objective("mengbo", title="孟波的目标")
    r = org.client.post(
        f"/objectives/{o['id']}/alignments",
        json={"parent_objective_id": parent["id"], "parent_kr_id": "nope"},
        headers=me,
    )
    assert_problem(r, 404, "not_found", "kr_id")
    assert get_objective(org, o["id"]) == o
    assert get_objective(org, parent["id"]) == parent


def test_unknown_cycle_ids_are_404(sqlite_org):
    org = sqlite_org
    ghost = str(uuid.uuid4())
    r = org.client.post(
        "/objectives", json={"cycle_id": ghost, "title": "无周期"}, headers=org.h("bailu")
    )
    assert_problem(r, 404, "not_found", "cycle_id")
    assert_problem(org.client.get(f"/cycles/{ghost}", headers=org.admin), 404, "not_found")
    r = org.client.post(f"/cycles/{ghost}/transitions", json={"to": "active"}, headers=org.admin)
    assert_problem(r, 404, "not_found", "cycle_id")
    assert all_ids(org) == []
    assert [c["id"] for c in org.client.get("/cycles", headers=org.admin).json()] == [org.cycle_id]


def test_an_objective_id_is_not_a_cycle_id(sqlite_org):
    org = sqlite_org
    o = org.objective()
    r = org.client.get(f"/cycles/{o['id']}", headers=org.admin)
    assert_problem(r, 404, "not_found")
    r = org.client.get(f"/objectives/{org.cycle_id}", headers=org.admin)
    assert_problem(r, 404, "not_found", "objective_id")


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("get", "/objectives/abc", "objective_id"),
        ("patch", "/objectives/abc", "objective_id"),
        ("post", "/objectives/12345/submit", "objective_id"),
        ("get", "/objectives/abc/history", "objective_id"),
        ("get", "/objectives/abc/activity", "objective_id"),
        ("post", "/objectives/abc/key-results/k/check-ins", "objective_id"),
        ("get", "/cycles/abc", "cycle_id"),
        ("post", "/cycles/abc/transitions", "cycle_id"),
        ("get", "/objectives?cycle_id=abc", "cycle_id"),
        ("get", "/boards/goals?cycle_id=abc", "cycle_id"),
        ("get", "/alignment-tree?cycle_id=abc", "cycle_id"),
    ],
)
def test_non_uuid_ids_are_422(sqlite_org, method, path, field):
    org = sqlite_org
    kwargs: dict[str, Any] = {"headers": org.admin}
    if method in ("post", "patch"):
        kwargs["json"] = {"title": "x"} if method == "patch" else {"current": 1, "to": "active"}
    r = getattr(org.client, method)(path, **kwargs)
    if "check-ins" in path or "transitions" in path:
        # the body is checked too; the path id must be among the errors
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "validation_error"
        assert field in {e["field"] for e in r.json()["errors"]}
    else:
        assert_problem(r, 422, "validation_error", field)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"version": 0}, "version"),
        ({"version": "two"}, "version"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"as_of": "2026-01-01T00:00:00"}, "as_of"),  # no time zone: ambiguous
        ({"version": 1, "as_of": "2026-01-01T00:00:00+00:00"}, "as_of"),
    ],
)
def test_bad_version_queries_are_422(sqlite_org, params, field):
    org = sqlite_org
    o = org.objective()
    r = org.client.get(f"/objectives/{o['id']}", params=params, headers=org.h("bailu"))
    code = "invalid_input" if len(params) == 2 else "validation_error"
    assert_problem(r, 422, code, field)


def test_bad_list_filters_are_422(sqlite_org):
    org = sqlite_org
    r = org.client.get("/objectives", params={"status": "asleep"}, headers=org.h("bailu"))
    assert_problem(r, 422, "validation_error", "status")
    r = org.client.get("/objectives", params={"level": "galaxy"}, headers=org.h("bailu"))
    assert_problem(r, 422, "validation_error", "level")


@pytest.mark.parametrize(("name", "value"), [("status", "asleep"), ("level", "galaxy")])
def test_bad_board_filters_are_422_like_the_list(sqlite_org, name, value):
    """The board takes the same filters as /objectives: a typo must not look like "no data"."""
    org = sqlite_org
    org.active_objective()
    r = org.client.get("/boards/goals", params={name: value}, headers=org.h("bailu"))
    assert_problem(r, 422, "validation_error", name)


# ---- illegal transitions ------------------------------------------------------------------------


def test_approving_a_draft_is_409(sqlite_org):
    org = sqlite_org
    o = org.objective()
    r = org.client.post(f"/objectives/{o['id']}/approve", headers=org.h("boss"))
    assert_problem(r, 409, "illegal_transition", "status")
    r = org.client.post(f"/objectives/{o['id']}/approve", headers=org.admin)
    assert_problem(r, 409, "illegal_transition", "status")
    after = get_objective(org, o["id"])
    assert (after["status"], after["version"]) == ("draft", o["version"])
    assert [e["type"] for e in history(org, o["id"])] == ["ObjectiveCreated", "KeyResultAdded"]


def test_check_in_on_a_draft_is_409(sqlite_org):
    org = sqlite_org
    o = org.objective()
    r = org.client.post(
        f"/objectives/{o['id']}/key-results/{kr_of(o)}/check-ins",
        json={"current": 60, "confidence": 4},
        headers=org.h("bailu"),
    )
    assert_problem(r, 409, "illegal_transition", "status")
    after = get_objective(org, o["id"])
    assert after == o
    assert after["key_results"][0]["current"] == 0


def test_other_illegal_objective_transitions_are_409(sqlite_org):
    org = sqlite_org
    o = org.active_objective()
    me = org.h("bailu")
    assert_problem(
        org.client.post(f"/objectives/{o['id']}/submit", headers=me),
        409,
        "illegal_transition",
        "status",
    )
    assert_problem(
        org.client.post(
            f"/objectives/{o['id']}/reject", json={"reason": "不行"}, headers=org.h("boss")
        ),
        409,
        "illegal_transition",
        "status",
    )
    assert_problem(
        org.client.post(f"/objectives/{o['id']}/close", headers=me),
        409,
        "illegal_transition",
        "status",
    )
    assert_problem(
        org.client.post(f"/objectives/{o['id']}/score", json={"score": 80}, headers=org.h("boss")),
        409,
        "illegal_transition",
        "status",
    )
    assert get_objective(org, o["id"]) == o


def test_submitting_without_key_results_is_409_no_key_results(sqlite_org):
    org = sqlite_org
    o = org.objective(key_results=[])
    r = org.client.post(f"/objectives/{o['id']}/submit", headers=org.h("bailu"))
    assert_problem(r, 409, "no_key_results", "key_results")
    assert get_objective(org, o["id"]) == o


def test_the_owner_cannot_edit_while_awaiting_approval(sqlite_org):
    org = sqlite_org
    o = org.objective()
    pending = org.client.post(f"/objectives/{o['id']}/submit", headers=org.h("bailu")).json()
    assert pending["status"] == "pending_approval"
    r = org.client.patch(f"/objectives/{o['id']}", json={"title": "偷偷改"}, headers=org.h("bailu"))
    assert_problem(r, 409, "illegal_transition", "status")
    assert get_objective(org, o["id"]) == pending


def test_cycle_planning_to_closed_is_409(sqlite_org):
    org = sqlite_org
    created = org.client.post(
        "/cycles",
        json={
            "name": "2027 Q1",
            "kind": "quarter",
            "start_date": "2027-01-01",
            "end_date": "2027-03-31",
        },
        headers=org.admin,
    )
    assert created.status_code == 201, created.text
    cycle = created.json()
    assert cycle["state"] == "planning"
    for to in ("closed", "scoring", "archived"):
        r = org.client.post(
            f"/cycles/{cycle['id']}/transitions", json={"to": to}, headers=org.admin
        )
        assert_problem(r, 409, "illegal_transition", "to")
    r = org.client.post(
        f"/cycles/{cycle['id']}/transitions", json={"to": "planning"}, headers=org.admin
    )
    assert_problem(r, 422, "validation_error", "to")
    after = org.client.get(f"/cycles/{cycle['id']}", headers=org.admin)
    assert after.json() == cycle
    assert after.headers["ETag"] == f'"{cycle["version"]}"'


def test_cycle_end_before_start_is_422(sqlite_org):
    org = sqlite_org
    r = org.client.post(
        "/cycles",
        json={
            "name": "反了",
            "kind": "quarter",
            "start_date": "2027-03-31",
            "end_date": "2027-01-01",
        },
        headers=org.admin,
    )
    assert_problem(r, 422, "invalid_input", "end_date")
    assert len(org.client.get("/cycles", headers=org.admin).json()) == 1


def test_objectives_in_a_closed_cycle_are_read_only(sqlite_org):
    org = sqlite_org
    o = org.active_objective()
    for to in ("scoring", "closed"):
        r = org.client.post(
            f"/cycles/{org.cycle_id}/transitions", json={"to": to}, headers=org.admin
        )
        assert r.status_code == 200, r.text
    r = org.client.post(
        "/objectives", json={"cycle_id": org.cycle_id, "title": "太晚了"}, headers=org.h("bailu")
    )
    assert_problem(r, 409, "illegal_transition", "cycle_id")
    r = org.client.patch(f"/objectives/{o['id']}", json={"title": "改"}, headers=org.h("bailu"))
    assert_problem(r, 409, "illegal_transition", "cycle_id")
    assert get_objective(org, o["id"]) == o
    assert all_ids(org) == [o["id"]]


# ---- If-Match and ETag --------------------------------------------------------------------------


def test_responses_carry_version_and_etag(sqlite_org):
    org = sqlite_org
    body = {"cycle_id": org.cycle_id, "title": "版本", "key_results": [kr()]}
    created = org.client.post("/objectives", json=body, headers=org.h("bailu"))
    assert created.status_code == 201
    o = created.json()
    assert created.headers["ETag"] == f'"{o["version"]}"'
    assert created.headers["Location"] == f"/objectives/{o['id']}"
    got = org.client.get(f"/objectives/{o['id']}", headers=org.h("bailu"))
    assert got.headers["ETag"] == f'"{o["version"]}"'
    edited = org.client.patch(
        f"/objectives/{o['id']}", json={"title": "版本二"}, headers=org.h("bailu")
    )
    assert edited.json()["version"] == o["version"] + 1
    assert edited.headers["ETag"] == f'"{o["version"] + 1}"'


def test_stale_if_match_is_412_and_changes_nothing(sqlite_org):
    org = sqlite_org
    o = org.active_objective()
    me = org.h("bailu")
    url = f"/objectives/{o['id']}"
    for stale in (
        f'"{o["version"] - 1}"',
        '"1"',
        f'"{o["version"] + 1}"',
        f'W/"{o["version"] - 1}"',
    ):
        r = org.client.patch(url, json={"title": "过期"}, headers=me | {"If-Match": stale})
        assert_problem(r, 412, "stale_version", "If-Match")
    r = org.client.post(
        f"{url}/key-results/{kr_of(o)}/check-ins",
        json={"current": 10},
        headers=me | {"If-Match": '"1"'},
    )
    assert_problem(r, 412, "stale_version", "If-Match")
    r = org.client.post(f"{url}/cancel", json={}, headers=me | {"If-Match": '"2"'})
    assert_problem(r, 412, "stale_version", "If-Match")
    assert get_objective(org, o["id"]) == o
    # The current version, plain, weak or *, is accepted.
    r = org.client.patch(url, json={"title": "新"}, headers=me | {"If-Match": f'"{o["version"]}"'})
    assert r.status_code == 200, r.text
    v = r.json()["version"]
    assert v == o["version"] + 1
    r = org.client.patch(url, json={"title": "新二"}, headers=me | {"If-Match": f'W/"{v}"'})
    assert r.status_code == 200, r.text
    r = org.client.patch(url, json={"title": "新三"}, headers=me | {"If-Match": "*"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == v + 2


def test_stale_if_match_on_a_cycle_is_412(sqlite_org):
    org = sqlite_org
    cycle = org.client.get(f"/cycles/{org.cycle_id}", headers=org.admin).json()
    r = org.client.post(
        f"/cycles/{org.cycle_id}/transitions",
        json={"to": "scoring"},
        headers=org.admin | {"If-Match": f'"{cycle["version"] - 1}"'},
    )
    assert_problem(r, 412, "stale_version", "If-Match")
    assert org.client.get(f"/cycles/{org.cycle_id}", headers=org.admin).json() == cycle


@pytest.mark.parametrize("garbage", ["abc", '"abc"', '"1.5"', "-1", '"', "v1"])
def test_garbage_if_match_is_422(sqlite_org, garbage):
    org = sqlite_org
    o = org.active_objective()
    r = org.client.patch(
        f"/objectives/{o['id']}",
        json={"title": "垃圾"},
        headers=org.h("bailu") | {"If-Match": garbage},
    )
    assert_problem(r, 422, "invalid_input", "If-Match")
    assert get_objective(org, o["id"]) == o


# ---- other organisations --------------------------------------------------------------------


def test_another_organisations_objective_is_404(sqlite_org):
    org = sqlite_org
    o = org.active_objective()
    # "other" has no directory yet: still a 404, and its lists are empty.
    stranger = org.h("bailu", org="other")
    assert_problem(org.client.get(f"/objectives/{o['id']}", headers=stranger), 404, "not_found")
    assert org.client.get("/objectives", headers=stranger).json() == []
    # Now "other" is a real organisation with its own admin and members.
    other_admin = org.h("root", org="other", roles=["admin"])
    r = org.client.post(
        "/directory/departments", json={"id": "cs", "name": "客户成功部"}, headers=other_admin
    )
    assert r.status_code == 201, r.text
    r = org.client.post(
        "/directory/members",
        json={"id": "bailu", "name": "另一个白露", "department_id": "cs"},
        headers=other_admin,
    )
    assert r.status_code == 201, r.text
    for who in (other_admin, stranger):
        assert_problem(
            org.client.get(f"/objectives/{o['id']}", headers=who), 404, "not_found", "objective_id"
        )
        assert_problem(
            org.client.get(f"/objectives/{o['id']}/history", headers=who), 404, "not_found"
        )
        assert_problem(
            org.client.get(f"/objectives/{o['id']}/activity", headers=who), 404, "not_found"
        )
        assert_problem(
            org.client.patch(f"/objectives/{o['id']}", json={"title": "劫持"}, headers=who),
            404,
            "not_found",
        )
        assert_problem(
            org.client.post(
                f"/objectives/{o['id']}/key-results/{kr_of(o)}/check-ins",
                json={"current": 99},
                headers=who,
            ),
            404,
            "not_found",
        )
        assert_problem(
            org.client.post(f"/objectives/{o['id']}/cancel", json={}, headers=who), 404, "not_found"
        )
        assert org.client.get("/objectives", headers=who).json() == []
        assert org.client.get("/me/objectives", headers=who).json() == []
        assert org.client.get("/boards/goals", headers=who).json()["rows"] == []
        assert org.client.get("/alignment-tree", headers=who).json() == []
        assert org.client.get("/cycles", headers=who).json() == []
    # acme's cycle is not usable from "other" either.
    r = org.client.post(
        "/objectives", json={"cycle_id": org.cycle_id, "title": "跨组织"}, headers=stranger
    )
    assert_problem(r, 404, "not_found", "cycle_id")
    assert_problem(org.client.get(f"/cycles/{org.cycle_id}", headers=other_admin), 404, "not_found")
    assert get_objective(org, o["id"]) == o


# ---- private objectives ---------------------------------------------------------------------


def test_a_private_objective_is_hidden_from_colleagues_everywhere(sqlite_org):
    org = sqlite_org
    parent = org.active_objective("boss", title="老板的公开目标")  # boss has no manager yet
    chain(org)
    add_member(
        org, {"id": "siteadmin", "name": "管理员", "department_id": "pm", "roles": ["admin"]}
    )
    private = org.active_objective(
        "bailu",
        title="白露的私人目标",
        visibility="private",
        align_to=[{"parent_objective_id": parent["id"]}],
    )
    public = org.active_objective("mengbo", title="孟波的公开目标")
    pid = private["id"]

    # Colleagues outside the chain (a token the directory does not list sees nothing at all:
    # test_api_outsiders.py).
    for outsider in ("mengbo", "lufei"):
        h = org.h(outsider)
        assert_problem(
            org.client.get(f"/objectives/{pid}", headers=h), 404, "not_found", "objective_id"
        )
        assert_problem(
            org.client.get(f"/objectives/{pid}", params={"version": 1}, headers=h), 404, "not_found"
        )
        assert_problem(org.client.get(f"/objectives/{pid}/history", headers=h), 404, "not_found")
        assert_problem(org.client.get(f"/objectives/{pid}/activity", headers=h), 404, "not_found")
        assert_problem(
            org.client.post(
                f"/objectives/{pid}/key-results/{kr_of(private)}/check-ins",
                json={"current": 1},
                headers=h,
            ),
            404,
            "not_found",
        )
        assert_problem(
            org.client.patch(f"/objectives/{pid}", json={"title": "x"}, headers=h), 404, "not_found"
        )
        # Aligning to it would reveal it: also 404.
        r = org.client.post(
            f"/objectives/{public['id']}/alignments",
            json={"parent_objective_id": pid},
            headers=org.h("mengbo"),
        )
        assert_problem(r, 404, "not_found", "parent_objective_id")
        listed = set(listed_ids(org, outsider))
        assert pid not in listed
        assert {parent["id"], public["id"]} <= listed
        assert pid not in listed_ids(org, outsider, owner_id="bailu")
        assert pid not in listed_ids(org, outsider, department_id="cs")
        assert pid not in listed_ids(org, outsider, "/me/objectives")
        board = board_ids(org, outsider)
        assert pid not in board and parent["id"] in board
        assert pid not in board_ids(org, outsider, owner_id="bailu")
        tree = tree_ids(org, outsider)
        assert pid not in tree and parent["id"] in tree

    # Owner, direct manager, the manager's manager and admins (by token or directory role).
    for insider in ("bailu", "boss", "bigboss", "siteadmin"):
        assert get_objective(org, pid, insider)["title"] == "白露的私人目标"
        assert [e["actor"] for e in history(org, pid, insider)][:2] == ["bailu", "bailu"]
        assert pid in listed_ids(org, insider)
        assert pid in listed_ids(org, insider, owner_id="bailu")
        assert pid in board_ids(org, insider)
        assert pid in tree_ids(org, insider)
    assert pid in {o["id"] for o in org.client.get("/objectives", headers=org.admin).json()}
    assert pid in listed_ids(org, "bailu", "/me/objectives")
    # Under its parent in the tree for those who may see it.
    tree = org.client.get("/alignment-tree", headers=org.h("bigboss")).json()
    parent_node = next(n for n in tree if n["id"] == parent["id"])
    assert [c["id"] for c in parent_node["children"]] == [pid]
    tree = org.client.get("/alignment-tree", headers=org.h("mengbo")).json()
    parent_node = next(n for n in tree if n["id"] == parent["id"])
    assert parent_node["children"] == []
    # Nothing the outsiders tried changed it.
    assert get_objective(org, pid) == private


def test_the_managers_manager_sees_but_does_not_edit(sqlite_org):
    org = sqlite_org
    chain(org)
    o = org.active_objective(visibility="private")
    r = org.client.patch(f"/objectives/{o['id']}", json={"title": "越级"}, headers=org.h("bigboss"))
    assert_problem(r, 403, "forbidden")
    r = org.client.post(
        f"/objectives/{o['id']}/key-results/{kr_of(o)}/check-ins",
        json={"current": 5},
        headers=org.h("bigboss"),
    )
    assert_problem(r, 403, "forbidden")
    assert get_objective(org, o["id"]) == o


def test_visibility_follows_edits_and_the_current_reporting_line(sqlite_org):
    org = sqlite_org
    o = org.active_objective()
    assert o["id"] in listed_ids(org, "mengbo")
    r = org.client.patch(
        f"/objectives/{o['id']}", json={"visibility": "private"}, headers=org.h("bailu")
    )
    assert r.status_code == 200, r.text
    assert history(org, o["id"])[-1]["actor"] == "bailu"
    assert o["id"] not in listed_ids(org, "mengbo")
    assert o["id"] not in board_ids(org, "mengbo")
    assert o["id"] not in tree_ids(org, "mengbo")
    assert_problem(
        org.client.get(f"/objectives/{o['id']}", headers=org.h("mengbo")), 404, "not_found"
    )
    assert o["id"] in listed_ids(org, "boss")
    # bailu now reports to lufei: the old manager loses sight, the new one gains it.
    r = org.client.patch(
        "/directory/members/bailu", json={"manager_id": "lufei"}, headers=org.admin
    )
    assert r.status_code == 200, r.text
    assert o["id"] not in listed_ids(org, "boss")
    assert_problem(
        org.client.get(f"/objectives/{o['id']}", headers=org.h("boss")), 404, "not_found"
    )
    assert o["id"] in listed_ids(org, "lufei")
    assert o["id"] in board_ids(org, "lufei")
    assert get_objective(org, o["id"], "lufei")["visibility"] == "private"


# ---- authentication -------------------------------------------------------------------------


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


# ---- authorisation --------------------------------------------------------------------------


def test_non_admins_cannot_create_departments_members_or_cycles(sqlite_org):
    org = sqlite_org
    departments = org.client.get("/directory/departments", headers=org.admin).json()
    members = org.client.get("/directory/members", headers=org.admin).json()
    cycles = org.client.get("/cycles", headers=org.admin).json()
    for who in ("bailu", "boss"):
        h = org.h(who)
        r = org.client.post("/directory/departments", json={"name": "研发部"}, headers=h)
        assert_problem(r, 403, "forbidden")
        r = org.client.post("/directory/members", json={"id": "x", "name": "新人"}, headers=h)
        assert_problem(r, 403, "forbidden")
        r = org.client.post(
            "/cycles",
            json={
                "name": "2027 Q1",
                "kind": "quarter",
                "start_date": "2027-01-01",
                "end_date": "2027-03-31",
            },
            headers=h,
        )
        assert_problem(r, 403, "forbidden")
        r = org.client.post(
            f"/cycles/{org.cycle_id}/transitions", json={"to": "scoring"}, headers=h
        )
        assert_problem(r, 403, "forbidden")
        r = org.client.patch("/directory/members/mengbo", json={"manager_id": who}, headers=h)
        assert_problem(r, 403, "forbidden")
    assert org.client.get("/directory/departments", headers=org.admin).json() == departments
    assert org.client.get("/directory/members", headers=org.admin).json() == members
    assert org.client.get("/cycles", headers=org.admin).json() == cycles


def test_members_create_only_for_themselves_and_direct_reports(sqlite_org):
    org = sqlite_org
    chain(org)
    body = {"cycle_id": org.cycle_id, "title": "替别人写的目标"}
    for author, owner in (
        ("bailu", "mengbo"),
        ("boss", "lufei"),
        ("bigboss", "bailu"),
        ("mengbo", "boss"),
    ):
        r = org.client.post("/objectives", json=body | {"owner_id": owner}, headers=org.h(author))
        assert_problem(r, 403, "forbidden")
    r = org.client.post("/objectives", json=body | {"owner_id": "ghost"}, headers=org.h("boss"))
    assert_problem(r, 422, "invalid_input", "owner_id")
    r = org.client.post(
        "/objectives",
        json=body | {"owner_type": "department", "owner_id": "cs", "responsible_ids": ["boss"]},
        headers=org.h("bailu"),
    )
    assert_problem(r, 403, "forbidden")
    assert all_ids(org) == []


def test_supervisor_creates_for_a_direct_report_and_it_activates_without_approval(sqlite_org):
    org = sqlite_org
    body = {
        "cycle_id": org.cycle_id,
        "title": "老板替白露写的目标",
        "owner_id": "bailu",
        "key_results": [kr()],
    }
    r = org.client.post("/objectives", json=body, headers=org.h("boss"))
    assert r.status_code == 201, r.text
    o = r.json()
    assert (o["owner_id"], o["created_by"], o["created_for_report"]) == ("bailu", "boss", True)
    assert o["responsible_ids"] == ["bailu"]
    assert o["department_id"] == "cs"
    assert o["id"] in listed_ids(org, "bailu", "/me/objectives")
    r = org.client.post(f"/objectives/{o['id']}/submit", headers=org.h("bailu"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    events = history(org, o["id"])
    assert [e["type"] for e in events] == [
        "ObjectiveCreated",
        "KeyResultAdded",
        "ObjectiveActivated",
    ]
    assert [e["actor"] for e in events] == ["boss", "boss", "bailu"]
    # Whereas bailu's own objective needs the boss's approval.
    own = org.objective()
    r = org.client.post(f"/objectives/{own['id']}/submit", headers=org.h("bailu"))
    assert r.json()["status"] == "pending_approval"


def test_editing_rights(sqlite_org):
    org = sqlite_org
    o = org.active_objective()
    url = f"/objectives/{o['id']}"
    # A colleague may see a public objective but not change it.
    for who in ("mengbo", "lufei"):
        r = org.client.patch(url, json={"title": "同事改的"}, headers=org.h(who))
        assert_problem(r, 403, "forbidden")
        r = org.client.post(
            f"{url}/key-results/{kr_of(o)}/check-ins", json={"current": 5}, headers=org.h(who)
        )
        assert_problem(r, 403, "forbidden")
        r = org.client.post(f"{url}/cancel", json={}, headers=org.h(who))
        assert_problem(r, 403, "forbidden")
    assert get_objective(org, o["id"]) == o
    # The owner, the direct manager and an admin may.
    for who, headers in (("bailu", org.h("bailu")), ("boss", org.h("boss")), ("root", org.admin)):
        r = org.client.patch(url, json={"description": f"{who}改的"}, headers=headers)
        assert r.status_code == 200, r.text
    events = history(org, o["id"])
    assert [e["actor"] for e in events[-3:]] == ["bailu", "boss", "root"]
    assert all(e["type"] == "ObjectiveEdited" for e in events[-3:])


def test_only_the_direct_manager_or_an_admin_approves(sqlite_org):
    org = sqlite_org
    chain(org)
    o = org.objective()
    pending = org.client.post(f"/objectives/{o['id']}/submit", headers=org.h("bailu")).json()
    for who in ("bailu", "mengbo", "bigboss"):
        r = org.client.post(f"/objectives/{o['id']}/approve", headers=org.h(who))
        assert_problem(r, 403, "forbidden")
    assert get_objective(org, o["id"]) == pending
    r = org.client.post(f"/objectives/{o['id']}/approve", headers=org.admin)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert history(org, o["id"])[-1]["actor"] == "root"


def test_a_target_change_needs_a_reason(sqlite_org):
    org = sqlite_org
    o = org.active_objective()
    url = f"/objectives/{o['id']}/key-results/{kr_of(o)}"
    for body in ({"target": 200}, {"target": 200, "reason": ""}, {"target": 200, "reason": "  "}):
        r = org.client.patch(url, json=body, headers=org.h("bailu"))
        assert_problem(r, 422, "invalid_input", "reason")
    assert get_objective(org, o["id"]) == o
    r = org.client.patch(url, json={"target": 200, "reason": "市场扩大"}, headers=org.h("bailu"))
    assert r.status_code == 200, r.text
    assert r.json()["key_results"][0]["target"] == 200
    last = history(org, o["id"])[-1]
    assert last["type"] == "KeyResultTargetChanged"
    assert last["payload"]["reason"] == "市场扩大"
    assert (last["payload"]["old_target"], last["payload"]["new_target"]) == (100, 200)
    assert last["actor"] == "bailu"


# ---- alignment ------------------------------------------------------------------------------


def test_alignment_cycles_are_409(sqlite_org):
    org = sqlite_org
    a = org.active_objective("bailu", title="目标A")
    b = org.active_objective("mengbo", title="目标B")
    c = org.active_objective("boss", title="目标C")

    def align(child: dict[str, Any], parent: dict[str, Any], who: str) -> Any:
        return org.client.post(
            f"/objectives/{child['id']}/alignments",
            json={"parent_objective_id": parent["id"]},
            headers=org.h(who),
        )

    assert align(a, b, "bailu").status_code == 201
    assert align(b, c, "mengbo").status_code == 201
    # lufei reads them: a listed member (root is an admin only with its token's role).
    before = {x["id"]: get_objective(org, x["id"], "lufei") for x in (a, b, c)}
    assert_problem(align(c, a, "boss"), 409, "alignment_cycle", "parent_objective_id")
    assert_problem(align(b, a, "mengbo"), 409, "alignment_cycle", "parent_objective_id")
    assert_problem(align(a, a, "bailu"), 409, "alignment_cycle", "parent_objective_id")
    # Aligning twice to the same parent is a plain conflict.
    assert_problem(align(a, b, "bailu"), 409, "conflict", "parent_objective_id")
    assert {x: get_objective(org, x, "lufei") for x in before} == before


# ---- API documentation ----------------------------------------------------------------------


def test_openapi_and_docs(sqlite_org):
    org = sqlite_org
    r = org.client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/objectives",
        "/objectives/{objective_id}",
        "/boards/goals",
        "/alignment-tree",
        "/cycles",
        "/objectives/{objective_id}/history",
    ):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert schemas["ObjectiveIn"]["additionalProperties"] is False
    r = org.client.get("/docs")
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]
    assert "/openapi.json" in r.text
    assert org.client.get("/health").json() == {"status": "ok"}
    ready = org.client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_unknown_route_and_method_are_problems(sqlite_org):
    org = sqlite_org
    assert_problem(org.client.get("/no-such-thing", headers=org.admin), 404, "not_found")
    assert_problem(
        org.client.put("/objectives", json={}, headers=org.admin), 405, "method_not_allowed"
    )
