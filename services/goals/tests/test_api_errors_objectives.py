"""Objectives over HTTP: wrong types, missing and unknown fields, malformed JSON, unknown and
non-UUID ids, null where a PATCH cannot take it, versions and If-Match, who may create and edit.

Every refusal asserts the status, the problem+json `code` (and `field` where it means
something) and that nothing changed (SQLite only, for speed)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from goals_api_kit import (
    all_ids,
    assert_problem,
    chain,
    get_objective,
    history,
    kr,
    kr_of,
    listed_ids,
)


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


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/objectives"),
        ("patch", "/objectives/{id}"),
        ("post", "/objectives/{id}/key-results/{kr}/check-ins"),
        ("post", "/cycles"),
    ],
)
@pytest.mark.parametrize(
    "payload", [b'{"title": ', b"not json at all", b'{"title": "a",}', b'{"title": "\xff"}']
)
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


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("", {"title": None}, "title"),
        ("", {"level": None}, "level"),
        ("", {"visibility": None}, "visibility"),
        ("", {"weight": None}, "weight"),
        ("/key-results/{kr}", {"title": None}, "title"),
        ("/key-results/{kr}", {"weight": None}, "weight"),
        ("/key-results/{kr}", {"target": None, "reason": "清空"}, "target"),
    ],
)
def test_a_patch_refuses_null_where_it_means_nothing(sqlite_org, path, body, field):
    org = sqlite_org
    o = org.active_objective()
    url = f"/objectives/{o['id']}" + path.format(kr=kr_of(o))
    problem = assert_problem(
        org.client.patch(url, json=body, headers=org.h("bailu")), 422, "validation_error", field
    )
    assert problem["errors"][0]["field"] == field
    assert get_objective(org, o["id"]) == o
