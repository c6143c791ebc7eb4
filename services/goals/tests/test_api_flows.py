"""End-to-end flows over HTTP, on SQLite and on real PostgreSQL (the `org` fixture).

The walkthrough follows one objective from a new cycle to its board rows, activity log,
history and time travel; then the list filters, the alignment tree and concurrent writers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from datetime import time as clock
from typing import Any

import pytest
from okr_testkit.clock import quarter_around

CS = {"id": "cs", "name": "客户成功部"}


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    if isinstance(body, dict) and "version" in body:
        assert response.headers["ETag"] == f'"{body["version"]}"'
    return body


def check_in(org: Any, o: dict[str, Any], kr_id: str, who: str, **body: Any) -> dict[str, Any]:
    r = org.client.post(
        f"/objectives/{o['id']}/key-results/{kr_id}/check-ins", json=body, headers=org.h(who)
    )
    assert r.status_code == 201, r.text
    result = r.json()
    assert r.headers["ETag"] == f'"{result["objective"]["version"]}"'
    assert len(result["check_in_id"]) >= 16
    return result["objective"]


def elapsed_share(cycle: dict[str, Any]) -> float:
    """Elapsed share of the cycle now (start date first instant to end date last instant)."""
    begin = datetime.combine(date.fromisoformat(cycle["start_date"]), clock.min, tzinfo=UTC)
    end = datetime.combine(date.fromisoformat(cycle["end_date"]), clock.max, tzinfo=UTC)
    share = (datetime.now(UTC) - begin) / (end - begin)
    return min(1.0, max(0.0, share))


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {i["id"] for i in items}


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


# ---- filters ------------------------------------------------------------------------------------


@pytest.fixture
def populated(org):
    """Objectives across two cycles, three departments (one a sub-department), all levels."""
    c = org.client
    ok(
        c.post(
            "/directory/departments",
            json={"id": "hd", "name": "华东组", "parent_id": "cs"},
            headers=org.admin,
        ),
        201,
    )
    ok(
        c.post(
            "/directory/members",
            json={"id": "xiaoyu", "name": "小雨", "department_id": "hd", "manager_id": "boss"},
            headers=org.admin,
        ),
        201,
    )
    q1 = ok(
        c.post(
            "/cycles",
            json={
                "name": "2027年第一季度",
                "kind": "quarter",
                "start_date": "2027-01-01",
                "end_date": "2027-03-31",
            },
            headers=org.admin,
        ),
        201,
    )
    made = {
        "bailu_q4": org.active_objective("bailu", title="白露Q4"),
        "xiaoyu_q4": org.objective("xiaoyu", title="小雨Q4"),
        "lufei_q4": org.active_objective("lufei", title="路飞Q4", level="team"),
        "bailu_q1": org.objective("bailu", title="白露Q1", cycle_id=q1["id"]),
        "cs_q4": ok(
            c.post(
                "/objectives",
                json={
                    "cycle_id": org.cycle_id,
                    "title": "客户成功部Q4",
                    "owner_type": "department",
                    "owner_id": "cs",
                    "responsible_ids": ["boss"],
                    "key_results": [{"title": "续约率95%", "unit": "percent", "target": 95}],
                },
                headers=org.admin,
            ),
            201,
        ),
    }
    ok(c.post(f"/objectives/{made['cs_q4']['id']}/submit", headers=org.h("boss")))
    ids_by_name = {name: o["id"] for name, o in made.items()}
    return org, q1["id"], ids_by_name


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"bailu_q4", "xiaoyu_q4", "lufei_q4", "bailu_q1", "cs_q4"}),
        ({"cycle_id": "Q4"}, {"bailu_q4", "xiaoyu_q4", "lufei_q4", "cs_q4"}),
        ({"cycle_id": "Q1"}, {"bailu_q1"}),
        ({"department_id": "cs"}, {"bailu_q4", "xiaoyu_q4", "bailu_q1", "cs_q4"}),
        ({"department_id": "hd"}, {"xiaoyu_q4"}),
        ({"department_id": "pm"}, {"lufei_q4"}),
        ({"department_id": "nowhere"}, set()),
        ({"owner_id": "bailu"}, {"bailu_q4", "bailu_q1"}),
        ({"owner_id": "boss"}, {"cs_q4"}),
        ({"status": "draft"}, {"xiaoyu_q4", "bailu_q1"}),
        ({"status": "active"}, {"bailu_q4", "lufei_q4", "cs_q4"}),
        ({"status": "closed"}, set()),
        ({"level": "team"}, {"lufei_q4"}),
        ({"level": "department"}, {"cs_q4"}),
        ({"level": "personal"}, {"bailu_q4", "xiaoyu_q4", "bailu_q1"}),
        ({"cycle_id": "Q4", "department_id": "cs", "status": "active"}, {"bailu_q4", "cs_q4"}),
        ({"cycle_id": "Q4", "owner_id": "bailu", "level": "personal"}, {"bailu_q4"}),
    ],
)
def test_filters_on_objectives_and_board(populated, params, expected):
    org, q1, made = populated
    params = {k: {"Q4": org.cycle_id, "Q1": q1}.get(v, v) for k, v in params.items()}
    want = {made[name] for name in expected}
    listed = ok(org.client.get("/objectives", params=params, headers=org.h("mengbo")))
    assert {o["id"] for o in listed} == want
    assert len(listed) == len(want)
    board = ok(org.client.get("/boards/goals", params=params, headers=org.h("mengbo")))
    assert board["objectives"] == len(want)
    assert {row["objective_id"] for row in board["rows"]} == want
    # Every objective here has one KR, or none: one row each.
    assert len(board["rows"]) == len(want)


def test_lists_are_ordered_by_level(populated):
    org, _, made = populated
    listed = ok(
        org.client.get("/objectives", params={"cycle_id": org.cycle_id}, headers=org.h("bailu"))
    )
    levels = [o["level"] for o in listed]
    rank = {"company": 0, "department": 1, "team": 2, "personal": 3}
    assert levels == sorted(levels, key=rank.__getitem__)
    assert listed[0]["id"] == made["cs_q4"]


def test_me_objectives(populated):
    org, q1, made = populated
    c = org.client
    assert ids(c.get("/me/objectives", headers=org.h("bailu")).json()) == {
        made["bailu_q4"],
        made["bailu_q1"],
    }
    assert ids(c.get("/me/objectives", params={"cycle_id": q1}, headers=org.h("bailu")).json()) == {
        made["bailu_q1"]
    }
    assert ids(c.get("/me/objectives", headers=org.h("boss")).json()) == {made["cs_q4"]}
    assert ids(c.get("/me/objectives", headers=org.h("xiaoyu")).json()) == {made["xiaoyu_q4"]}
    assert c.get("/me/objectives", headers=org.h("mengbo")).json() == []


# ---- the alignment tree -------------------------------------------------------------------------


def test_alignment_tree_company_department_personal(org):
    c = org.client
    company = ok(
        c.post(
            "/objectives",
            json={
                "cycle_id": org.cycle_id,
                "title": "成为行业第一的客户服务公司",
                "level": "company",
                "owner_id": "boss",
                "key_results": [{"title": "NPS达到60", "target": 60}],
            },
            headers=org.admin,
        ),
        201,
    )
    company = ok(c.post(f"/objectives/{company['id']}/submit", headers=org.h("boss")))
    assert company["status"] == "active"
    company_kr = company["key_results"][0]["id"]
    department = ok(
        c.post(
            "/objectives",
            json={
                "cycle_id": org.cycle_id,
                "title": "客户成功部：提升满意度",
                "owner_type": "department",
                "owner_id": "cs",
                "responsible_ids": ["boss"],
                "key_results": [{"title": "满意度90%", "unit": "percent", "target": 90}],
                "align_to": [{"parent_objective_id": company["id"], "parent_kr_id": company_kr}],
            },
            headers=org.admin,
        ),
        201,
    )
    department = ok(c.post(f"/objectives/{department['id']}/submit", headers=org.h("boss")))
    personal_b = org.active_objective(
        "bailu", title="白露：好评100家", align_to=[{"parent_objective_id": department["id"]}]
    )
    personal_m = org.active_objective("mengbo", title="孟波：回访200次")
    ok(
        c.post(
            f"/objectives/{personal_m['id']}/alignments",
            json={"parent_objective_id": department["id"]},
            headers=org.h("mengbo"),
        ),
        201,
    )
    loose = org.active_objective("lufei", title="路飞：独立目标")
    # Progress so the tree has something to show.
    company = check_in(org, company, company_kr, "boss", current=30, confidence=3)
    department = check_in(org, department, department["key_results"][0]["id"], "boss", current=45)
    personal_b = check_in(
        org, personal_b, personal_b["key_results"][0]["id"], "bailu", current=60, confidence=4
    )

    tree = ok(c.get("/alignment-tree", params={"cycle_id": org.cycle_id}, headers=org.h("lufei")))
    assert [n["id"] for n in tree] == [company["id"], loose["id"]]
    top = tree[0]
    assert (top["level"], top["title"]) == ("company", "成为行业第一的客户服务公司")
    assert top["progress"] == pytest.approx(0.5) and top["confidence"] == 3
    assert top["people"] == [{"id": "boss", "name": "老板"}]
    assert top["via_key_result_id"] is None
    [dept] = top["children"]
    assert dept["id"] == department["id"]
    assert dept["level"] == "department"
    assert dept["via_key_result_id"] == company_kr
    assert dept["owner"] == {"type": "department", "id": "cs"}
    assert dept["department"] == CS
    assert dept["progress"] == pytest.approx(0.5)
    kids = dept["children"]
    assert [k["id"] for k in kids] == sorted(
        [personal_b["id"], personal_m["id"]],
        key=lambda i: {personal_b["id"]: "白露：好评100家", personal_m["id"]: "孟波：回访200次"}[i],
    )
    by_id = {k["id"]: k for k in kids}
    assert by_id[personal_b["id"]]["progress"] == pytest.approx(0.6)
    assert by_id[personal_b["id"]]["confidence"] == 4
    assert by_id[personal_b["id"]]["people"] == [{"id": "bailu", "name": "白露"}]
    assert by_id[personal_m["id"]]["progress"] == 0
    assert all(k["level"] == "personal" and k["children"] == [] for k in kids)
    # Each node's progress is its objective's own.
    for node in (top, dept, *kids):
        assert (
            node["progress"]
            == ok(c.get(f"/objectives/{node['id']}", headers=org.h("lufei")))["progress"]
        )
    # Unaligning moves an objective back to the roots.
    ok(
        c.delete(
            f"/objectives/{personal_m['id']}/alignments/{department['id']}", headers=org.h("mengbo")
        )
    )
    tree = ok(c.get("/alignment-tree", headers=org.h("lufei")))
    assert personal_m["id"] in [n["id"] for n in tree]
    assert [k["id"] for k in tree[0]["children"][0]["children"]] == [personal_b["id"]]


# ---- concurrency ------------------------------------------------------------------------------


def concurrently(n: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_two_concurrent_check_ins_are_both_applied(org):
    o = org.active_objective(
        key_results=[
            {"title": "KR甲", "target": 10},
            {"title": "KR乙", "target": 10},
        ]
    )
    krs = [kr["id"] for kr in o["key_results"]]
    for round_ in range(3):
        responses = concurrently(
            2,
            lambda i, r=round_: org.client.post(
                f"/objectives/{o['id']}/key-results/{krs[i]}/check-ins",
                json={"current": r + 1},
                headers=org.h("bailu"),
            ),
        )
        assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    got = ok(org.client.get(f"/objectives/{o['id']}", headers=org.h("bailu")))
    assert got["version"] == o["version"] + 6
    assert [kr["check_ins"] for kr in got["key_results"]] == [3, 3]
    assert [kr["current"] for kr in got["key_results"]] == [3, 3]


def test_twenty_concurrent_check_ins_without_if_match_are_all_applied(org):
    o = org.active_objective(
        key_results=[
            {"title": "KR甲", "target": 100},
            {"title": "KR乙", "target": 100},
        ]
    )
    krs = [kr["id"] for kr in o["key_results"]]
    responses = concurrently(
        20,
        lambda i: org.client.post(
            f"/objectives/{o['id']}/key-results/{krs[i % 2]}/check-ins",
            json={"current": i, "note": f"第{i}次"},
            headers=org.h("bailu"),
        ),
    )
    statuses = [r.status_code for r in responses]
    got = ok(org.client.get(f"/objectives/{o['id']}", headers=org.h("bailu")))
    assert statuses == [201] * 20, [r.json().get("code") for r in responses if r.status_code != 201]
    assert got["version"] == o["version"] + 20
    assert [kr["check_ins"] for kr in got["key_results"]] == [10, 10]
    events = org.client.get(f"/objectives/{o['id']}/history", headers=org.h("bailu")).json()
    notes = sorted(e["payload"]["note"] for e in events if e["type"] == "KRProgressUpdated")
    assert notes == sorted(f"第{i}次" for i in range(20))


def test_concurrent_writers_with_the_same_if_match_one_wins(org):
    o = org.active_objective()
    kr = o["key_results"][0]["id"]
    responses = concurrently(
        5,
        lambda i: org.client.post(
            f"/objectives/{o['id']}/key-results/{kr}/check-ins",
            json={"current": i + 1},
            headers=org.h("bailu") | {"If-Match": f'"{o["version"]}"'},
        ),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 412, 412, 412, 412]
    assert all(r.json()["code"] == "stale_version" for r in responses if r.status_code == 412)
    got = ok(org.client.get(f"/objectives/{o['id']}", headers=org.h("bailu")))
    assert got["version"] == o["version"] + 1
    assert got["key_results"][0]["check_ins"] == 1
