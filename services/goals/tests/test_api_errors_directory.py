"""The organisation directory over HTTP: bad input and refusals on departments, members and
settings.

Every refusal asserts the status, the problem+json `code` (and `field` where it means
something) and that nothing changed (SQLite only, for speed)."""

from __future__ import annotations

from typing import Any

import pytest
from goals_api_kit import assert_problem
from okr_goals.domain.organisation import Organisation
from okr_platform.errors import InvalidInput


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


def member(org: Any, member_id: str) -> dict[str, Any]:
    r = org.client.get(f"/directory/members/{member_id}", headers=org.admin)
    assert r.status_code == 200, r.text
    return r.json()


def settings_now(org: Any) -> tuple[dict[str, Any], str]:
    r = org.client.get("/directory/settings", headers=org.admin)
    assert r.status_code == 200, r.text
    return r.json(), r.headers["ETag"]


@pytest.mark.parametrize("field", ["name", "time_zone", "roles", "active"])
def test_a_member_field_that_cannot_be_cleared_refuses_null(sqlite_org, field):
    org = sqlite_org
    before, etag = member(org, "bailu"), settings_now(org)[1]
    r = org.client.patch("/directory/members/bailu", json={field: None}, headers=org.admin)
    problem = assert_problem(r, 422, "validation_error", field)
    assert problem["errors"][0]["field"] == field
    # Nor as the member changing their own details.
    r = org.client.patch("/directory/members/bailu", json={field: None}, headers=org.h("bailu"))
    assert_problem(r, 422, "validation_error", field)
    assert member(org, "bailu") == before
    assert settings_now(org)[1] == etag  # the directory's version did not move


def test_null_clears_a_members_manager_department_or_email(sqlite_org):
    org = sqlite_org
    r = org.client.patch(
        "/directory/members/bailu",
        json={"manager_id": None, "department_id": None, "email": None},
        headers=org.admin,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["manager_id"], r.json()["department_id"], r.json()["email"]) == (
        None,
        None,
        None,
    )


def test_the_domain_refuses_none_where_a_member_field_cannot_be_cleared():
    org = Organisation("acme", "acme", actor="root")
    org.add_member("bailu", "白露", None, None, "Asia/Shanghai", ["employee"], None, actor="root")
    for field in ("name", "time_zone", "roles", "active"):
        with pytest.raises(InvalidInput) as refused:
            org.update_member("bailu", {field: None}, actor="root")
        assert refused.value.field == field
    with pytest.raises(InvalidInput) as refused:
        org.update_member("bailu", {"name": "  "}, actor="root")
    assert refused.value.field == "name"
    with pytest.raises(InvalidInput) as refused:
        org.change_settings({"approval_required": None}, actor="root")
    assert refused.value.field == "approval_required"
    assert org.members["bailu"].name == "白露" and org.settings.approval_required is True


def test_patch_settings_changes_only_the_settings_sent(sqlite_org):
    org = sqlite_org
    before, etag = settings_now(org)
    r = org.client.patch(
        "/directory/settings",
        json={"subtasks_enabled": True},
        headers=org.admin | {"If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert r.json() == before | {"subtasks_enabled": True}
    assert int(r.headers["ETag"].strip('"')) == int(etag.strip('"')) + 1
    assert settings_now(org) == (r.json(), r.headers["ETag"])
    r = org.client.patch(
        "/directory/settings",
        json={"progress_warning_threshold": 0.5, "score_scale": "0-1"},
        headers=org.admin,
    )
    assert r.status_code == 200, r.text
    assert r.json() == before | {
        "subtasks_enabled": True,
        "progress_warning_threshold": 0.5,
        "score_scale": "0-1",
    }


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({}, 422, "invalid_input", "body"),
        ({"approval_required": None}, 422, "validation_error", "approval_required"),
        (
            {"progress_warning_threshold": None},
            422,
            "validation_error",
            "progress_warning_threshold",
        ),
        ({"progress_warning_threshold": 0}, 422, "validation_error", "progress_warning_threshold"),
        ({"score_scale": "0-10"}, 422, "validation_error", "score_scale"),
        ({"confidence_scale": 10}, 422, "validation_error", "confidence_scale"),
        ({"subtasks_enabled": "yes"}, 422, "validation_error", "subtasks_enabled"),
        ({"theme": "dark"}, 422, "validation_error", "theme"),
    ],
)
def test_patch_settings_refuses_bad_input_and_changes_nothing(
    sqlite_org, body, status, code, field
):
    org = sqlite_org
    before = settings_now(org)
    r = org.client.patch("/directory/settings", json=body, headers=org.admin)
    assert_problem(r, status, code, field)
    assert settings_now(org) == before


def test_patch_settings_honours_if_match_and_is_for_admins(sqlite_org):
    org = sqlite_org
    before, etag = settings_now(org)
    stale = f'"{int(etag.strip(chr(34))) - 1}"'
    body = {"approval_required": False}
    r = org.client.patch("/directory/settings", json=body, headers=org.admin | {"If-Match": stale})
    assert_problem(r, 412, "stale_version", "If-Match")
    r = org.client.patch("/directory/settings", json=body, headers=org.admin | {"If-Match": "x"})
    assert_problem(r, 422, "invalid_input", "If-Match")
    r = org.client.patch("/directory/settings", json=body, headers=org.h("boss"))
    assert_problem(r, 403, "forbidden")
    assert settings_now(org) == (before, etag)


def test_put_settings_still_replaces_all_six(sqlite_org):
    org = sqlite_org
    before = settings_now(org)
    r = org.client.put("/directory/settings", json={"subtasks_enabled": True}, headers=org.admin)
    problem = assert_problem(r, 422, "validation_error")
    assert {e["field"] for e in problem["errors"]} == {
        "approval_required",
        "approver_may_edit",
        "score_scale",
        "confidence_scale",
        "progress_warning_threshold",
    }
    assert settings_now(org) == before
