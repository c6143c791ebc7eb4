"""Who may see, edit and approve an objective (DOMAIN §1, §3, §5): access.py's pure rules.

Directory used throughout:
    hq 公司 -> cs 客户成功部 -> team_a 项目A组;  hq -> pm 产品市场部
    root (admin role in the directory), ceo (hq, no role)
    boss (cs) -> bailu 白露 (cs) -> fanfan 凡凡 (team_a);  boss -> mengbo 孟波 (cs)
    lufei 路飞 (pm), nobody's manager or report
    hq -> hr 人力资源部 (lead: boss) -> hr_ops 人事运营组
"""

from __future__ import annotations

import pytest
from okr_goals.domain.access import (
    Principal,
    can_approve,
    can_edit,
    can_see,
    is_admin,
    leads_department,
    manages,
    manages_directly,
)
from okr_goals.domain.organisation import Organisation


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


@pytest.mark.parametrize("who", ["bailu", "lufei", "fanfan", "ceo", "stranger"])
def test_public_objectives_are_seen_by_everyone(org, who):
    assert sees(org, me(who), "public")


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
    assert leads_department(org, "boss", "hr")
    assert leads_department(org, "boss", "hr_ops")
    assert not leads_department(org, "boss", "pm")
    assert not leads_department(org, "boss", "hq")
    assert not leads_department(org, "bailu", "hr")
    assert not leads_department(org, "boss", "nowhere")
