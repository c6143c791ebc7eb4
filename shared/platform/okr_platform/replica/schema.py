"""The replica's tables, in the consuming context's own database (its SQLite file or its
PostgreSQL schema): the same DDL runs on both. Every table is derived from goals' events only,
so a context's rebuild drops them (`drop_statements`) and replays goals' topic.

Lists and objects are JSON text (roles, owner ids, department leads, org settings); dates and
times are ISO-8601 text (UTC for times), so they sort as text. Booleans are 0/1 integers.

A store made before a column below existed must be rebuilt (CREATE TABLE IF NOT EXISTS leaves
an existing table as it is): see docs/replica.md#upgrading."""

from __future__ import annotations

#: The replica's tables, in dependency order (organisations first).
REPLICA_TABLES = ("orgs", "departments", "members", "cycles", "objectives", "key_results")

#: The organisation's progress-warning threshold until goals says otherwise (goals' default,
#: docs/domain.md#organisation).
DEFAULT_THRESHOLD = 0.7

_STATEMENTS = (
    # settings: every org setting as of goals' last SettingsChanged ('{}': goals' defaults);
    # threshold is the one the reads filter and compute with, so it has its own column.
    f"""CREATE TABLE IF NOT EXISTS orgs (
        org_id TEXT PRIMARY KEY, slug TEXT NOT NULL, name TEXT NOT NULL,
        threshold DOUBLE PRECISION NOT NULL DEFAULT {DEFAULT_THRESHOLD},
        settings TEXT NOT NULL DEFAULT '{{}}')""",
    "CREATE INDEX IF NOT EXISTS orgs_slug ON orgs (slug)",
    """CREATE TABLE IF NOT EXISTS departments (
        org_id TEXT NOT NULL, department_id TEXT NOT NULL, name TEXT NOT NULL,
        parent_id TEXT, lead_ids TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (org_id, department_id))""",
    """CREATE TABLE IF NOT EXISTS members (
        org_id TEXT NOT NULL, member_id TEXT NOT NULL, name TEXT NOT NULL,
        department_id TEXT, manager_id TEXT, time_zone TEXT NOT NULL, roles TEXT NOT NULL,
        active INTEGER NOT NULL, email TEXT, PRIMARY KEY (org_id, member_id))""",
    """CREATE TABLE IF NOT EXISTS cycles (
        cycle_id TEXT PRIMARY KEY, org_id TEXT NOT NULL, name TEXT NOT NULL,
        start_date TEXT NOT NULL, end_date TEXT NOT NULL, status TEXT NOT NULL,
        kind TEXT NOT NULL)""",
    # progress: as goals rolled it up (the check-ins' objective_progress_after), recomputed
    # here from the active KRs after a KR is added, reweighted, retargeted or removed.
    """CREATE TABLE IF NOT EXISTS objectives (
        objective_id TEXT PRIMARY KEY, org_id TEXT NOT NULL, cycle_id TEXT NOT NULL,
        title TEXT NOT NULL, level TEXT NOT NULL, owner_type TEXT NOT NULL,
        owner_id TEXT NOT NULL, owner_ids TEXT NOT NULL, department_id TEXT,
        visibility TEXT NOT NULL, weight DOUBLE PRECISION NOT NULL, status TEXT NOT NULL,
        progress DOUBLE PRECISION NOT NULL, updated_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS objectives_cycle ON objectives (cycle_id)",
    # A removed KR stays with active = 0 (its history still names it).
    """CREATE TABLE IF NOT EXISTS key_results (
        objective_id TEXT NOT NULL, kr_id TEXT NOT NULL, title TEXT NOT NULL,
        kind TEXT NOT NULL, unit TEXT NOT NULL, unit_label TEXT,
        start_value DOUBLE PRECISION NOT NULL, target DOUBLE PRECISION NOT NULL,
        current_value DOUBLE PRECISION NOT NULL, progress DOUBLE PRECISION NOT NULL,
        confidence INTEGER, risk TEXT NOT NULL, weight DOUBLE PRECISION NOT NULL,
        active INTEGER NOT NULL, owner_id TEXT, due_date TEXT,
        PRIMARY KEY (objective_id, kr_id))""",
)


def statements() -> tuple[str, ...]:
    """The DDL of the replica's tables and indexes (idempotent)."""
    return _STATEMENTS


def drop_statements() -> list[str]:
    return [f"DROP TABLE IF EXISTS {table}" for table in REPLICA_TABLES]
