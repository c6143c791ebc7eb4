"""A token whose `sub` the organisation's directory does not list, or lists as inactive, sees
nothing and may do nothing over HTTP; the identity provider's admin still runs the organisation
(docs/access-policy.md). Issue 9's trial finding: such a token read the public board."""

from __future__ import annotations

from typing import Any

import pytest
from okr_testkit.goals import Org

PROBLEM = "application/problem+json"


def problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == code


def objectives_of_every_visibility(org: Org) -> list[dict[str, Any]]:
    return [
        org.active_objective("bailu", title=f"白露的{visibility}目标", visibility=visibility)
        for visibility in ("public", "department", "private")
    ]


def make_inactive(org: Org, member_id: str) -> None:
    r = org.client.patch(
        f"/directory/members/{member_id}", json={"active": False}, headers=org.admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False


def assert_sees_nothing(org: Org, headers: dict[str, str], objectives: list[dict[str, Any]]):
    client = org.client
    assert client.get("/objectives", headers=headers).json() == []
    assert client.get("/objectives", params={"owner_id": "bailu"}, headers=headers).json() == []
    assert client.get("/me/objectives", headers=headers).json() == []
    board = client.get("/boards/goals", headers=headers).json()
    assert board == {"objectives": 0, "rows": []}
    assert client.get("/alignment-tree", headers=headers).json() == []
    assert client.get("/cycles", headers=headers).json() == []
    problem(client.get(f"/cycles/{org.cycle_id}", headers=headers), 404, "not_found")
    # The directory looks like one nobody has set up.
    assert client.get("/directory/members", headers=headers).json() == []
    assert client.get("/directory/departments", headers=headers).json() == []
    problem(client.get("/directory/members/bailu", headers=headers), 404, "not_found")
    for objective in objectives:
        oid = objective["id"]
        problem(client.get(f"/objectives/{oid}", headers=headers), 404, "not_found")
        problem(client.get(f"/objectives/{oid}/history", headers=headers), 404, "not_found")
        problem(client.get(f"/objectives/{oid}/activity", headers=headers), 404, "not_found")


def assert_may_do_nothing(org: Org, headers: dict[str, str], objectives: list[dict[str, Any]]):
    client = org.client
    for objective in objectives:
        oid, kr = objective["id"], objective["key_results"][0]["id"]
        problem(
            client.patch(f"/objectives/{oid}", json={"title": "改"}, headers=headers),
            404,
            "not_found",
        )
        problem(
            client.post(
                f"/objectives/{oid}/key-results/{kr}/check-ins",
                json={"current": 99},
                headers=headers,
            ),
            404,
            "not_found",
        )
    r = client.post(
        "/objectives", json={"cycle_id": org.cycle_id, "title": "我的"}, headers=headers
    )
    problem(r, 403, "forbidden")
    r = client.post("/directory/departments", json={"id": "x", "name": "X"}, headers=headers)
    problem(r, 403, "forbidden")


def assert_unchanged(org: Org, objectives: list[dict[str, Any]]) -> None:
    for objective in objectives:
        r = org.client.get(f"/objectives/{objective['id']}", headers=org.h("bailu"))
        assert r.status_code == 200, r.text
        assert r.json() == objective


@pytest.mark.parametrize("sub", ["nobody", "bailu-typo"])
def test_a_token_the_directory_does_not_list_sees_and_does_nothing(org: Org, sub: str):
    objectives = objectives_of_every_visibility(org)
    headers = org.h(sub)
    assert_sees_nothing(org, headers, objectives)
    assert_may_do_nothing(org, headers, objectives)
    assert_unchanged(org, objectives)
    # The same organisation, to a member: the public objective is on the board.
    board = org.client.get("/boards/goals", headers=org.h("lufei")).json()
    assert objectives[0]["id"] in {row["objective_id"] for row in board["rows"]}


def test_an_inactive_member_sees_and_does_nothing_even_their_own(sqlite_org: Org):
    org = sqlite_org
    objectives = objectives_of_every_visibility(org)
    mine = org.active_objective("mengbo", title="孟波的目标")
    make_inactive(org, "mengbo")
    headers = org.h("mengbo")
    assert_sees_nothing(org, headers, [*objectives, mine])
    assert_may_do_nothing(org, headers, [*objectives, mine])
    assert_unchanged(org, objectives)
    # Those still in the organisation see what she left behind.
    assert org.client.get(f"/objectives/{mine['id']}", headers=org.h("lufei")).status_code == 200


def test_an_inactive_member_with_an_admin_token_is_still_out(sqlite_org: Org):
    org = sqlite_org
    objectives = objectives_of_every_visibility(org)
    make_inactive(org, "boss")
    headers = org.h("boss", roles=["admin"])
    assert_sees_nothing(org, headers, objectives)
    assert_may_do_nothing(org, headers, objectives)


def test_the_identity_providers_admin_runs_the_organisation_without_being_listed(
    sqlite_org: Org,
):
    # The README's walkthrough admin: `make token MEMBER=admin ORG=acme ROLES=admin`.
    org = sqlite_org
    objectives = objectives_of_every_visibility(org)
    admin = org.h("admin", roles=["admin"])
    listed = {m["id"] for m in org.client.get("/directory/members", headers=admin).json()}
    assert "admin" not in listed and "bailu" in listed
    r = org.client.post("/directory/departments", json={"id": "hr", "name": "人力"}, headers=admin)
    assert r.status_code == 201, r.text
    assert org.client.get(f"/cycles/{org.cycle_id}", headers=admin).status_code == 200
    board = org.client.get("/boards/goals", headers=admin).json()
    assert {o["id"] for o in objectives} <= {row["objective_id"] for row in board["rows"]}
    for objective in objectives:
        r = org.client.get(f"/objectives/{objective['id']}", headers=admin)
        assert r.status_code == 200, r.text


def test_the_first_admin_sets_up_an_empty_organisation(client_factory, sqlite_only):
    client = client_factory(sqlite_only)
    org = Org(client=client, settings=sqlite_only, cycle_id="")
    admin = org.h("admin", org="fresh", roles=["admin"])
    r = client.post(
        "/directory/departments", json={"id": "cs", "name": "客户成功部"}, headers=admin
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/directory/members",
        json={"id": "bailu", "name": "白露", "department_id": "cs"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/cycles",
        json={
            "name": "Q4",
            "kind": "quarter",
            "start_date": "2026-10-01",
            "end_date": "2026-12-31",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    # A non-admin token cannot start an organisation.
    r = client.post(
        "/directory/departments",
        json={"id": "cs", "name": "客户成功部"},
        headers=org.h("someone", org="fresher"),
    )
    problem(r, 403, "forbidden")
