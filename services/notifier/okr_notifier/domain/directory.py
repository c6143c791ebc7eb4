"""The notifier's copy of an organisation's directory, and who may see an objective.

Built from the goals context's events (never by asking goals). The visibility rule restates
DOMAIN §3 as goals applies it: public = everyone in the organisation; department = members of
the objective's department or below, plus the owners' manager chain; private = the owners,
their manager chain and admins. Admins see everything."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Member:
    member_id: str
    name: str
    department_id: str | None
    manager_id: str | None
    time_zone: str
    roles: frozenset[str] = frozenset()
    active: bool = True


@dataclass(frozen=True)
class Directory:
    members: dict[str, Member] = field(default_factory=dict)
    #: department id -> parent department id (None at the top)
    departments: dict[str, str | None] = field(default_factory=dict)

    def manager_chain(self, member_id: str) -> list[str]:
        chain: list[str] = []
        current = self.members.get(member_id)
        while current is not None and current.manager_id and current.manager_id not in chain:
            chain.append(current.manager_id)
            current = self.members.get(current.manager_id)
        return chain

    def department_subtree(self, department_id: str) -> set[str]:
        subtree = {department_id}
        grew = True
        while grew:
            below = {d for d, parent in self.departments.items() if parent in subtree}
            grew = not below <= subtree
            subtree |= below
        return subtree

    def can_see(
        self,
        viewer_id: str,
        *,
        visibility: str,
        owner_ids: Iterable[str],
        department_id: str | None,
    ) -> bool:
        viewer = self.members.get(viewer_id)
        if viewer is None or not viewer.active:
            return False  # left the organisation (or never in it): told nothing
        owners = list(owner_ids)
        if visibility == "public" or viewer_id in owners or "admin" in viewer.roles:
            return True
        if any(viewer_id in self.manager_chain(owner) for owner in owners):
            return True
        if visibility == "department" and department_id is not None:
            return (
                viewer.department_id is not None
                and viewer.department_id in self.department_subtree(department_id)
            )
        return False
