"""The suite's access policy (okr_platform.access) over goals' own Organisation aggregate:
who may see, edit and approve an objective (docs/access-policy.md). The same rules over the
shared Directory value, cell by cell: shared/platform/tests/test_access_table.py.

Directory used throughout:
    hq 公司 -> cs 客户成功部 -> team_a 项目A组;  hq -> pm 产品市场部
    root (admin role in the directory), ceo (hq, no role)
    boss (cs) -> bailu 白露 (cs) -> fanfan 凡凡 (team_a);  boss -> mengbo 孟波 (cs)
    lufei 路飞 (pm), nobody's manager or report
    hq -> hr 人力资源部 (lead: boss) -> hr_ops 人事运营组
"""

from __future__ import annotations

import pytest
from okr_goals.domain.organisation import Organisation
from okr_platform.access import (
    can_approve,
    can_edit,
    can_manage_department,
    can_see,
    is_admin,
    leads,
    manages,
    manages_directly,
)
from okr_platform.directory import Department, Directory, Member
from okr_platform.principal import Principal


@pytest.fixture(scope="module")
def org() -> Organisation:
    org = Organisation("acme", "Acme", actor="root")
    org.add_department("hq", "公司", None, [], "root")
    org.add_department("cs", "客户成功部", "hq", [], "root")
    org.add_department("pm", "产品市场部", "hq", [], "root")
    org.add_department("team_a", "项目A组", "cs", [], "root")

    def add(member_id, dept, manager=None, roles=()):
        org.add_member(member_id, member_id, dept, manager, "UTC", list(roles), None, "root")

    add("root", "hq", roles=["admin"])
    add("ceo", "hq")
    add("boss", "cs", roles=["supervisor"])
    add("bailu", "cs", "boss")
    add("mengbo", "cs", "boss")
    add("fanfan", "team_a", "bailu")
    add("lufei", "pm")
    org.update_member("boss", {"manager_id": "ceo"}, "root")
    org.add_department("hr", "人力资源部", "hq", ["boss"], "root")
    org.add_department("hr_ops", "人事运营组", "hr", [], "root")
    return org


def me(member_id: str, *roles: str) -> Principal:
    return Principal(member_id=member_id, org="acme", roles=frozenset(roles))


def sees(org, who: Principal, visibility: str, owners=("bailu",), department="cs") -> bool:
    return can_see(who, org, visibility=visibility, owner_ids=owners, department_id=department)


# ---- admins ----------------------------------------------------------------------------------


def test_admin_by_token_role_even_when_not_in_the_directory(org):
    assert is_admin(me("auditor", "admin"), org)
    assert is_admin(me("auditor", "admin"), None)


def test_admin_by_directory_role(org):
    assert is_admin(me("root"), org)
    assert not is_admin(me("root"), None)


def test_other_roles_are_not_admin(org):
    assert not is_admin(me("boss", "supervisor"), org)
    assert not is_admin(me("lufei"), org)


def test_managing_is_transitive_managing_directly_is_not(org):
    assert manages(org, "boss", ["fanfan"])
    assert manages(org, "ceo", ["fanfan"])
    assert not manages(org, "fanfan", ["boss"])
    assert manages_directly(org, "bailu", ["fanfan"])
    assert not manages_directly(org, "boss", ["fanfan"])
    assert manages_directly(org, "boss", ["lufei", "mengbo"])


# ---- public ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["bailu", "lufei", "fanfan", "ceo"])
def test_public_objectives_are_seen_by_everyone_in_the_organisation(org, who):
    assert sees(org, me(who), "public")


def test_public_objectives_are_not_seen_by_a_token_the_directory_does_not_list(org):
    # Issue 9's trial finding: a token for a `sub` nobody added read the public board.
    assert not sees(org, me("stranger"), "public")
    assert sees(org, me("stranger", "admin"), "public")  # the identity provider's admin


# ---- department ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (me("bailu"), True),  # owner
        (me("boss"), True),  # direct manager
        (me("ceo"), True),  # indirect manager, in hq above cs
        (me("auditor", "admin"), True),  # admin by token
        (me("root"), True),  # admin by directory role
        (me("mengbo"), True),  # colleague in cs
        (me("fanfan"), True),  # in team_a, below cs
        (me("lufei"), False),  # pm: outside the department
        (me("stranger"), False),  # not in the directory
    ],
)
def test_department_objectives_are_seen_within_the_department_subtree(org, who, expected):
    assert sees(org, who, "department") is expected


def test_department_visibility_does_not_reach_up_to_the_parent_department(org):
    # ceo sits in hq (above cs) but sees only through the manager chain: on lufei's
    # pm-department objective, ceo is neither manager nor in the pm subtree.
    assert not sees(org, me("ceo"), "department", owners=("lufei",), department="pm")


def test_department_objective_of_a_sub_team_is_hidden_from_the_parent_team(org):
    # mengbo is in cs; team_a's objective is visible to team_a and below only.
    assert not sees(org, me("mengbo"), "department", owners=("fanfan",), department="team_a")
    assert sees(org, me("boss"), "department", owners=("fanfan",), department="team_a")


def test_department_objective_without_a_department_is_seen_only_by_owner_chain_and_admins(org):
    assert not sees(org, me("mengbo"), "department", department=None)
    assert sees(org, me("boss"), "department", department=None)
    assert sees(org, me("bailu"), "department", department=None)


# ---- private ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (me("fanfan"), True),  # owner
        (me("bailu"), True),  # direct manager
        (me("boss"), True),  # indirect manager
        (me("ceo"), True),  # top of the manager chain
        (me("auditor", "admin"), True),  # admin by token
        (me("root"), True),  # admin by directory role
        (me("mengbo"), False),  # a peer of the manager, not in the chain
        (me("lufei"), False),  # outsider
        (me("fanfan2"), False),  # not in the directory
    ],
)
def test_private_objectives_are_seen_by_owner_manager_chain_and_admins(org, who, expected):
    assert sees(org, who, "private", owners=("fanfan",), department="team_a") is expected


def test_colleague_in_the_same_department_does_not_see_a_private_objective(org):
    assert not sees(org, me("mengbo"), "private", owners=("bailu",), department="cs")


def test_reports_do_not_see_their_managers_private_objectives(org):
    assert not sees(org, me("fanfan"), "private", owners=("bailu",), department="cs")


def test_private_department_objective_is_seen_by_every_responsible_persons_chain(org):
    owners = ("mengbo", "fanfan")
    assert sees(org, me("fanfan"), "private", owners=owners, department="cs")
    assert sees(org, me("bailu"), "private", owners=owners, department="cs")
    assert not sees(org, me("lufei"), "private", owners=owners, department="cs")


# ---- editing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (me("fanfan"), True),  # owner
        (me("bailu"), True),  # direct supervisor
        (me("boss"), False),  # indirect manager: sees, but does not edit
        (me("auditor", "admin"), True),
        (me("root"), True),
        (me("mengbo"), False),
        (me("lufei"), False),
    ],
)
def test_owner_direct_supervisor_and_admins_edit(org, who, expected):
    assert can_edit(who, org, ["fanfan"]) is expected


def test_any_responsible_person_edits_a_shared_objective(org):
    assert can_edit(me("mengbo"), org, ["bailu", "mengbo"])
    assert can_edit(me("boss"), org, ["bailu", "mengbo"])


# ---- approving -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (me("bailu"), True),  # direct manager
        (me("fanfan"), False),  # the owner does not approve their own objective
        (me("boss"), False),  # indirect manager
        (me("auditor", "admin"), True),
        (me("root"), True),
        (me("lufei"), False),
    ],
)
def test_direct_manager_or_admin_approves(org, who, expected):
    assert can_approve(who, org, ["fanfan"]) is expected


# ---- department leads ------------------------------------------------------------------------


def test_lead_of_a_department_leads_the_departments_below(org):
    assert leads(org, "boss", "hr")
    assert leads(org, "boss", "hr_ops")
    assert not leads(org, "boss", "pm")
    assert not leads(org, "boss", "hq")
    assert not leads(org, "bailu", "hr")
    assert not leads(org, "boss", "nowhere")


def test_leads_and_admins_manage_a_departments_objectives(org):
    assert can_manage_department(me("boss"), org, "hr_ops")
    assert not can_manage_department(me("bailu"), org, "hr")
    assert can_manage_department(me("root"), org, "pm")
    assert can_manage_department(me("auditor", "admin"), org, "pm")


# ---- members who left ------------------------------------------------------------------------


def test_an_inactive_member_sees_and_may_do_nothing():
    org = Organisation("acme", "Acme", actor="root")
    org.add_department("cs", "客户成功部", None, [], "root")
    org.add_department("ops", "运营组", "cs", [], "root")
    org.add_member("boss", "老板", "cs", None, "UTC", ["admin"], None, "root")
    org.add_member("bailu", "白露", "ops", "boss", "UTC", [], None, "root")
    # Both leave: the owner of the objective and their manager, a directory admin.
    org.update_member("bailu", {"active": False}, "root")
    org.update_member("boss", {"active": False}, "root")
    for who in (me("bailu"), me("boss"), me("boss", "admin")):
        for visibility in ("public", "department", "private"):
            assert not sees(org, who, visibility, owners=("bailu",), department="cs")
        assert not can_edit(who, org, ["bailu"])
        assert not can_approve(who, org, ["bailu"])
        assert not is_admin(who, org)


# ---- goals' aggregate and a replica answer alike ---------------------------------------------


def replica_of(org: Organisation) -> Directory:
    """The directory as another context loads it from goals' events."""
    return Directory(
        members={
            m.id: Member(
                m.id,
                m.name,
                m.department_id,
                m.manager_id,
                m.time_zone,
                frozenset(m.roles),
                m.active,
                m.email,
            )
            for m in org.members.values()
        },
        departments={
            d.id: Department(d.id, d.name, d.parent_id, frozenset(d.lead_ids))
            for d in org.departments.values()
        },
    )


def test_the_aggregate_and_its_replica_give_the_same_answers(org):
    replica = replica_of(org)
    callers = [me(m) for m in [*org.members, "stranger"]] + [me("stranger", "admin")]
    owner_sets = [("bailu",), ("fanfan",), ("lufei", "mengbo"), ()]
    for caller in callers:
        for owners in owner_sets:
            assert can_edit(caller, org, owners) == can_edit(caller, replica, owners)
            assert can_approve(caller, org, owners) == can_approve(caller, replica, owners)
            for visibility in ("public", "department", "private"):
                for department in ("cs", "team_a", "pm", None):
                    assert sees(org, caller, visibility, owners, department) == sees(
                        replica, caller, visibility, owners, department
                    ), (caller, owners, visibility, department)
        for department in org.departments:
            assert can_manage_department(caller, org, department) == can_manage_department(
                caller, replica, department
            )
