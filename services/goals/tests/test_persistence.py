"""Persistence across restarts, on SQLite and on real PostgreSQL (`settings` + `client_factory`).

A restarted service finds its objectives, board and history as they were; its views resume from
their tracked position instead of replaying, and catch up with events written while no view was
running; the raw stored events carry the actor and keep Chinese text intact."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from typing import Any

import psycopg
from okr_goals.application import GoalsApplication
from okr_goals.settings import GoalsSettings
from okr_platform.principal import Principal
from psycopg import sql

TITLE = "建立高效专业的客户支持团队"
NOTE = "本周新增20家好评，客户反馈：「响应很快」"


# ---- raw access to the stores ---------------------------------------------------------------


class RawStore:
    """Reads (and, for one test, pokes) the tables behind the service, bypassing it."""

    def __init__(self, settings: GoalsSettings):
        self.settings = settings

    def _sqlite(self, name: str) -> sqlite3.Connection:
        return sqlite3.connect(self.settings.data_dir / name)

    def _pg(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.settings.postgres_conninfo(), autocommit=True)

    def _table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(
            sql.Identifier(self.settings.postgres_schema), sql.Identifier(name)
        )

    def events(self, aggregate_id: str) -> list[tuple[int, str, dict[str, Any]]]:
        """(version, topic, decoded state) of every stored event of one aggregate."""
        if self.settings.embedded:
            with self._sqlite("events.sqlite3") as db:
                rows = db.execute(
                    "SELECT originator_version, topic, state FROM stored_events "
                    "WHERE originator_id = ? ORDER BY originator_version",
                    (uuid.UUID(aggregate_id).hex,),
                ).fetchall()
        else:
            with self._pg() as db:
                rows = db.execute(
                    sql.SQL(
                        "SELECT originator_version, topic, state FROM {} "
                        "WHERE originator_id = %s ORDER BY originator_version"
                    ).format(self._table("goals_events")),
                    (uuid.UUID(aggregate_id),),
                ).fetchall()
        return [(v, topic, json.loads(bytes(state).decode("utf-8"))) for v, topic, state in rows]

    def all_events(self) -> list[tuple[str, int, str, dict[str, Any]]]:
        if self.settings.embedded:
            with self._sqlite("events.sqlite3") as db:
                rows = db.execute(
                    "SELECT originator_id, originator_version, topic, state FROM stored_events"
                ).fetchall()
        else:
            with self._pg() as db:
                rows = db.execute(
                    sql.SQL(
                        "SELECT originator_id, originator_version, topic, state FROM {}"
                    ).format(self._table("goals_events"))
                ).fetchall()
        return [(str(i), v, t, json.loads(bytes(s).decode("utf-8"))) for i, v, t, s in rows]

    def max_notification_id(self) -> int:
        if self.settings.embedded:
            with self._sqlite("events.sqlite3") as db:
                return db.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0]
        with self._pg() as db:
            return db.execute(
                sql.SQL("SELECT MAX(notification_id) FROM {}").format(self._table("goals_events"))
            ).fetchone()[0]

    def tracked_position(self) -> int:
        """How far the views say they have processed the goals notification log."""
        if self.settings.embedded:
            with self._sqlite("views.sqlite3") as db:
                rows = db.execute(
                    "SELECT notification_id FROM tracking WHERE application_name = 'goals:0'"
                ).fetchall()
        else:
            with self._pg() as db:
                rows = db.execute(
                    sql.SQL(
                        "SELECT notification_id FROM {} WHERE application_name = 'goals:0'"
                    ).format(self._table("goals_views_tracking"))
                ).fetchall()
        assert len(rows) == 1, rows
        return rows[0][0]

    def view_activity_count(self, objective_id: str) -> int:
        if self.settings.embedded:
            with self._sqlite("views.sqlite3") as db:
                return db.execute(
                    "SELECT COUNT(*) FROM view_activity WHERE objective_id = ?", (objective_id,)
                ).fetchone()[0]
        with self._pg() as db:
            return db.execute(
                sql.SQL("SELECT COUNT(*) FROM {} WHERE objective_id = %s").format(
                    self._table("view_activity")
                ),
                (objective_id,),
            ).fetchone()[0]

    def overwrite_view_title(self, objective_id: str, title: str) -> None:
        """Change the board's stored copy only (not the events): a marker a replay would undo."""
        if self.settings.embedded:
            with self._sqlite("views.sqlite3") as db:
                (doc,) = db.execute(
                    "SELECT doc FROM view_objectives WHERE objective_id = ?", (objective_id,)
                ).fetchone()
                doc = json.dumps(json.loads(doc) | {"title": title}, ensure_ascii=False)
                db.execute(
                    "UPDATE view_objectives SET doc = ? WHERE objective_id = ?",
                    (doc, objective_id),
                )
            return
        table = self._table("view_objectives")
        with self._pg() as db:
            (doc,) = db.execute(
                sql.SQL("SELECT doc FROM {} WHERE objective_id = %s").format(table),
                (objective_id,),
            ).fetchone()
            doc = json.dumps(json.loads(doc) | {"title": title}, ensure_ascii=False)
            db.execute(
                sql.SQL("UPDATE {} SET doc = %s WHERE objective_id = %s").format(table),
                (doc, objective_id),
            )


# ---- helpers ------------------------------------------------------------------------------------


def stop(client: Any) -> None:
    client.__exit__(None, None, None)


def restart(org: Any, client_factory: Any) -> Any:
    """Stop the organisation's service and start a new one on the same settings."""
    stop(org.client)
    return dataclasses.replace(org, client=client_factory(org.settings))


def snapshot(org: Any, objective_id: str) -> dict[str, Any]:
    """Everything a reader sees of the organisation, minus what depends on the clock."""
    c = org.client
    board = c.get("/boards/goals", headers=org.admin)
    assert board.status_code == 200, board.text
    rows = [
        {k: v for k, v in row.items() if k not in ("expected_progress", "behind_pace")}
        for row in board.json()["rows"]
    ]
    objective = c.get(f"/objectives/{objective_id}", headers=org.h("bailu"))
    assert objective.status_code == 200, objective.text
    return {
        "objective": objective.json(),
        "etag": objective.headers["ETag"],
        "list": c.get("/objectives", headers=org.h("bailu")).json(),
        "mine": c.get("/me/objectives", headers=org.h("bailu")).json(),
        "board": rows,
        "tree": c.get("/alignment-tree", headers=org.h("bailu")).json(),
        "history": c.get(f"/objectives/{objective_id}/history", headers=org.h("bailu")).json(),
        "activity": c.get(f"/objectives/{objective_id}/activity", headers=org.h("bailu")).json(),
        "cycles": c.get("/cycles", headers=org.h("bailu")).json(),
        "members": c.get("/directory/members", headers=org.h("bailu")).json(),
        "departments": c.get("/directory/departments", headers=org.h("bailu")).json(),
    }


def active_with_check_ins(org: Any) -> dict[str, Any]:
    o = org.active_objective(
        title=TITLE,
        key_results=[
            {
                "title": "获取100家客户的5星好评",
                "unit": "custom",
                "unit_label": "家",
                "start": 0,
                "target": 100,
            },
            {"title": "客户满意度", "unit": "percent", "start": 0, "target": 100},
        ],
    )
    for kr, current, who in ((0, 60, "bailu"), (1, 40, "boss")):
        r = org.client.post(
            f"/objectives/{o['id']}/key-results/{o['key_results'][kr]['id']}/check-ins",
            json={"current": current, "confidence": 3, "note": NOTE},
            headers=org.h(who),
        )
        assert r.status_code == 201, r.text
    r = org.client.get(f"/objectives/{o['id']}", headers=org.h("bailu"))
    return r.json()


# ---- tests ---------------------------------------------------------------------------------------


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
