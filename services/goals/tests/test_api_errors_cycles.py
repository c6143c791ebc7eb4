"""Cycles over HTTP: unknown ids, illegal transitions, bad dates, stale If-Match, closed cycles.

Every refusal asserts the status, the problem+json `code` (and `field` where it means
something) and that nothing changed (SQLite only, for speed)."""

from __future__ import annotations

import uuid

from goals_api_kit import all_ids, assert_problem, get_objective, kr_of


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
