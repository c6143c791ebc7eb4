"""Progress history (before/after, actor, source) and the operations report as of a date."""

from __future__ import annotations

from datetime import timedelta

from okr_testkit.suite import Suite


def test_progress_history_has_before_and_after_actor_and_source(suite: Suite):
    objective = suite.org.active_objective("bailu")
    kr = objective["key_results"][0]["id"]
    suite.check_in("bailu", objective, current=20, confidence=4, note="第一周")
    suite.check_in("bailu", objective, current=45, confidence=3, source="report")
    r = suite.client.patch(
        f"/objectives/{objective['id']}/key-results/{kr}",
        json={"target": 90, "reason": "市场变化"},
        headers=suite.h("bailu"),
    )
    assert r.status_code == 200, r.text
    suite.settle()
    r = suite.client.get(
        f"/objectives/{objective['id']}/progress-history", headers=suite.h("mengbo")
    )
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    kr_points = [p for p in points if p["kr_id"] == kr]
    assert [(p["source"], p["value_before"], p["value_after"]) for p in kr_points] == [
        ("kr_added", None, 0),
        ("manual", 0, 20),
        ("report", 20, 45),
        ("target_change", 45, 45),
    ]
    assert kr_points[1]["note"] == "第一周" and kr_points[1]["actor"] == "bailu"
    assert kr_points[2]["confidence_before"] == 4 and kr_points[2]["confidence_after"] == 3
    assert kr_points[3]["target"] == 90 and kr_points[3]["progress_after"] == 0.5
    objective_points = [p for p in points if p["kr_id"] is None]
    assert [round(p["progress_after"], 2) for p in objective_points] == [0.2, 0.45, 0.5]
    only_objective = suite.client.get(
        f"/objectives/{objective['id']}/progress-history",
        params={"kr_id": "objective"},
        headers=suite.h("mengbo"),
    ).json()["points"]
    assert only_objective == objective_points


def test_history_of_an_objective_one_cannot_see_is_not_found(suite: Suite):
    private = suite.org.active_objective("bailu", visibility="private")
    suite.settle()
    r = suite.client.get(f"/objectives/{private['id']}/progress-history", headers=suite.h("lufei"))
    assert r.status_code == 404
    r = suite.client.get(f"/objectives/{private['id']}/progress-history", headers=suite.h("boss"))
    assert r.status_code == 200


def test_operations_report_as_of_a_date(suite: Suite):
    today = suite.clock.now().date()
    admin = suite.org.admin
    cycle = suite.client.post(
        "/cycles",
        json={
            "name": "report",
            "kind": "custom",
            "start_date": (today - timedelta(days=50)).isoformat(),
            "end_date": (today + timedelta(days=49)).isoformat(),
        },
        headers=admin,
    ).json()
    suite.client.post(f"/cycles/{cycle['id']}/transitions", json={"to": "active"}, headers=admin)
    support = suite.org.active_objective("bailu", cycle_id=cycle["id"], visibility="department")
    market = suite.org.active_objective(
        "lufei", cycle_id=cycle["id"], title="将北极星OKR打造成市场占有率第一的OKR软件"
    )
    suite.check_in("bailu", support, current=80)
    suite.check_in("lufei", market, current=10)

    r = suite.client.get(
        "/reports/operations",
        params={"cycle_id": cycle["id"], "as_of": today.isoformat()},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert 0.5 < report["expected_progress"] < 0.52
    by_title = {o["title"]: o for o in report["objectives"]}
    ahead = by_title[support["title"]]
    assert ahead["progress"] == 0.8 and ahead["behind"] is False
    assert round(ahead["gap"], 2) == round(0.8 - report["expected_progress"], 2)
    [kr] = ahead["key_results"]
    assert (kr["target"], kr["actual"], kr["progress"]) == (100, 80, 0.8)
    assert by_title[market["title"]]["behind"] is True
    departments = {d["department_id"]: d for d in report["departments"]}
    assert departments["cs"]["name"] == "客户成功部" and departments["cs"]["progress"] == 0.8
    assert departments["pm"]["progress"] == 0.1

    yesterday = suite.client.get(
        "/reports/operations",
        params={"cycle_id": cycle["id"], "as_of": (today - timedelta(days=1)).isoformat()},
        headers=admin,
    ).json()
    assert yesterday["objectives"] == []  # nothing had happened yet

    # lufei (产品市场部) cannot see a department-only objective of 客户成功部
    r = suite.client.get(
        "/reports/operations",
        params={"cycle_id": cycle["id"], "as_of": today.isoformat()},
        headers=suite.h("lufei"),
    )
    assert [o["title"] for o in r.json()["objectives"]] == [market["title"]]


def test_report_input_errors(sqlite_suite: Suite):
    suite = sqlite_suite
    for params, field in (
        ({"cycle_id": suite.org.cycle_id, "as_of": "yesterday"}, "as_of"),
        ({"cycle_id": suite.org.cycle_id, "as_of": "2026-11-23T10:00:00"}, "as_of"),
        ({}, "cycle_id"),
    ):
        r = suite.client.get("/reports/operations", params=params, headers=suite.org.admin)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
    r = suite.client.get(
        "/reports/operations", params={"cycle_id": "nope"}, headers=suite.org.admin
    )
    assert r.status_code == 404
