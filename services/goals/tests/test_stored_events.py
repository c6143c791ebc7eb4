"""The raw stored events, on SQLite and on real PostgreSQL (`settings` + `client_factory`): they
carry the actor and keep Chinese text intact."""

from __future__ import annotations

from persistence_kit import NOTE, TITLE, RawStore, active_with_check_ins, restart


def test_raw_events_carry_the_actor(org):
    store = RawStore(org.settings)
    r = org.client.post(
        "/objectives",
        json={
            "cycle_id": org.cycle_id,
            "title": TITLE,
            "owner_id": "bailu",
            "key_results": [
                {
                    "title": "获取100家客户的5星好评",
                    "unit": "custom",
                    "unit_label": "家",
                    "target": 100,
                }
            ],
        },
        headers=org.h("boss"),
    )
    assert r.status_code == 201, r.text
    o = r.json()
    kr = o["key_results"][0]["id"]
    assert (
        org.client.post(f"/objectives/{o['id']}/submit", headers=org.h("bailu")).status_code == 200
    )
    assert (
        org.client.post(
            f"/objectives/{o['id']}/key-results/{kr}/check-ins",
            json={"current": 10},
            headers=org.h("boss"),
        ).status_code
        == 201
    )
    assert (
        org.client.patch(
            f"/objectives/{o['id']}", json={"description": "管理员补充"}, headers=org.admin
        ).status_code
        == 200
    )

    raw = store.events(o["id"])
    assert [v for v, _, _ in raw] == [1, 2, 3, 4, 5]
    assert [topic.rsplit(".", 1)[-1] for _, topic, _ in raw] == [
        "ObjectiveCreated",
        "KeyResultAdded",
        "ObjectiveActivated",
        "KRProgressUpdated",
        "ObjectiveEdited",
    ]
    assert [state["actor"] for _, _, state in raw] == ["boss", "boss", "bailu", "boss", "root"]
    # The API's history shows the same actors as the store holds.
    history = org.client.get(f"/objectives/{o['id']}/history", headers=org.h("bailu")).json()
    assert [e["actor"] for e in history] == [state["actor"] for _, _, state in raw]
    # Every stored event of every aggregate (directory, cycles, objectives) names its actor.
    everything = store.all_events()
    assert len(everything) >= 5 + 7  # objective + directory + cycle events
    for aggregate_id, version, topic, state in everything:
        assert isinstance(state.get("actor"), str) and state["actor"], (
            aggregate_id,
            version,
            topic,
        )
    directory_actors = {s["actor"] for _, _, t, s in everything if "Organisation" in t}
    assert directory_actors == {"root"}


def test_chinese_text_round_trips_through_the_store(org, client_factory):
    store = RawStore(org.settings)
    o = active_with_check_ins(org)
    raw = store.events(o["id"])
    created = raw[0][2]
    assert created["title"] == TITLE
    assert raw[1][2]["title"] == "获取100家客户的5星好评"
    assert raw[1][2]["unit_label"] == "家"
    notes = [state["note"] for _, topic, state in raw if topic.endswith("KRProgressUpdated")]
    assert notes == [NOTE, NOTE]
    everything = store.all_events()
    names = {s.get("name") for _, _, t, s in everything if t.endswith("DepartmentAdded")}
    assert names == {"客户成功部", "产品市场部"}
    members = {s.get("name") for _, _, t, s in everything if t.endswith("MemberAdded")}
    assert {"老板", "白露", "孟波", "路飞"} <= members

    org = restart(org, client_factory)
    got = org.client.get(f"/objectives/{o['id']}", headers=org.h("lufei")).json()
    assert got["title"] == TITLE
    assert got["key_results"][0]["unit_label"] == "家"
    rows = org.client.get("/boards/goals", headers=org.h("lufei")).json()["rows"]
    assert rows[0]["objective"] == TITLE
    assert rows[0]["department"] == {"id": "cs", "name": "客户成功部"}
    assert rows[0]["people"] == [{"id": "bailu", "name": "白露"}]
    assert rows[0]["key_result"]["display"] == "60家(60%)"
    activity = org.client.get(f"/objectives/{o['id']}/activity", headers=org.h("lufei")).json()
    assert [a["params"].get("note") for a in activity[-2:]] == [NOTE, NOTE]
