"""The access policy (okr_platform.access), cell by cell: role x relation x visibility.

One objective, owned by `owner` in 客户成功部 (cs), is looked at by a caller who stands in one
relation to it and holds one role. The directory (shared Directory value, as a replica has it):

    hq 公司 -> cs 客户成功部 -> cs_ops 客服运营组;  hq -> pm 产品市场部
    skip (hq) -> manager (cs) -> owner (cs);  peer (cs);  junior (cs_ops);  outsider (pm)

Roles: `employee`; `admin (token)`: the identity provider's admin role on the token;
`admin (directory)`: the `admin` role in the caller's directory entry. Relations are who the
caller is; `unknown member` has no directory entry (so no directory role either) and
`inactive member` is the owner's direct manager, made inactive: the strongest relation, lost.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from okr_platform.access import can_approve, can_edit, can_see
from okr_platform.directory import Department, Directory, Member
from okr_platform.principal import Principal

OWNERS = ("owner",)
DEPARTMENT = "cs"
VISIBILITIES = ("public", "department", "private")

#: relation -> the caller's member id (and whether their entry is made inactive)
RELATIONS = {
    "owner": "owner",
    "direct manager": "manager",
    "manager's manager": "skip",
    "same department": "peer",
    "sub-department": "junior",
    "other department": "outsider",
    "unknown member": "ghost",
    "inactive member": "manager",
}

ROLES = ("employee", "admin (token)", "admin (directory)")

Y, N = True, False
#: (role, relation) -> (sees public, sees department, sees private, edits, approves)
EXPECTED: dict[tuple[str, str], tuple[bool, bool, bool, bool, bool]] = {
    ("employee", "owner"): (Y, Y, Y, Y, N),
    ("employee", "direct manager"): (Y, Y, Y, Y, Y),
    ("employee", "manager's manager"): (Y, Y, Y, N, N),
    ("employee", "same department"): (Y, Y, N, N, N),
    ("employee", "sub-department"): (Y, Y, N, N, N),
    ("employee", "other department"): (Y, N, N, N, N),
    ("employee", "unknown member"): (N, N, N, N, N),
    ("employee", "inactive member"): (N, N, N, N, N),
    ("admin (token)", "owner"): (Y, Y, Y, Y, Y),
    ("admin (token)", "direct manager"): (Y, Y, Y, Y, Y),
    ("admin (token)", "manager's manager"): (Y, Y, Y, Y, Y),
    ("admin (token)", "same department"): (Y, Y, Y, Y, Y),
    ("admin (token)", "sub-department"): (Y, Y, Y, Y, Y),
    ("admin (token)", "other department"): (Y, Y, Y, Y, Y),
    ("admin (token)", "unknown member"): (Y, Y, Y, Y, Y),  # the bootstrap admin
    ("admin (token)", "inactive member"): (N, N, N, N, N),  # left: the token does not help
    ("admin (directory)", "owner"): (Y, Y, Y, Y, Y),
    ("admin (directory)", "direct manager"): (Y, Y, Y, Y, Y),
    ("admin (directory)", "manager's manager"): (Y, Y, Y, Y, Y),
    ("admin (directory)", "same department"): (Y, Y, Y, Y, Y),
    ("admin (directory)", "sub-department"): (Y, Y, Y, Y, Y),
    ("admin (directory)", "other department"): (Y, Y, Y, Y, Y),
    ("admin (directory)", "unknown member"): (N, N, N, N, N),  # no entry, so no role
    ("admin (directory)", "inactive member"): (N, N, N, N, N),
}


def base_directory() -> Directory:
    departments = {
        "hq": Department("hq", "公司", None),
        "cs": Department("cs", "客户成功部", "hq"),
        "cs_ops": Department("cs_ops", "客服运营组", "cs"),
        "pm": Department("pm", "产品市场部", "hq"),
    }
    people = [
        ("skip", "hq", None),
        ("manager", "cs", "skip"),
        ("owner", "cs", "manager"),
        ("peer", "cs", None),
        ("junior", "cs_ops", None),
        ("outsider", "pm", None),
    ]
    members = {
        member_id: Member(member_id, member_id, department, manager, "UTC", frozenset({"employee"}))
        for member_id, department, manager in people
    }
    return Directory(members, departments)


def situation(role: str, relation: str) -> tuple[Principal, Directory]:
    """The caller's token and the directory for one cell of the table."""
    directory = base_directory()
    member_id = RELATIONS[relation]
    members = dict(directory.members)
    if member_id in members:
        entry = members[member_id]
        if role == "admin (directory)":
            entry = replace(entry, roles=frozenset({"admin"}))
        if relation == "inactive member":
            entry = replace(entry, active=False)
        members[member_id] = entry
    token_roles = frozenset({"admin"}) if role == "admin (token)" else frozenset()
    return Principal(member_id, "acme", token_roles), Directory(members, directory.departments)


def test_the_table_has_every_cell():
    assert set(EXPECTED) == {(role, relation) for role in ROLES for relation in RELATIONS}


@pytest.mark.parametrize(("role", "relation"), list(EXPECTED))
def test_cell(role: str, relation: str):
    caller, directory = situation(role, relation)
    *sees, edits, approves = EXPECTED[role, relation]
    for visibility, expected in zip(VISIBILITIES, sees, strict=True):
        seen = can_see(
            caller, directory, visibility=visibility, owner_ids=OWNERS, department_id=DEPARTMENT
        )
        assert seen is expected, (role, relation, visibility)
    assert can_edit(caller, directory, OWNERS) is edits
    assert can_approve(caller, directory, OWNERS) is approves


def test_the_base_directory_has_the_relations_the_table_names():
    # Guards the table against a fixture that no longer means what the rows say.
    directory = base_directory()
    assert directory.manager_chain("owner") == ["manager", "skip"]
    assert directory.department_subtree("cs") == {"cs", "cs_ops"}
    assert "ghost" not in directory.members
    assert all(member.active for member in directory.members.values())
