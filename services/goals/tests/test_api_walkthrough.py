"""End-to-end flows over HTTP, on SQLite and on real PostgreSQL (the `org` fixture).

The walkthrough follows one objective from a new cycle to its board rows, activity log,
history and time travel; then Chinese text round-trips everywhere."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from flows_kit import CS, check_in, elapsed_share, ids, ok
from okr_testkit.clock import quarter_around

# ---- the walkthrough -------------------------------------------------------------------------


def test_walkthrough_from_cycle_to_history(org):
    c = org.client

    # A cycle around today (the board's pace is measured against now), planned then activated
    # by an admin.
    start, end = quarter_around(datetime.now(UTC).date())
    created = c.post(
        "/cycles",
        json={
            "name": "2026年第四季度",
            "kind": "quarter",
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
        },
        headers=org.admin,
    )
    cycle = ok(created, 201)
    assert (cycle["name"], cycle["state"], cycle["version"]) == ("2026年第四季度", "planning", 1)
    assert created.headers["Location"] == f"/cycles/{cycle['id']}"
    cycle = ok(
        c.post(
            f"/cycles/{cycle['id']}/transitions",
            json={"to": "active"},
            headers=org.admin | {"If-Match": '"1"'},
        )
    )
    assert (cycle["state"], cycle["version"]) == ("active", 2)
    assert cycle["id"] in ids(c.get("/cycles", headers=org.h("bailu")).json())

    # An objective with three key results, in one request.
    body = {
        "cycle_id": cycle["id"],
        "title": "建立高效专业的客户支持团队",
        "description": "让每一位客户都满意：响应快、解决率高",
        "key_results": [
            {
                "title": "获取100家客户的5星好评",
                "unit": "custom",
                "unit_label": "家",
                "start": 0,
                "target": 100,
                "weight": 2,
            },
            {"title": "客户满意度提升到100%", "unit": "percent", "start": 0, "target": 100},
            {"title": "月投诉从50次降到10次", "start": 50, "target": 10},
        ],
    }
    o = ok(c.post("/objectives", json=body, headers=org.h("bailu")), 201)
    assert (o["status"], o["version"], o["progress"], o["confidence"]) == ("draft", 4, 0, None)
    assert (o["owner_id"], o["department_id"], o["level"]) == ("bailu", "cs", "personal")
    assert o["title"] == body["title"] and o["description"] == body["description"]
    krs = [kr["id"] for kr in o["key_results"]]
    assert [kr["title"] for kr in o["key_results"]] == [k["title"] for k in body["key_results"]]
    assert o["key_results"][2]["decreasing"] is True

    # Submit, approve by the direct manager.
    o = ok(c.post(f"/objectives/{o['id']}/submit", headers=org.h("bailu")))
    assert (o["status"], o["version"]) == ("pending_approval", 5)
    o = ok(c.post(f"/objectives/{o['id']}/approve", headers=org.h("boss")))
    assert (o["status"], o["version"]) == ("active", 6)

    # Check-ins: objective progress is the weighted mean, confidence the lowest
    # (docs/domain.md#progress, #confidence).
    o = check_in(org, o, krs[0], "bailu", current=60, confidence=4, note="本周新增20家好评")
    assert o["key_results"][0]["progress"] == pytest.approx(0.6)
    assert o["progress"] == pytest.approx((2 * 0.6) / 4)
    assert o["confidence"] == 4
    time.sleep(0.05)  # distinct timestamps for the as_of query below
    o = check_in(org, o, krs[1], "boss", current=30, confidence=2)
    assert o["progress"] == pytest.approx((2 * 0.6 + 0.3) / 4)
    assert o["confidence"] == 2
    time.sleep(0.05)
    o = check_in(org, o, krs[2], "bailu", current=30, risk="at_risk", note="投诉减少了一半")
    assert o["key_results"][2]["progress"] == pytest.approx(0.5)
    assert o["progress"] == pytest.approx((2 * 0.6 + 0.3 + 0.5) / 4)
    assert o["confidence"] == 2  # the KR without a rating does not count
    assert o["version"] == 9
    assert [kr["check_ins"] for kr in o["key_results"]] == [1, 1, 1]
    assert ok(c.get(f"/objectives/{o['id']}", headers=org.h("mengbo"))) == o

    # The board: one row per KR, display text, people and department by name.
    asked_from = elapsed_share(cycle)
    board = ok(c.get("/boards/goals", params={"cycle_id": cycle["id"]}, headers=org.h("mengbo")))
    asked_until = elapsed_share(cycle)
    assert board["objectives"] == 1
    rows = board["rows"]
    assert len(rows) == 3
    assert [r["key_result"]["display"] for r in rows] == ["60家(60%)", "30%/30%", "30/10(50%)"]
    assert [r["key_result"]["id"] for r in rows] == krs
    assert [r["confidence"] for r in rows] == [4, 2, None]
    assert [r["key_result"]["risk"] for r in rows] == ["normal", "normal", "at_risk"]
    for row in rows:
        assert row["objective_id"] == o["id"]
        assert row["objective_version"] == 9
        assert row["objective"] == "建立高效专业的客户支持团队"
        assert row["department"] == CS
        assert row["people"] == [{"id": "bailu", "name": "白露"}]
        assert row["cycle"] == {"id": cycle["id"], "name": "2026年第四季度", "state": "active"}
        assert row["status"] == "active"
        assert row["objective_progress"] == pytest.approx(0.5)
        assert row["objective_confidence"] == 2
        # Expected progress is the elapsed share of the cycle; behind below 70% of it.
        assert asked_from - 1e-6 <= row["expected_progress"] <= asked_until + 1e-6
        assert row["behind_pace"] == (row["expected_progress"] * 0.7 > 0.5)

    # The activity log: every change, in order, with its actor.
    activity = ok(c.get(f"/objectives/{o['id']}/activity", headers=org.h("mengbo")))
    assert [a["version"] for a in activity] == list(range(1, 10))
    assert [a["action"] for a in activity] == [
        "objective.created",
        "key_result.added",
        "key_result.added",
        "key_result.added",
        "objective.submitted",
        "objective.approved",
        "key_result.checked_in",
        "key_result.checked_in",
        "key_result.checked_in",
    ]
    actors = ["bailu"] * 5 + ["boss", "bailu", "boss", "bailu"]
    assert [a["actor"] for a in activity] == actors
    assert activity[6]["params"]["note"] == "本周新增20家好评"
    assert activity[6]["params"]["after"]["current"] == 60

    # The history: ordered versions, event types and actors.
    events = ok(c.get(f"/objectives/{o['id']}/history", headers=org.h("bailu")))
    assert [e["version"] for e in events] == list(range(1, 10))
    assert [e["type"] for e in events] == [
        "ObjectiveCreated",
        "KeyResultAdded",
        "KeyResultAdded",
        "KeyResultAdded",
        "ObjectiveSubmittedForApproval",
        "ObjectiveApproved",
        "KRProgressUpdated",
        "KRProgressUpdated",
        "KRProgressUpdated",
    ]
    assert [e["actor"] for e in events] == actors
    times = [datetime.fromisoformat(e["time"]) for e in events]
    assert times == sorted(times)
    assert events[0]["payload"]["title"] == "建立高效专业的客户支持团队"
    assert events[7]["payload"]["before"]["current"] == 0
    assert events[7]["payload"]["after"]["current"] == 30
    assert events[8]["payload"]["note"] == "投诉减少了一半"

    # Time travel: by version and by moment.
    url = f"/objectives/{o['id']}"
    v5 = ok(c.get(url, params={"version": 5}, headers=org.h("bailu")))
    assert (v5["version"], v5["status"], v5["progress"]) == (5, "pending_approval", 0)
    v7 = ok(c.get(url, params={"version": 7}, headers=org.h("bailu")))
    assert v7["version"] == 7 and v7["status"] == "active"
    assert [kr["current"] for kr in v7["key_results"]] == [60, 0, 50]
    assert v7["progress"] == pytest.approx(0.3)
    between = times[6] + (times[7] - times[6]) / 2
    assert times[6] < between < times[7]
    then = ok(c.get(url, params={"as_of": between.isoformat()}, headers=org.h("bailu")))
    assert then == v7
    at_event = ok(c.get(url, params={"as_of": times[7].isoformat()}, headers=org.h("bailu")))
    assert at_event["version"] == 8
    now = ok(
        c.get(
            url, params={"as_of": datetime.now(times[0].tzinfo).isoformat()}, headers=org.h("bailu")
        )
    )
    assert now == o
    r = c.get(url, params={"as_of": "2000-01-01T00:00:00+00:00"}, headers=org.h("bailu"))
    assert r.status_code == 404 and r.json()["field"] == "as_of"
    # Looking back changed nothing.
    assert ok(c.get(url, headers=org.h("bailu"))) == o


def test_chinese_text_round_trips_everywhere(org):
    c = org.client
    text = "把「客户第一」落到实处：🚀 全年无休、百分之百响应"
    ok(
        c.post(
            "/directory/departments",
            json={"id": "hd", "name": "华东区·客户成功", "parent_id": "cs"},
            headers=org.admin,
        ),
        201,
    )
    ok(
        c.post(
            "/directory/members",
            json={"id": "xiaoyu", "name": "欧阳小雨", "department_id": "hd", "manager_id": "boss"},
            headers=org.admin,
        ),
        201,
    )
    o = org.active_objective(
        "xiaoyu",
        title=text,
        description="描述：" + text,
        key_results=[
            {"title": "签约" + text, "unit": "custom", "unit_label": "位", "start": 0, "target": 8}
        ],
    )
    kr = o["key_results"][0]["id"]
    o = check_in(org, o, kr, "xiaoyu", current=2, confidence=3, note="备注：" + text)
    o = ok(
        c.patch(
            f"/objectives/{o['id']}/key-results/{kr}",
            json={"target": 10, "reason": "原因：" + text},
            headers=org.h("xiaoyu"),
        )
    )
    got = ok(c.get(f"/objectives/{o['id']}", headers=org.h("lufei")))
    assert got["title"] == text and got["description"] == "描述：" + text
    assert got["key_results"][0]["title"] == "签约" + text
    assert got["key_results"][0]["unit_label"] == "位"
    listed = next(
        x for x in c.get("/objectives", headers=org.h("lufei")).json() if x["id"] == o["id"]
    )
    assert listed == got
    row = c.get("/boards/goals", params={"owner_id": "xiaoyu"}, headers=org.h("lufei")).json()
    assert row["rows"][0]["objective"] == text
    assert row["rows"][0]["key_result"]["display"] == "2位(20%)"
    assert row["rows"][0]["department"] == {"id": "hd", "name": "华东区·客户成功"}
    assert row["rows"][0]["people"] == [{"id": "xiaoyu", "name": "欧阳小雨"}]
    activity = c.get(f"/objectives/{o['id']}/activity", headers=org.h("lufei")).json()
    assert activity[0]["params"]["title"] == text
    assert any(a["params"].get("note") == "备注：" + text for a in activity)
    events = c.get(f"/objectives/{o['id']}/history", headers=org.h("lufei")).json()
    assert events[-1]["payload"]["reason"] == "原因：" + text
    tree = c.get("/alignment-tree", headers=org.h("lufei")).json()
    node = next(n for n in tree if n["id"] == o["id"])
    assert node["title"] == text and node["department"]["name"] == "华东区·客户成功"
    departments = c.get("/directory/departments", headers=org.h("lufei")).json()
    assert {"id": "hd", "name": "华东区·客户成功", "parent_id": "cs", "lead_ids": []} in departments
    member = ok(c.get("/directory/members/xiaoyu", headers=org.h("lufei")))
    assert member["name"] == "欧阳小雨"
    assert "欧阳小雨".encode() in c.get("/directory/members/xiaoyu", headers=org.h("lufei")).content
