"""Use cases of the organisation's directory: departments, members, settings (an admin's,
apart from members keeping their own contact details; docs/domain.md#organisation)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from okr_platform.access import is_admin, may_act
from okr_platform.errors import Forbidden
from okr_platform.principal import Principal
from okr_platform.writes import contention

from ..domain.organisation import Organisation, OrgSettings, organisation_id
from .core import GoalsCore


class DirectoryUseCases(GoalsCore):
    def add_department(
        self,
        p: Principal,
        *,
        name: str,
        parent_id: str | None,
        lead_ids: list[str],
        department_id: str | None = None,
    ) -> Organisation:
        def add(org: Organisation) -> None:
            org.add_department(
                department_id or uuid.uuid4().hex,
                name.strip(),
                parent_id,
                lead_ids,
                actor=p.member_id,
            )

        return self._change_directory(p, add)

    def add_member(
        self,
        p: Principal,
        *,
        member_id: str,
        name: str,
        department_id: str | None,
        manager_id: str | None,
        time_zone: str,
        roles: list[str],
        email: str | None,
    ) -> Organisation:
        def add(org: Organisation) -> None:
            org.add_member(
                member_id,
                name.strip(),
                department_id,
                manager_id,
                time_zone,
                roles,
                email,
                actor=p.member_id,
            )

        return self._change_directory(p, add)

    def update_member(
        self,
        p: Principal,
        member_id: str,
        changes: dict[str, Any],
        expected_version: int | None = None,
    ) -> Organisation:
        # Members may keep their own contact details and time zone; the rest is for admins.
        self_service = {"name", "time_zone", "email"}
        admin_needed = not (member_id == p.member_id and set(changes) <= self_service)
        return self._change_directory(
            p,
            lambda org: org.update_member(member_id, changes, actor=p.member_id),
            expected_version=expected_version,
            admin_only=admin_needed,
        )

    def change_settings(
        self, p: Principal, changes: dict[str, Any], expected_version: int | None = None
    ) -> Organisation:
        return self._change_directory(
            p,
            lambda org: org.change_settings(changes, actor=p.member_id),
            expected_version=expected_version,
        )

    def directory(self, p: Principal) -> Organisation:
        """The caller's organisation; an empty one if nobody has set it up yet, and to a
        caller who is not in it (unknown or inactive: they see nothing, docs/access-policy.md)."""
        org = self._find_organisation(p)
        if org is None or not may_act(p, org):
            return Organisation(p.org, p.org, actor="system")
        return org

    def settings_of(self, p: Principal) -> OrgSettings:
        return self.directory(p).settings

    def _change_directory(
        self,
        p: Principal,
        change: Callable[[Organisation], None],
        *,
        expected_version: int | None = None,
        admin_only: bool = True,
    ) -> Organisation:
        with self.writes.locked(organisation_id(p.org)):
            for attempt in self.writes.attempts(expected_version):
                org = self._find_organisation(p, copy=True)
                if org is None:
                    if not is_admin(p, None):
                        raise Forbidden("only an admin can set up the organisation's directory")
                    # The organisation comes into being with its first directory change.
                    org = Organisation(p.org, p.org, actor=p.member_id)
                if admin_only and not is_admin(p, org):
                    raise Forbidden("only an admin can change the directory and settings")
                attempt.check(org)
                change(org)
                if attempt.saved(org):
                    return org
        raise contention()
