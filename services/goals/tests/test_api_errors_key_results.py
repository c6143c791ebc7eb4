"""Key results, check-ins and alignment over HTTP: wrong types, unknown KR ids, target changes,
`done` only on a boolean KR, alignment cycles.

Every refusal asserts the status, the problem+json `code` (and `field` where it means
something) and that nothing changed (SQLite only, for speed)."""

from __future__ import annotations

from typing import Any

import pytest
from goals_api_kit import assert_problem, get_objective, history, kr_of


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


def boolean_kr_objective(org: Any) -> dict[str, Any]:
    """An active objective with a metric KR (0 -> 50) and a boolean KR."""
    return org.active_objective(
        key_results=[
            {"title": "签约50家客户", "start": 0, "target": 50},
            {"title": "上线客户门户", "kind": "boolean"},
        ]
    )


def check_in(org: Any, objective: dict[str, Any], index: int, body: dict[str, Any]) -> Any:
    return org.client.post(
        f"/objectives/{objective['id']}/key-results/{kr_of(objective, index)}/check-ins",
        json=body,
        headers=org.h("bailu"),
    )


@pytest.mark.parametrize("done", [True, False])
def test_done_on_a_metric_kr_is_422_and_records_nothing(sqlite_org, done):
    org = sqlite_org
    o = boolean_kr_objective(org)
    r = check_in(org, o, 0, {"done": done})
    problem = assert_problem(r, 422, "invalid_input", "done")
    assert "boolean" in problem["detail"]
    assert get_objective(org, o["id"]) == o


def test_a_boolean_kr_takes_done_or_current_0_or_1(sqlite_org):
    org = sqlite_org
    o = boolean_kr_objective(org)
    r = check_in(org, o, 1, {"done": True})
    assert r.status_code == 201, r.text
    assert r.json()["objective"]["key_results"][1]["current"] == 1
    assert r.json()["objective"]["key_results"][1]["progress"] == 1
    r = check_in(org, o, 1, {"current": 0})
    assert r.status_code == 201, r.text
    assert r.json()["objective"]["key_results"][1]["progress"] == 0
    after = r.json()["objective"]
    for body, field in (
        ({"current": 0.5}, "current"),
        ({"current": 2}, "current"),
        ({"current": 1, "done": True}, "done"),
    ):
        assert_problem(check_in(org, o, 1, body), 422, "invalid_input", field)
    assert get_objective(org, o["id"]) == after
