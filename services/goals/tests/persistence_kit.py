"""What the persistence tests share: raw access to the stores (SQLite or PostgreSQL), stopping
and restarting the service, and a snapshot of what an organisation shows."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid
from typing import Any

import psycopg
from okr_goals.settings import GoalsSettings
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
