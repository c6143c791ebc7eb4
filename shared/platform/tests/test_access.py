"""The access policy's other rules (okr_platform.access) and the shared Directory's walks:
standing, the bootstrap admin, check-ins, setting objectives, managing a department.
Seeing, editing and approving cell by cell: test_access_table.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from okr_platform.access import (
    Standing,
    can_check_in,
    can_manage_department,
    can_see,
    can_set_objectives_for,
    is_admin,
    leads,
    manages,
    manages_directly,
    may_act,
    member_caller,
    standing,
)
from okr_platform.directory import Department, Directory, Member
from okr_platform.principal import Principal


def member(member_id: str, department: str | None, manager: str | None = None, **kw) -> Member:
    return Member(member_id, member_id, department, manager, "Asia/Shanghai", **kw)


@pytest.fixture
def directory() -> Directory:
    """hq -> cs -> cs_ops; hq -> pm. boss leads cs. boss -> bailu -> fanfan; lufei alone;
    root is a directory admin; gone left the organisation."""
    return Directory(
        members={
            "root": member("root", "hq", roles=frozenset({"admin"})),
            "boss": member("boss", "cs", roles=frozenset({"supervisor"})),
            "bailu": member("bailu", "cs", "boss"),
            "fanfan": member("fanfan", "cs_ops", "bailu"),
            "lufei": member("lufei", "pm"),
            "gone": member("gone", "cs", "boss", active=False),
        },
        departments={
            "hq": Department("hq", "公司", None),
            "cs": Department("cs", "客户成功部", "hq", frozenset({"boss"})),
            "cs_ops": Department("cs_ops", "客服运营组", "cs"),
            "pm": Department("pm", "产品市场部", "hq"),
        },
    )


def token(member_id: str, *roles: str) -> Principal:
    return Principal(member_id, "acme", frozenset(roles))


# ---- standing --------------------------------------------------------------------------------


def test_standing_of_members_admins_and_outsiders(directory: Directory):
    assert standing(token("bailu"), directory) is Standing.MEMBER
    assert standing(token("root"), directory) is Standing.ADMIN  # by directory role
    assert standing(token("bailu", "admin"), directory) is Standing.ADMIN  # by token role
    assert standing(token("ghost"), directory) is Standing.OUTSIDER
    assert standing(token("gone"), directory) is Standing.OUTSIDER
    assert standing(token("gone", "admin"), directory) is Standing.OUTSIDER


def test_the_token_admin_runs_an_organisation_that_does_not_exist_yet_or_does_not_list_them(
    directory: Directory,
):
    # The bootstrap: the README's `make token MEMBER=admin ROLES=admin` is in no directory.
    assert is_admin(token("admin", "admin"), None)
    assert is_admin(token("admin", "admin"), Directory())
    assert is_admin(token("admin", "admin"), directory)
    assert may_act(token("admin", "admin"), directory)


def test_nobody_else_acts_in_an_organisation_that_does_not_list_them(directory: Directory):
    assert not may_act(token("bailu"), None)
    assert not may_act(token("bailu"), Directory())
    assert not may_act(token("ghost"), directory)
    assert not may_act(token("gone"), directory)
    assert may_act(token("bailu"), directory)
    assert not is_admin(token("root"), None)  # a directory role needs the directory


def test_a_deactivated_directory_admin_is_no_admin(directory: Directory):
    members = dict(directory.members)
    members["root"] = replace(members["root"], active=False)
    assert not is_admin(token("root"), Directory(members, directory.departments))


def test_a_member_known_only_by_id_has_no_token_roles(directory: Directory):
    follower = member_caller("lufei")
    assert follower.member_id == "lufei" and not follower.roles
    assert can_see(
        follower, directory, visibility="public", owner_ids=["bailu"], department_id="cs"
    )
    assert not can_see(
        follower, directory, visibility="department", owner_ids=["bailu"], department_id="cs"
    )
    assert not can_see(
        member_caller("gone"), directory, visibility="public", owner_ids=[], department_id=None
    )
    assert is_admin(member_caller("root"), directory)


# ---- relations -------------------------------------------------------------------------------


def test_managing_is_transitive_managing_directly_is_not(directory: Directory):
    assert manages(directory, "boss", ["fanfan"])
    assert not manages(directory, "fanfan", ["boss"])
    assert manages_directly(directory, "bailu", ["fanfan"])
    assert not manages_directly(directory, "boss", ["fanfan"])
    assert manages_directly(directory, "boss", ["lufei", "bailu"])
    assert not manages_directly(directory, "boss", ["ghost"])


def test_leads_of_a_department_lead_the_departments_below(directory: Directory):
    assert leads(directory, "boss", "cs")
    assert leads(directory, "boss", "cs_ops")
    assert not leads(directory, "boss", "hq")
    assert not leads(directory, "boss", "pm")
    assert not leads(directory, "bailu", "cs")
    assert not leads(directory, "boss", "nowhere")


def test_a_department_loop_in_a_replica_does_not_hang_the_walks():
    looped = Directory(
        members={
            "a": member("a", "x", "b"),
            "b": member("b", "y", "a"),
        },
        departments={"x": Department("x", "X", "y"), "y": Department("y", "Y", "x")},
    )
    assert looped.manager_chain("a") == ["b", "a"]
    assert looped.department_subtree("x") == {"x", "y"}
    assert not leads(looped, "a", "x")


def test_department_subtree_of_an_unknown_department_is_itself(directory: Directory):
    assert directory.department_subtree("nowhere") == {"nowhere"}
    assert directory.department_subtree("hq") == {"hq", "cs", "cs_ops", "pm"}


# ---- other permissions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "kr_owner", "expected"),
    [
        (token("lufei"), "lufei", True),  # owns the key result, not the objective
        (token("lufei"), "fanfan", False),
        (token("lufei"), None, False),
        (token("bailu"), None, True),  # owns the objective
        (token("boss"), None, True),  # the owner's direct manager
        (token("gone"), "gone", False),  # left: not even their own key result
        (token("ghost"), "ghost", False),
        (token("ghost", "admin"), None, True),
    ],
)
def test_who_checks_in_on_a_key_result(directory: Directory, who, kr_owner, expected):
    assert can_check_in(who, directory, ["bailu"], kr_owner) is expected


@pytest.mark.parametrize(
    ("who", "for_member", "expected"),
    [
        (token("bailu"), "bailu", True),
        (token("bailu"), "fanfan", True),  # a direct report
        (token("boss"), "fanfan", False),  # not direct
        (token("lufei"), "bailu", False),
        (token("root"), "lufei", True),
        (token("ghost", "admin"), "lufei", True),
        (token("gone"), "gone", False),
        (token("ghost"), "ghost", False),
    ],
)
def test_who_sets_objectives_for_a_member(directory: Directory, who, for_member, expected):
    assert can_set_objectives_for(who, directory, for_member) is expected


@pytest.mark.parametrize(
    ("who", "department", "expected"),
    [
        (token("boss"), "cs", True),
        (token("boss"), "cs_ops", True),  # below a department they lead
        (token("boss"), "pm", False),
        (token("bailu"), "cs", False),
        (token("root"), "pm", True),
        (token("ghost", "admin"), "pm", True),
    ],
)
def test_who_manages_a_departments_objectives(directory: Directory, who, department, expected):
    assert can_manage_department(who, directory, department) is expected


def test_a_lead_who_left_manages_nothing(directory: Directory):
    members = dict(directory.members)
    members["boss"] = replace(members["boss"], active=False)
    assert not can_manage_department(token("boss"), Directory(members, directory.departments), "cs")
