"""Reads of the replica: an organisation's directory and settings, cycles, objectives' facts,
key results. Plain SQL over the replica's tables (schema.py), on SQLite and PostgreSQL.

Every read takes a `Query`: ``tx.execute`` inside a transaction (a handler's, or several
reads that must agree), or ``store.query`` (okr_events ConsumerStore) for one read."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from ..directory import Department, Directory, Member
from .batch import ReplicaBatch
from .facts import CycleFacts, KeyResultFacts, ObjectiveFacts, OrgFacts
from .schema import DEFAULT_THRESHOLD

Query = Callable[[str, Mapping[str, Any]], list[Any]]

# ---- the organisation -----------------------------------------------------------------------


def org_id_of(query: Query, slug: str) -> str | None:
    """The id of the organisation with this slug (a token's ``org``), if the replica has it."""
    rows = query("SELECT org_id FROM orgs WHERE slug = :slug", {"slug": slug})
    return str(rows[0]["org_id"]) if rows else None


def org(query: Query, org_id: str) -> OrgFacts | None:
    rows = query("SELECT * FROM orgs WHERE org_id = :org_id", {"org_id": org_id})
    if not rows:
        return None
    row = rows[0]
    return OrgFacts(
        org_id=row["org_id"],
        slug=row["slug"],
        name=row["name"],
        threshold=row["threshold"],
        settings=json.loads(row["settings"]),
    )


def load_directory(query: Query, org_id: str) -> Directory:
    """The organisation's members (with emails) and departments (with leads); empty if the
    replica does not know the organisation. Pass ``tx.execute`` for one consistent read."""
    members = {
        row["member_id"]: Member(
            member_id=row["member_id"],
            name=row["name"],
            department_id=row["department_id"],
            manager_id=row["manager_id"],
            time_zone=row["time_zone"],
            roles=frozenset(json.loads(row["roles"])),
            active=bool(row["active"]),
            email=row["email"],
        )
        for row in query("SELECT * FROM members WHERE org_id = :org_id", {"org_id": org_id})
    }
    departments = {
        row["department_id"]: Department(
            department_id=row["department_id"],
            name=row["name"],
            parent_id=row["parent_id"],
            lead_ids=frozenset(json.loads(row["lead_ids"])),
        )
        for row in query(
            """SELECT department_id, name, parent_id, lead_ids FROM departments
            WHERE org_id = :org_id""",
            {"org_id": org_id},
        )
    }
    return Directory(members, departments)


class DirectoryCache:
    """Directories kept across batches while their organisation's applied version (okr_events'
    consumer_applied_versions) is unchanged: the version, not invalidation by this process's
    appliers, because another replica process may apply the organisation's partition. Within a
    batch the applied versions are written at its end, so an organisation changed in the batch
    (`ReplicaBatch.orgs_changed`) is read afresh and not cached."""

    def __init__(self) -> None:
        self._directories: dict[str, tuple[int, Directory]] = {}

    def get(self, batch: ReplicaBatch, org_id: str, org_version: int | None) -> Directory:
        cached = self._directories.get(org_id)
        fresh = org_id not in batch.orgs_changed
        if fresh and cached is not None and cached[0] == org_version:
            return cached[1]
        directory = load_directory(batch.tx.execute, org_id)
        if fresh and org_version is not None:
            self._directories[org_id] = (org_version, directory)
        return directory


# ---- cycles ---------------------------------------------------------------------------------


def cycle(query: Query, cycle_id: str, org_id: str | None = None) -> CycleFacts | None:
    """The cycle (of that organisation, when ``org_id`` is given)."""
    rows = query(
        "SELECT * FROM cycles WHERE cycle_id = :cycle_id"
        + (" AND org_id = :org_id" if org_id is not None else ""),
        {"cycle_id": cycle_id, **({"org_id": org_id} if org_id is not None else {})},
    )
    return _cycle(rows[0]) if rows else None


def cycles(query: Query, org_id: str) -> list[CycleFacts]:
    """The organisation's cycles, by start date."""
    rows = query(
        "SELECT * FROM cycles WHERE org_id = :org_id ORDER BY start_date, cycle_id",
        {"org_id": org_id},
    )
    return [_cycle(row) for row in rows]


def _cycle(row: Any) -> CycleFacts:
    return CycleFacts(
        cycle_id=row["cycle_id"],
        org_id=row["org_id"],
        name=row["name"],
        kind=row["kind"],
        start_date=date.fromisoformat(row["start_date"]),
        end_date=date.fromisoformat(row["end_date"]),
        status=row["status"],
    )


# ---- objectives -----------------------------------------------------------------------------

#: The columns `facts_from_row` reads: an objective with its cycle's dates, its organisation's
#: threshold and its confidence (the lowest of its active KRs'). Callers add columns after
#: SELECT (``OBJECTIVE_FACTS.replace("SELECT ", "SELECT f.x, ", 1)``), joins and a WHERE.
OBJECTIVE_FACTS = """SELECT o.objective_id, o.org_id, o.cycle_id, o.title, o.level,
    o.owner_type, o.owner_id, o.owner_ids, o.department_id, o.visibility, o.weight, o.status,
    o.progress, c.start_date, c.end_date, g.threshold,
    (SELECT MIN(k.confidence) FROM key_results k
        WHERE k.objective_id = o.objective_id AND k.active = 1) AS confidence
FROM objectives o
LEFT JOIN cycles c ON c.cycle_id = o.cycle_id
LEFT JOIN orgs g ON g.org_id = o.org_id"""

#: The facts and the applied version of the objective's organisation (the version its
#: directory is as of: `DirectoryCache`'s key).
_FACTS_AND_ORG_VERSION = OBJECTIVE_FACTS.replace(
    "SELECT ",
    """SELECT (SELECT a.version FROM consumer_applied_versions a
        WHERE a.aggregate_id = o.org_id) AS org_version, """,
    1,
)


def facts_from_row(row: Any) -> ObjectiveFacts:
    return ObjectiveFacts(
        objective_id=row["objective_id"],
        org_id=row["org_id"],
        cycle_id=row["cycle_id"],
        title=row["title"],
        level=row["level"],
        owner_type=row["owner_type"],
        owner_id=row["owner_id"],
        owner_ids=tuple(json.loads(row["owner_ids"])),
        department_id=row["department_id"],
        visibility=row["visibility"],
        weight=row["weight"],
        status=row["status"],
        progress=row["progress"],
        confidence=row["confidence"],
        cycle_start=date.fromisoformat(row["start_date"]) if row["start_date"] else None,
        cycle_end=date.fromisoformat(row["end_date"]) if row["end_date"] else None,
        threshold=row["threshold"] if row["threshold"] is not None else DEFAULT_THRESHOLD,
    )


def objective_facts(query: Query, objective_id: str) -> ObjectiveFacts | None:
    rows = query(
        OBJECTIVE_FACTS + " WHERE o.objective_id = :objective_id", {"objective_id": objective_id}
    )
    return facts_from_row(rows[0]) if rows else None


def objective_facts_and_org_version(
    query: Query, objective_id: str
) -> tuple[ObjectiveFacts, int | None] | None:
    """The facts, and the applied version of its organisation (for `DirectoryCache.get`)."""
    rows = query(
        _FACTS_AND_ORG_VERSION + " WHERE o.objective_id = :objective_id",
        {"objective_id": objective_id},
    )
    return (facts_from_row(rows[0]), rows[0]["org_version"]) if rows else None


def objectives_of_cycle(query: Query, cycle_id: str) -> list[ObjectiveFacts]:
    rows = query(
        OBJECTIVE_FACTS + " WHERE o.cycle_id = :cycle_id ORDER BY o.objective_id",
        {"cycle_id": cycle_id},
    )
    return [facts_from_row(row) for row in rows]


# ---- key results ----------------------------------------------------------------------------


def key_results(
    query: Query, objective_id: str, *, include_removed: bool = False
) -> list[KeyResultFacts]:
    """The objective's key results (active ones unless ``include_removed``), by id."""
    rows = query(
        "SELECT * FROM key_results WHERE objective_id = :objective_id"
        + ("" if include_removed else " AND active = 1")
        + " ORDER BY kr_id",
        {"objective_id": objective_id},
    )
    return [_key_result(row) for row in rows]


def key_results_of_cycle(query: Query, cycle_id: str) -> list[KeyResultFacts]:
    """Every key result (removed ones too) of the cycle's objectives."""
    rows = query(
        """SELECT k.* FROM key_results k JOIN objectives o ON o.objective_id = k.objective_id
        WHERE o.cycle_id = :cycle_id ORDER BY k.objective_id, k.kr_id""",
        {"cycle_id": cycle_id},
    )
    return [_key_result(row) for row in rows]


def _key_result(row: Any) -> KeyResultFacts:
    return KeyResultFacts(
        objective_id=row["objective_id"],
        kr_id=row["kr_id"],
        title=row["title"],
        kind=row["kind"],
        unit=row["unit"],
        unit_label=row["unit_label"],
        start=row["start_value"],
        target=row["target"],
        current=row["current_value"],
        progress=row["progress"],
        confidence=row["confidence"],
        risk=row["risk"],
        weight=row["weight"],
        owner_id=row["owner_id"],
        due_date=date.fromisoformat(row["due_date"]) if row["due_date"] else None,
        active=bool(row["active"]),
    )
