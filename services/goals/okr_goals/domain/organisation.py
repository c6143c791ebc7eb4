"""The organisation directory: departments tree, members with direct manager, settings.

One organisation (tenant) is one aggregate: directory changes are rare and small, and keeping
them in one stream makes "no manager cycles" and "department exists" simple invariants. It is
an `okr_platform.directory.OrgDirectory`: who may see or do what is decided over it by the
suite's one access policy (okr_platform.access).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import event
from okr_events.vocabulary import MAX_STARS, ROLES, SCORE_SCALES
from okr_platform.aggregate import ClockedAggregate
from okr_platform.directory import department_subtree, manager_chain
from okr_platform.errors import Conflict, InvalidInput, NotFound

# What an update may set to None: no department, no manager, no email.
CLEARABLE_MEMBER_FIELDS = {"department_id", "manager_id", "email"}
_ORG_NAMESPACE = uuid.UUID("6f1c8f3e-8e0c-4e5e-9f57-0d7c1b2a4c10")


def organisation_id(slug: str) -> uuid.UUID:
    """Aggregate id of an organisation, derived from the `org` claim so no lookup is needed."""
    return uuid.uuid5(_ORG_NAMESPACE, slug)


@dataclass
class Department:
    id: str
    name: str
    parent_id: str | None
    lead_ids: list[str] = field(default_factory=list)


@dataclass
class Member:
    id: str
    name: str
    department_id: str | None
    manager_id: str | None
    time_zone: str
    roles: list[str]
    email: str | None = None
    active: bool = True


@dataclass(frozen=True)
class OrgSettings:
    approval_required: bool = True
    approver_may_edit: bool = True
    subtasks_enabled: bool = False  # the seed: an operator must switch subtasks on
    score_scale: str = "0-100"
    confidence_scale: int = 5
    progress_warning_threshold: float = 0.7

    def validated(self) -> OrgSettings:
        if self.score_scale not in SCORE_SCALES:
            raise InvalidInput(f"score_scale must be one of {SCORE_SCALES}", field="score_scale")
        if self.confidence_scale != MAX_STARS:
            raise InvalidInput("confidence is rated on 1-5 stars", field="confidence_scale")
        threshold = self.progress_warning_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise InvalidInput(
                "progress_warning_threshold must be a number", field="progress_warning_threshold"
            )
        if not 0 < threshold <= 1:
            raise InvalidInput(
                "progress_warning_threshold must be in (0, 1]", field="progress_warning_threshold"
            )
        return self


def check_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown IANA time zone {name!r}", field="time_zone") from None
    return name


def check_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InvalidInput(f"unknown roles {unknown}; allowed {list(ROLES)}", field="roles")
    return sorted(set(roles)) or ["employee"]


class Organisation(ClockedAggregate):
    @staticmethod
    def create_id(slug: str, name: str, actor: str) -> uuid.UUID:
        return organisation_id(slug)

    @event("OrganisationRegistered")
    def __init__(self, slug: str, name: str, actor: str):
        self.slug = slug
        self.name = name
        self.departments: dict[str, Department] = {}
        self.members: dict[str, Member] = {}
        self.settings = OrgSettings()

    # ---- departments -------------------------------------------------------------------------

    def add_department(
        self,
        department_id: str,
        name: str,
        parent_id: str | None,
        lead_ids: list[str],
        actor: str,
    ) -> None:
        if not name.strip():
            raise InvalidInput("name must not be blank", field="name")
        if department_id in self.departments:
            raise Conflict(f"department {department_id!r} already exists", field="id")
        if parent_id is not None and parent_id not in self.departments:
            raise InvalidInput(f"unknown parent department {parent_id!r}", field="parent_id")
        for lead in lead_ids:
            self.member(lead, field="lead_ids")
        self._department_added(
            department_id=department_id,
            name=name,
            parent_id=parent_id,
            lead_ids=list(lead_ids),
            actor=actor,
        )

    @event("DepartmentAdded")
    def _department_added(
        self, department_id: str, name: str, parent_id: str | None, lead_ids: list[str], actor: str
    ) -> None:
        self.departments[department_id] = Department(department_id, name, parent_id, lead_ids)

    def department(self, department_id: str, *, field: str = "department_id") -> Department:
        try:
            return self.departments[department_id]
        except KeyError:
            raise InvalidInput(f"unknown department {department_id!r}", field=field) from None

    def department_subtree(self, department_id: str) -> set[str]:
        """The department and every department below it."""
        return department_subtree(self.departments, department_id)

    # ---- members -----------------------------------------------------------------------------

    def add_member(
        self,
        member_id: str,
        name: str,
        department_id: str | None,
        manager_id: str | None,
        time_zone: str,
        roles: list[str],
        email: str | None,
        actor: str,
    ) -> None:
        if not name.strip():
            raise InvalidInput("name must not be blank", field="name")
        if member_id in self.members:
            raise Conflict(f"member {member_id!r} already exists", field="id")
        if department_id is not None:
            self.department(department_id)
        if manager_id is not None:
            if manager_id == member_id:
                raise InvalidInput("a member cannot manage themselves", field="manager_id")
            self.member(manager_id, field="manager_id")
        self._member_added(
            member_id=member_id,
            name=name,
            department_id=department_id,
            manager_id=manager_id,
            time_zone=check_time_zone(time_zone),
            roles=check_roles(roles),
            email=email,
            actor=actor,
        )

    @event("MemberAdded")
    def _member_added(
        self,
        member_id: str,
        name: str,
        department_id: str | None,
        manager_id: str | None,
        time_zone: str,
        roles: list[str],
        email: str | None,
        actor: str,
    ) -> None:
        self.members[member_id] = Member(
            member_id, name, department_id, manager_id, time_zone, roles, email
        )

    def update_member(self, member_id: str, changes: dict[str, Any], actor: str) -> None:
        member = self.member(member_id, field="id", not_found=True)
        allowed = {"name", "department_id", "manager_id", "time_zone", "roles", "email", "active"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(f"cannot change {sorted(unknown)}", field=sorted(unknown)[0])
        for name in sorted(set(changes) - CLEARABLE_MEMBER_FIELDS):
            if changes[name] is None:
                raise InvalidInput(f"{name} cannot be cleared (null)", field=name)
        if "name" in changes and not changes["name"].strip():
            raise InvalidInput("name must not be blank", field="name")
        if changes.get("department_id") is not None:
            self.department(changes["department_id"])
        if "time_zone" in changes:
            changes["time_zone"] = check_time_zone(changes["time_zone"])
        if "roles" in changes:
            changes["roles"] = check_roles(changes["roles"])
        if changes.get("manager_id") is not None:
            self._check_no_manager_cycle(member.id, changes["manager_id"])
        effective = {k: v for k, v in changes.items() if getattr(member, k) != v}
        if effective:
            self._member_updated(member_id=member_id, changes=effective, actor=actor)

    @event("MemberUpdated")
    def _member_updated(self, member_id: str, changes: dict[str, Any], actor: str) -> None:
        member = self.members[member_id]
        self.members[member_id] = replace(member, **changes)

    def _check_no_manager_cycle(self, member_id: str, manager_id: str) -> None:
        self.member(manager_id, field="manager_id")
        seen: set[str] = set()
        current: str | None = manager_id
        while current is not None and current not in seen:
            if current == member_id:
                raise Conflict(
                    f"{manager_id!r} reports (directly or not) to {member_id!r}: "
                    "reporting lines cannot form a cycle",
                    field="manager_id",
                    code="reporting_cycle",
                )
            seen.add(current)
            current = self.members[current].manager_id

    def member(
        self, member_id: str, *, field: str = "member_id", not_found: bool = False
    ) -> Member:
        try:
            return self.members[member_id]
        except KeyError:
            error = NotFound if not_found else InvalidInput
            raise error(f"unknown member {member_id!r}", field=field) from None

    def manager_chain(self, member_id: str) -> list[str]:
        """The member's managers, nearest first."""
        return manager_chain(self.members, member_id)

    # ---- settings ----------------------------------------------------------------------------

    def change_settings(self, changes: dict[str, Any], actor: str) -> None:
        unknown = sorted(set(changes) - set(OrgSettings.__dataclass_fields__))
        if unknown:
            raise InvalidInput(f"unknown settings {unknown}", field=unknown[0])
        for name in sorted(changes):
            if changes[name] is None:
                raise InvalidInput(f"{name} cannot be null", field=name)
        new = replace(self.settings, **changes).validated()
        effective = {k: v for k, v in changes.items() if getattr(self.settings, k) != v}
        if effective:
            self._settings_changed(changes=effective, settings=new.__dict__.copy(), actor=actor)

    @event("SettingsChanged")
    def _settings_changed(
        self, changes: dict[str, Any], settings: dict[str, Any], actor: str
    ) -> None:
        self.settings = OrgSettings(**settings)
