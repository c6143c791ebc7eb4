"""The objective lifecycle over HTTP: illegal transitions and who may approve.

Every refusal asserts the status, the problem+json `code` (and `field` where it means
something) and that nothing changed (SQLite only, for speed)."""

from __future__ import annotations

from goals_api_kit import assert_problem, chain, get_objective, history


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
