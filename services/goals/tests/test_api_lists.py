"""List filters, ordering and the alignment tree over HTTP, on SQLite and on real PostgreSQL
(the `org` fixture)."""

from __future__ import annotations

import pytest
from flows_kit import CS, check_in, ids, ok

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
