"""Who may see and change what (DESIGN "Auth", issue rules). Pure functions over the directory.

Visibility (DOMAIN §3): public = everyone in the organisation; department = members of the
objective's department (and below) plus the owners' manager chain; private = owners, their
manager chain (transitively) and admins. Admins see everything.
"""

from __future__ import annotations

from collections.abc import Iterable

# The authenticated caller (JWT claims sub, org, roles) is the suite's one Principal, the type the
# token verifier returns; the routes, use cases and these rules take it from here.
from okr_platform.principal import Principal

from .organisation import Organisation


def is_admin(principal: Principal, org: Organisation | None) -> bool:
    # Roles come from the identity provider's token or from the OKR directory.
    return "admin" in principal.roles or (org is not None and org.is_admin(principal.member_id))


def manages(org: Organisation, manager_id: str, member_ids: Iterable[str]) -> bool:
    """True when manager_id is in the manager chain of any of the members."""
    return any(manager_id in org.manager_chain(m) for m in member_ids)


def manages_directly(org: Organisation, manager_id: str, member_ids: Iterable[str]) -> bool:
    return any(org.is_direct_manager(manager_id, m) for m in member_ids)


def can_see(
    principal: Principal,
    org: Organisation,
    *,
    visibility: str,
    owner_ids: Iterable[str],
    department_id: str | None,
) -> bool:
    owners = list(owner_ids)
    if visibility == "public" or principal.member_id in owners or is_admin(principal, org):
        return True
    if manages(org, principal.member_id, owners):
        return True
    if visibility == "department" and department_id is not None:
        me = org.members.get(principal.member_id)
        return (
            me is not None
            and me.department_id is not None
            and me.department_id in org.department_subtree(department_id)
        )
    return False


def can_edit(principal: Principal, org: Organisation, owner_ids: Iterable[str]) -> bool:
    """Owners edit their own objectives; direct supervisors edit their reports'; admins all."""
    owners = list(owner_ids)
    return (
        principal.member_id in owners
        or is_admin(principal, org)
        or manages_directly(org, principal.member_id, owners)
    )


def can_approve(principal: Principal, org: Organisation, owner_ids: Iterable[str]) -> bool:
    """The owner's direct manager approves (DOMAIN §5); admins may too."""
    return is_admin(principal, org) or manages_directly(org, principal.member_id, owner_ids)


def leads_department(org: Organisation, member_id: str, department_id: str) -> bool:
    """A lead of the department or of any department above it."""
    current = org.departments.get(department_id)
    seen: set[str] = set()
    while current is not None and current.id not in seen:
        if member_id in current.lead_ids:
            return True
        seen.add(current.id)
        current = org.departments.get(current.parent_id) if current.parent_id else None
    return False
