"""The goals views' tables and the statements that write them.

One SQL text for both databases: written with :name parameters (SQLite); PostgreSQL gets them
rewritten to %(name)s and finds the tables in the service's schema (the store's search path).
Documents are JSON text so both stores read them the same way."""

from __future__ import annotations

CREATE_STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS view_objectives (
        objective_id TEXT PRIMARY KEY, org_id TEXT NOT NULL, cycle_id TEXT NOT NULL,
        department_id TEXT, owner_id TEXT NOT NULL, status TEXT NOT NULL, level TEXT NOT NULL,
        version INTEGER NOT NULL, doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS view_objectives_org_cycle ON view_objectives (org_id, cycle_id)",
    """CREATE TABLE IF NOT EXISTS view_cycles (
        cycle_id TEXT PRIMARY KEY, org_id TEXT NOT NULL, start_date TEXT NOT NULL,
        doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS view_cycles_org ON view_cycles (org_id)",
    """CREATE TABLE IF NOT EXISTS view_activity (
        objective_id TEXT NOT NULL, version INTEGER NOT NULL, at TEXT NOT NULL,
        actor TEXT NOT NULL, action TEXT NOT NULL, params TEXT NOT NULL,
        PRIMARY KEY (objective_id, version))""",
)
UPSERT_OBJECTIVE = """
    INSERT INTO view_objectives
        (objective_id, org_id, cycle_id, department_id, owner_id, status, level, version, doc)
    VALUES (:objective_id, :org_id, :cycle_id, :department_id, :owner_id, :status, :level,
            :version, :doc)
    ON CONFLICT (objective_id) DO UPDATE SET cycle_id = excluded.cycle_id,
        department_id = excluded.department_id, owner_id = excluded.owner_id,
        status = excluded.status, level = excluded.level, version = excluded.version,
        doc = excluded.doc"""
INSERT_ACTIVITY = """
    INSERT INTO view_activity (objective_id, version, at, actor, action, params)
    VALUES (:objective_id, :version, :at, :actor, :action, :params)
    ON CONFLICT (objective_id, version) DO NOTHING"""
UPSERT_CYCLE = """
    INSERT INTO view_cycles (cycle_id, org_id, start_date, doc)
    VALUES (:cycle_id, :org_id, :start_date, :doc)
    ON CONFLICT (cycle_id) DO UPDATE SET doc = excluded.doc, start_date = excluded.start_date"""
