"""The suite's one access policy: who may see, edit, approve and manage objectives.

Pure functions over an `OrgDirectory` (okr_platform.directory): goals' Organisation aggregate
and every replica of it answer the same. Rules (docs/access-policy.md, docs/domain.md#objectives,
docs/domain.md#approval):

Standing, decided once, here, before any other rule:
- an active member of the organisation's directory: the rules below apply;
- a member listed as inactive (left the organisation): sees nothing and may do nothing,
  whatever roles their token carries;
- a caller whose `sub` the directory does not list: sees nothing and may do nothing, EXCEPT
  a token with the `admin` role. That is the identity provider's admin: they set up and run the
  organisation (its first directory change creates it; the README's walkthrough admin is not a
  member), so they are an admin in every rule below whether the directory is empty or lists
  others only. A listed admin who is made inactive loses that; the identity provider can
  still mint an admin token for an unlisted id to recover.
- an admin is that token admin, or an active member with the `admin` role in the directory.
  Admins see, edit and approve every objective and manage every department.

For an active member (not an admin):
- see: `public` objectives of the organisation; `department` ones when their own department is
  the objective's department or below it; any objective whose owners they own or manage
  (transitively, up the manager chain);
- edit (and check in, cancel, submit...): owners and the owners' direct managers; a key
  result's owner may also check in on that key result;
- approve (and reject, score): the owners' direct manager;
- set objectives for a member: for themselves and their direct reports;
- manage a department's objectives: its leads and the leads of any department above it.

A member known only by id (a follower the notifier decides for, with no token) is a `Caller`
without roles: `member_caller(member_id)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from .directory import OrgDirectory

ADMIN_ROLE = "admin"


class Caller(Protocol):
    """Who asks: the token's Principal (okr_platform.principal), or a member known by id."""

    @property
    def member_id(self) -> str: ...

    @property
    def roles(self) -> AbstractSet[str]: ...


@dataclass(frozen=True)
class MemberCaller:
    """A member the directory alone speaks for: no token, so no identity-provider roles."""

    member_id: str
    roles: frozenset[str] = field(default=frozenset())


def member_caller(member_id: str) -> Caller:
    return MemberCaller(member_id)


class Standing(Enum):
    """What the caller is to the organisation, before any objective is looked at."""

    ADMIN = "admin"  # sees and may do everything
    MEMBER = "member"  # an active member: the visibility and ownership rules apply
    OUTSIDER = "outsider"  # unknown or inactive: sees nothing, may do nothing


def standing(caller: Caller, directory: OrgDirectory | None) -> Standing:
    """The caller's standing; ``directory`` is None when the organisation does not exist yet."""
    listed = directory.members.get(caller.member_id) if directory is not None else None
    if listed is not None and not listed.active:
        return Standing.OUTSIDER  # left the organisation: the token's roles do not bring them back
    if ADMIN_ROLE in caller.roles:
        return Standing.ADMIN  # the identity provider's admin, listed or not (the bootstrap)
    if listed is None:
        return Standing.OUTSIDER
    return Standing.ADMIN if ADMIN_ROLE in listed.roles else Standing.MEMBER


def is_admin(caller: Caller, directory: OrgDirectory | None) -> bool:
    return standing(caller, directory) is Standing.ADMIN


def may_act(caller: Caller, directory: OrgDirectory | None) -> bool:
    """An admin or an active member; anyone else sees nothing of the organisation."""
    return standing(caller, directory) is not Standing.OUTSIDER


# ---- relations (facts of the directory, not permissions) ---------------------------------------


def manages(directory: OrgDirectory, manager_id: str, member_ids: Iterable[str]) -> bool:
    """True when manager_id is in the manager chain of any of the members."""
    return any(manager_id in directory.manager_chain(member) for member in member_ids)


def manages_directly(directory: OrgDirectory, manager_id: str, member_ids: Iterable[str]) -> bool:
    """True when manager_id is the direct manager of any of the members."""
    members = directory.members
    return any(
        member in members and members[member].manager_id == manager_id for member in member_ids
    )


def leads(directory: OrgDirectory, member_id: str, department_id: str) -> bool:
    """A lead of the department or of any department above it."""
    seen: set[str] = set()
    current: str | None = department_id
    while current is not None and current not in seen and current in directory.departments:
        department = directory.departments[current]
        if member_id in department.lead_ids:
            return True
        seen.add(current)
        current = department.parent_id
    return False


# ---- permissions ---------------------------------------------------------------------------------


def can_see(
    caller: Caller,
    directory: OrgDirectory,
    *,
    visibility: str,
    owner_ids: Iterable[str],
    department_id: str | None,
) -> bool:
    """Whether the caller may see an objective: anything else about it is a 404 to them."""
    rank = standing(caller, directory)
    if rank is not Standing.MEMBER:
        return rank is Standing.ADMIN
    owners = list(owner_ids)
    if visibility == "public" or caller.member_id in owners:
        return True
    if manages(directory, caller.member_id, owners):
        return True
    if visibility == "department" and department_id is not None:
        own_department = directory.members[caller.member_id].department_id
        return own_department is not None and own_department in directory.department_subtree(
            department_id
        )
    return False


def can_edit(caller: Caller, directory: OrgDirectory, owner_ids: Iterable[str]) -> bool:
    """Owners edit their own objectives; direct managers edit their reports'; admins all."""
    rank = standing(caller, directory)
    if rank is not Standing.MEMBER:
        return rank is Standing.ADMIN
    owners = list(owner_ids)
    return caller.member_id in owners or manages_directly(directory, caller.member_id, owners)


def can_check_in(
    caller: Caller, directory: OrgDirectory, owner_ids: Iterable[str], kr_owner_id: str | None
) -> bool:
    """Whoever may edit the objective, and the key result's own owner."""
    if can_edit(caller, directory, owner_ids):
        return True
    return (
        standing(caller, directory) is Standing.MEMBER
        and kr_owner_id is not None
        and kr_owner_id == caller.member_id
    )


def can_approve(caller: Caller, directory: OrgDirectory, owner_ids: Iterable[str]) -> bool:
    """The owners' direct manager approves (not the owner); admins may too."""
    rank = standing(caller, directory)
    if rank is not Standing.MEMBER:
        return rank is Standing.ADMIN
    return manages_directly(directory, caller.member_id, owner_ids)


def can_set_objectives_for(caller: Caller, directory: OrgDirectory, member_id: str) -> bool:
    """Members set their own objectives and their direct reports'; admins anyone's."""
    rank = standing(caller, directory)
    if rank is not Standing.MEMBER:
        return rank is Standing.ADMIN
    return member_id == caller.member_id or manages_directly(
        directory, caller.member_id, [member_id]
    )


def can_manage_department(caller: Caller, directory: OrgDirectory, department_id: str) -> bool:
    """Set a department's objectives: its leads, the leads above it, and admins."""
    rank = standing(caller, directory)
    if rank is not Standing.MEMBER:
        return rank is Standing.ADMIN
    return leads(directory, caller.member_id, department_id)
