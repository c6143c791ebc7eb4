"""The notifier applies the suite's one access policy (docs/access-policy.md) from its copy of
the directory: a token the directory does not list, or lists as inactive, sees nothing here
either (no follow, no history, no report, no reminder); the identity provider's admin does."""

from __future__ import annotations

from typing import Any

from okr_testkit.suite import Suite

PROBLEM = "application/problem+json"
#: Reports are as of a moment; after every check-in these tests make, whatever today is.
LATER = "2099-01-01"


def not_found(response: Any) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


def make_inactive(suite: Suite, member_id: str) -> None:
    r = suite.client.patch(
        f"/directory/members/{member_id}", json={"active": False}, headers=suite.org.admin
    )
    assert r.status_code == 200, r.text
    suite.settle()


def assert_sees_nothing(suite: Suite, headers: dict[str, str], objective: dict[str, Any]) -> None:
    oid = objective["id"]
    not_found(suite.client.put(f"/objectives/{oid}/follow", headers=headers))
    not_found(suite.client.get(f"/objectives/{oid}/progress-history", headers=headers))
    assert suite.client.get("/follows", headers=headers).json() == []
    report = suite.client.get(
        "/reports/operations",
        params={"cycle_id": suite.org.cycle_id, "as_of": LATER},
        headers=headers,
    )
    assert report.status_code == 200, report.text
    assert report.json()["objectives"] == []


def test_a_token_the_directory_does_not_list_sees_nothing(suite: Suite):
    objective = suite.org.active_objective("bailu")  # public
    suite.check_in("bailu", objective, current=10)
    assert_sees_nothing(suite, suite.h("nobody"), objective)
    # A member of the organisation does see it, in every one of those places.
    member = suite.h("lufei")
    suite.follow("lufei", objective["id"])
    history = suite.client.get(f"/objectives/{objective['id']}/progress-history", headers=member)
    assert history.status_code == 200, history.text
    assert [f["objective_id"] for f in suite.client.get("/follows", headers=member).json()] == [
        objective["id"]
    ]
    report = suite.client.get(
        "/reports/operations",
        params={"cycle_id": suite.org.cycle_id, "as_of": LATER},
        headers=member,
    ).json()
    assert [o["objective_id"] for o in report["objectives"]] == [objective["id"]]


def test_a_member_made_inactive_sees_nothing_and_is_told_nothing(suite: Suite):
    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"])
    suite.follow("lufei", objective["id"])
    make_inactive(suite, "mengbo")
    suite.check_in("bailu", objective, current=30, confidence=1)
    assert suite.inbox("mengbo")["items"] == []
    assert [n["rule"] for n in suite.inbox("lufei")["items"]] == ["progress_updated"]
    assert_sees_nothing(suite, suite.h("mengbo"), objective)


def test_an_inactive_member_with_an_admin_token_sees_nothing(suite: Suite):
    objective = suite.org.active_objective("bailu", visibility="private")
    make_inactive(suite, "boss")  # bailu's manager, who would see it
    assert_sees_nothing(suite, suite.h("boss", roles=["admin"]), objective)


def test_the_identity_providers_admin_sees_without_being_listed(suite: Suite):
    objective = suite.org.active_objective("bailu", visibility="private")
    suite.check_in("bailu", objective, current=10)
    suite.settle()
    admin = suite.h("auditor", roles=["admin"])
    r = suite.client.get(f"/objectives/{objective['id']}/progress-history", headers=admin)
    assert r.status_code == 200, r.text
    report = suite.client.get(
        "/reports/operations",
        params={"cycle_id": suite.org.cycle_id, "as_of": LATER},
        headers=admin,
    ).json()
    assert [o["objective_id"] for o in report["objectives"]] == [objective["id"]]
