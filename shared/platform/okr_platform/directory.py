"""An organisation's directory as every context reads it: members and the department tree.

`OrgDirectory` is the shape the access policy (okr_platform.access) decides over. Two things
satisfy it: the goals context's `Organisation` aggregate, which owns the directory, and the
`Directory` value below, which other contexts build from goals' events (their replica; the
notifier's is one). The walks over the tree (`manager_chain`, `department_subtree`) are defined
here once and used by both (docs/access-policy.md, docs/domain.md#organisation)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class DirectoryMember(Protocol):
    """What the policy reads of a member (the mapping key is the member id)."""

    @property
    def department_id(self) -> str | None: ...

    @property
    def manager_id(self) -> str | None: ...

    @property
    def roles(self) -> Collection[str]: ...

    @property
    def active(self) -> bool: ...


class DirectoryDepartment(Protocol):
    """What the policy reads of a department (the mapping key is the department id)."""

    @property
    def parent_id(self) -> str | None: ...

    @property
    def lead_ids(self) -> Collection[str]: ...


class OrgDirectory(Protocol):
    """One organisation's members and departments, with the two walks the policy needs."""

    @property
    def members(self) -> Mapping[str, DirectoryMember]: ...

    @property
    def departments(self) -> Mapping[str, DirectoryDepartment]: ...

    def manager_chain(self, member_id: str) -> list[str]:
        """The member's managers, nearest first."""
        ...

    def department_subtree(self, department_id: str) -> set[str]:
        """The department and every department below it."""
        ...


def manager_chain(members: Mapping[str, DirectoryMember], member_id: str) -> list[str]:
    """The member's managers, nearest first; stops at a repeat (a replica may be mid-change)."""
    chain: list[str] = []
    current = members.get(member_id)
    while current is not None and current.manager_id and current.manager_id not in chain:
        chain.append(current.manager_id)
        current = members.get(current.manager_id)
    return chain


def department_subtree(
    departments: Mapping[str, DirectoryDepartment], department_id: str
) -> set[str]:
    """The department and every department below it (the department itself even if unknown)."""
    subtree = {department_id}
    grew = True
    while grew:
        below = {d for d, dept in departments.items() if dept.parent_id in subtree}
        grew = not below <= subtree
        subtree |= below
    return subtree


@dataclass(frozen=True)
class Member:
    """A member as a context other than goals knows them (from goals' directory events)."""

    member_id: str
    name: str
    department_id: str | None
    manager_id: str | None
    time_zone: str
    roles: frozenset[str] = frozenset()
    active: bool = True
    email: str | None = None


@dataclass(frozen=True)
class Department:
    """A department as a context other than goals knows it."""

    department_id: str
    name: str
    parent_id: str | None
    lead_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Directory:
    """An organisation's directory, read-only: what a replica of goals' facts loads into."""

    members: Mapping[str, Member] = field(default_factory=dict)
    departments: Mapping[str, Department] = field(default_factory=dict)

    def manager_chain(self, member_id: str) -> list[str]:
        return manager_chain(self.members, member_id)

    def department_subtree(self, department_id: str) -> set[str]:
        return department_subtree(self.departments, department_id)
