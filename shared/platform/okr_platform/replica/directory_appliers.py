"""The replica's appliers of an organisation's events (directory, settings) and of cycles.

Each writes only rows of its event's own aggregate: the organisation's (orgs, departments,
members) or the cycle's (see the invariant in okr_platform.replica)."""

from __future__ import annotations

import json
from typing import Any

from okr_events import goals
from okr_events.codec import InboundEvent

from ..clock import utc_text
from .batch import Applier, ReplicaBatch
from .facts import FactsChange


def _change(event: InboundEvent, org_id: str | None = None) -> FactsChange:
    return FactsChange(event, utc_text(event.contract.occurred_at), org_id=org_id)


def _org_registered(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    org_id = str(c.aggregate_id)
    batch.flush()
    batch.tx.execute(
        """INSERT INTO orgs (org_id, slug, name) VALUES (:org_id, :slug, :name)
        ON CONFLICT (org_id) DO UPDATE SET slug = excluded.slug, name = excluded.name""",
        {"org_id": org_id, "slug": c.slug, "name": c.name},
    )
    return _change(event, org_id)


def _settings_changed(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    org_id = str(c.aggregate_id)
    threshold = c.settings.get("progress_warning_threshold")
    batch.tx.execute(
        f"""UPDATE orgs SET settings = :settings
            {", threshold = :threshold" if threshold is not None else ""}
        WHERE org_id = :org_id""",
        {
            "settings": json.dumps(c.settings, sort_keys=True),
            "org_id": org_id,
            **({"threshold": float(threshold)} if threshold is not None else {}),
        },
    )
    return _change(event, org_id)


def _department_added(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    org_id = str(c.aggregate_id)
    batch.orgs_changed.add(org_id)
    batch.tx.execute(
        """INSERT INTO departments (org_id, department_id, name, parent_id, lead_ids)
        VALUES (:org_id, :department_id, :name, :parent_id, :lead_ids)
        ON CONFLICT (org_id, department_id) DO UPDATE SET name = excluded.name,
            parent_id = excluded.parent_id, lead_ids = excluded.lead_ids""",
        {
            "org_id": org_id,
            "department_id": c.department_id,
            "name": c.name,
            "parent_id": c.parent_id,
            "lead_ids": json.dumps(sorted(set(c.lead_ids))),
        },
    )
    return _change(event, org_id)


def _member_added(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    org_id = str(c.aggregate_id)
    batch.orgs_changed.add(org_id)
    batch.tx.execute(
        """INSERT INTO members (org_id, member_id, name, department_id, manager_id, time_zone,
            roles, active, email)
        VALUES (:org_id, :member_id, :name, :department_id, :manager_id, :time_zone, :roles, 1,
            :email)
        ON CONFLICT (org_id, member_id) DO UPDATE SET name = excluded.name,
            department_id = excluded.department_id, manager_id = excluded.manager_id,
            time_zone = excluded.time_zone, roles = excluded.roles, active = 1,
            email = excluded.email""",
        {
            "org_id": org_id,
            "member_id": c.member_id,
            "name": c.name,
            "department_id": c.department_id,
            "manager_id": c.manager_id,
            "time_zone": c.time_zone,
            "roles": json.dumps(sorted(c.roles)),
            "email": c.email,
        },
    )
    return _change(event, org_id)


#: The member fields goals may change (MemberUpdated.changes), all kept here.
_MEMBER_COLUMNS = ("name", "department_id", "manager_id", "time_zone", "roles", "email", "active")


def _member_updated(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    org_id = str(c.aggregate_id)
    batch.orgs_changed.add(org_id)
    changes = {k: v for k, v in c.changes.items() if k in _MEMBER_COLUMNS}
    if "roles" in changes:
        changes["roles"] = json.dumps(sorted(changes["roles"]))
    if "active" in changes:
        changes["active"] = 1 if changes["active"] else 0
    if changes:
        assignments = ", ".join(f"{column} = :{column}" for column in changes)  # known names
        batch.tx.execute(
            f"UPDATE members SET {assignments} WHERE org_id = :org_id AND member_id = :member_id",
            {**changes, "org_id": org_id, "member_id": c.member_id},
        )
    return _change(event, org_id)


def _cycle_created(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    batch.tx.execute(
        """INSERT INTO cycles (cycle_id, org_id, name, kind, start_date, end_date, status)
        VALUES (:cycle_id, :org_id, :name, :kind, :start_date, :end_date, 'planning')
        ON CONFLICT (cycle_id) DO NOTHING""",
        {
            "cycle_id": str(c.aggregate_id),
            "org_id": str(c.org_id),
            "name": c.name,
            "kind": c.kind,
            "start_date": c.start_date.isoformat(),
            "end_date": c.end_date.isoformat(),
        },
    )
    return _change(event)


_CYCLE_STATUS = {
    goals.CycleActivated: "active",
    goals.CycleScoringStarted: "scoring",
    goals.CycleClosed: "closed",
    goals.CycleArchived: "archived",
}


def _cycle_moved(c: Any, event: InboundEvent, batch: ReplicaBatch) -> FactsChange:
    batch.tx.execute(
        "UPDATE cycles SET status = :status WHERE cycle_id = :cycle_id",
        {"status": _CYCLE_STATUS[type(c)], "cycle_id": str(c.aggregate_id)},
    )
    return _change(event)


APPLIERS: dict[type[Any], Applier] = {
    goals.OrganisationRegistered: _org_registered,
    goals.SettingsChanged: _settings_changed,
    goals.DepartmentAdded: _department_added,
    goals.MemberAdded: _member_added,
    goals.MemberUpdated: _member_updated,
    goals.CycleCreated: _cycle_created,
    **dict.fromkeys(_CYCLE_STATUS, _cycle_moved),
}
