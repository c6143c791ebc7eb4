"""Reads over HTTP: list and board filters, other organisations and private objectives hidden
everywhere, the API's documentation and unknown routes.

Every refusal asserts the status, the problem+json `code` (and `field` where it means
something) and that nothing changed (SQLite only, for speed)."""

from __future__ import annotations

import pytest
from goals_api_kit import (
    add_member,
    assert_problem,
    board_ids,
    chain,
    get_objective,
    history,
    kr_of,
    listed_ids,
    tree_ids,
)


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
