"""Persistence across restarts, on SQLite and on real PostgreSQL (`settings` + `client_factory`).

A restarted service finds its objectives, board and history as they were; its views resume from
their tracked position instead of replaying, and catch up with events written while no view was
running."""

from __future__ import annotations

import dataclasses
import uuid

from okr_goals.application import GoalsApplication
from okr_platform.principal import Principal
from persistence_kit import TITLE, RawStore, active_with_check_ins, restart, snapshot, stop


def test_data_survives_a_restart(org, client_factory):
    o = active_with_check_ins(org)
    before = snapshot(org, o["id"])
    assert before["objective"]["version"] == 7
    assert [row["key_result"]["display"] for row in before["board"]] == ["60家(60%)", "40%/40%"]
    assert len(before["history"]) == 7

    org = restart(org, client_factory)
    after = snapshot(org, o["id"])
    assert after == before
    # And twice.
    org = restart(org, client_factory)
    assert snapshot(org, o["id"]) == before

    # The restarted service keeps working on top of what it found.
    kr = o["key_results"][0]["id"]
    r = org.client.post(
        f"/objectives/{o['id']}/key-results/{kr}/check-ins",
        json={"current": 80},
        headers=org.h("bailu") | {"If-Match": '"7"'},
    )
    assert r.status_code == 201, r.text
    assert r.json()["objective"]["version"] == 8
    board = org.client.get("/boards/goals", headers=org.admin).json()
    assert board["rows"][0]["key_result"]["display"] == "80家(80%)"
    history = org.client.get(f"/objectives/{o['id']}/history", headers=org.h("bailu")).json()
    assert history[:7] == before["history"]
    assert history[7]["version"] == 8 and history[7]["actor"] == "bailu"


def test_views_resume_after_restart_without_reapplying(org, client_factory):
    store = RawStore(org.settings)
    o = active_with_check_ins(org)
    activity = org.client.get(f"/objectives/{o['id']}/activity", headers=org.h("bailu")).json()
    assert [a["version"] for a in activity] == list(range(1, 8))
    position = store.tracked_position()
    assert position == store.max_notification_id()  # caught up before the stop
    assert store.view_activity_count(o["id"]) == 7

    stop(org.client)
    # A marker only a replay from the start would overwrite.
    store.overwrite_view_title(o["id"], "标记：视图未被重放")
    org = dataclasses.replace(org, client=client_factory(org.settings))

    listed = org.client.get("/objectives", headers=org.h("bailu")).json()
    assert [x["title"] for x in listed] == ["标记：视图未被重放"]
    assert store.tracked_position() == position
    after = org.client.get(f"/objectives/{o['id']}/activity", headers=org.h("bailu")).json()
    assert after == activity  # not duplicated
    assert store.view_activity_count(o["id"]) == 7
    assert org.client.get("/ready").status_code == 200

    # New events are applied once each, from where the views stopped.
    kr = o["key_results"][1]["id"]
    r = org.client.post(
        f"/objectives/{o['id']}/key-results/{kr}/check-ins",
        json={"current": 90},
        headers=org.h("bailu"),
    )
    assert r.status_code == 201, r.text
    listed = org.client.get("/objectives", headers=org.h("bailu")).json()
    assert [x["title"] for x in listed] == [TITLE]  # the view row is rebuilt from the events
    assert listed[0]["version"] == 8
    assert store.tracked_position() == position + 1 == store.max_notification_id()
    after = org.client.get(f"/objectives/{o['id']}/activity", headers=org.h("bailu")).json()
    assert [a["version"] for a in after] == list(range(1, 9))
    assert after[:7] == activity
    assert store.view_activity_count(o["id"]) == 8


def test_views_catch_up_with_events_written_while_stopped(org, client_factory):
    store = RawStore(org.settings)
    o = active_with_check_ins(org)
    assert org.client.get("/objectives", headers=org.h("bailu")).json()[0]["version"] == 7
    position = store.tracked_position()
    stop(org.client)

    # App A writes with no views running: a check-in and a new objective.
    writer = GoalsApplication(env=org.settings.event_store_env())
    try:
        bailu = Principal(member_id="bailu", org="acme")
        writer.check_in(
            bailu,
            uuid.UUID(o["id"]),
            o["key_results"][0]["id"],
            current=100,
            confidence=5,
            note="离线写入：完成",
        )
        new = writer.create_objective(
            Principal(member_id="boss", org="acme"),
            cycle_id=uuid.UUID(org.cycle_id),
            title="离线创建的目标",
            owner_id="mengbo",
        )
        new_id = str(new.id)
    finally:
        writer.close()
    assert store.max_notification_id() == position + 2
    assert store.tracked_position() == position  # nobody projected them yet

    # Service B starts and its views catch up.
    org = dataclasses.replace(org, client=client_factory(org.settings))
    listed = {x["id"]: x for x in org.client.get("/objectives", headers=org.h("mengbo")).json()}
    assert set(listed) == {o["id"], new_id}
    assert listed[new_id]["title"] == "离线创建的目标"
    assert (listed[new_id]["owner_id"], listed[new_id]["created_by"]) == ("mengbo", "boss")
    assert listed[o["id"]]["version"] == 8
    assert listed[o["id"]]["key_results"][0]["current"] == 100
    assert listed[o["id"]]["confidence"] == 3  # the other KR still has 3
    board = org.client.get("/boards/goals", params={"owner_id": "bailu"}, headers=org.admin).json()
    assert board["rows"][0]["key_result"]["display"] == "100家(100%)"
    activity = org.client.get(f"/objectives/{o['id']}/activity", headers=org.h("bailu")).json()
    assert [a["version"] for a in activity] == list(range(1, 9))
    assert activity[-1]["actor"] == "bailu"
    assert activity[-1]["params"]["note"] == "离线写入：完成"
    assert store.view_activity_count(o["id"]) == 8
    assert [
        a["actor"]
        for a in org.client.get(f"/objectives/{new_id}/activity", headers=org.h("mengbo")).json()
    ] == ["boss"]
    assert store.tracked_position() == position + 2
