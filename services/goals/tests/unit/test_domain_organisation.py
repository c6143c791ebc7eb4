"""The organisation directory (docs/domain.md#organisation): departments, members, reporting
lines, settings.

Pure domain tests on the aggregate: no HTTP, no database.
"""

from __future__ import annotations

import math

import pytest
from okr_goals.domain.organisation import Organisation, OrgSettings, organisation_id
from okr_platform.access import is_admin, manages_directly, member_caller
from okr_platform.errors import Conflict, InvalidInput, NotFound


def add(org: Organisation, member_id: str, name: str, dept: str | None, manager=None, roles=()):
    org.add_member(member_id, name, dept, manager, "Asia/Shanghai", list(roles), None, "root")


def acme() -> Organisation:
    """hq -> 客户成功部 (cs) -> 项目A组 (team_a); hq -> 产品市场部 (pm).
    root (admin); boss -> 白露 bailu -> 凡凡 fanfan; boss -> 孟波 mengbo; 路飞 lufei alone."""
    org = Organisation("acme", "Acme 北极星", actor="root")
    org.add_department("hq", "公司", None, [], "root")
    org.add_department("cs", "客户成功部", "hq", [], "root")
    org.add_department("pm", "产品市场部", "hq", [], "root")
    org.add_department("team_a", "项目A组", "cs", [], "root")
    add(org, "root", "管理员", "hq", roles=["admin"])
    add(org, "boss", "老板", "cs", roles=["supervisor"])
    add(org, "bailu", "白露", "cs", "boss")
    add(org, "mengbo", "孟波", "cs", "boss")
    add(org, "fanfan", "凡凡", "team_a", "bailu")
    add(org, "lufei", "路飞", "pm")
    return org


# ---- identity --------------------------------------------------------------------------------


def test_organisation_id_is_derived_from_the_org_claim():
    assert organisation_id("acme") == organisation_id("acme")
    assert organisation_id("acme") != organisation_id("globex")
    assert Organisation("acme", "Acme", actor="root").id == organisation_id("acme")


def test_chinese_names_round_trip_through_the_events():
    org = acme()
    copy = None
    for e in org.collect_events():
        copy = e.mutate(copy)
    assert copy.name == "Acme 北极星"
    assert copy.departments["team_a"].name == "项目A组"
    assert copy.members["bailu"].name == "白露"
    assert copy.members == org.members
    assert copy.departments == org.departments


# ---- departments -----------------------------------------------------------------------------


def test_departments_form_a_tree():
    org = acme()
    assert org.departments["cs"].parent_id == "hq"
    assert org.departments["team_a"].parent_id == "cs"
    assert org.departments["hq"].parent_id is None


def test_department_leads_are_kept():
    org = acme()
    org.add_department("hr", "人力资源部", "hq", ["boss", "lufei"], "root")
    assert org.departments["hr"].lead_ids == ["boss", "lufei"]


def test_department_under_an_unknown_parent_is_refused():
    org = acme()
    with pytest.raises(InvalidInput) as caught:
        org.add_department("x", "X", "nowhere", [], "root")
    assert caught.value.field == "parent_id"
    assert "x" not in org.departments


def test_department_led_by_an_unknown_member_is_refused():
    org = acme()
    with pytest.raises(InvalidInput) as caught:
        org.add_department("hr", "人力资源部", "hq", ["ghost"], "root")
    assert caught.value.field == "lead_ids"
    assert "hr" not in org.departments


def test_duplicate_department_id_is_a_conflict():
    org = acme()
    with pytest.raises(Conflict) as caught:
        org.add_department("cs", "另一个客户成功部", None, [], "root")
    assert caught.value.code == "conflict"
    assert caught.value.field == "id"
    assert org.departments["cs"].name == "客户成功部"


def test_department_subtree_is_the_department_and_everything_below():
    org = acme()
    assert org.department_subtree("hq") == {"hq", "cs", "pm", "team_a"}
    assert org.department_subtree("cs") == {"cs", "team_a"}
    assert org.department_subtree("team_a") == {"team_a"}
    assert org.department_subtree("pm") == {"pm"}


def test_looking_up_an_unknown_department_is_invalid_input():
    with pytest.raises(InvalidInput) as caught:
        acme().department("nowhere", field="owner_id")
    assert caught.value.field == "owner_id"


# ---- members ---------------------------------------------------------------------------------


def test_member_is_added_with_department_manager_and_roles():
    org = acme()
    bailu = org.members["bailu"]
    assert (bailu.name, bailu.department_id, bailu.manager_id) == ("白露", "cs", "boss")
    assert bailu.time_zone == "Asia/Shanghai"
    assert bailu.roles == ["employee"]
    assert bailu.active is True


def test_roles_are_deduplicated_and_sorted():
    org = acme()
    add(org, "x", "X", None, roles=["supervisor", "admin", "supervisor"])
    assert org.members["x"].roles == ["admin", "supervisor"]


def test_unknown_role_is_refused():
    org = acme()
    with pytest.raises(InvalidInput) as caught:
        add(org, "x", "X", None, roles=["owner"])
    assert caught.value.field == "roles"


def test_member_in_an_unknown_department_is_refused():
    org = acme()
    with pytest.raises(InvalidInput) as caught:
        add(org, "x", "X", "nowhere")
    assert caught.value.field == "department_id"
    assert "x" not in org.members


def test_member_with_an_unknown_manager_is_refused():
    org = acme()
    with pytest.raises(InvalidInput) as caught:
        add(org, "x", "X", "cs", "ghost")
    assert caught.value.field == "manager_id"
    assert "x" not in org.members


def test_member_cannot_manage_themselves():
    org = acme()
    with pytest.raises(InvalidInput) as caught:
        add(org, "x", "X", "cs", "x")
    assert caught.value.field == "manager_id"


def test_duplicate_member_id_is_a_conflict():
    org = acme()
    with pytest.raises(Conflict) as caught:
        add(org, "bailu", "另一个白露", "pm")
    assert caught.value.code == "conflict"
    assert caught.value.field == "id"
    assert org.members["bailu"].name == "白露"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "UTC+8"])
def test_unknown_time_zone_is_refused(zone):
    org = acme()
    with pytest.raises(InvalidInput) as caught:
        org.add_member("x", "X", None, None, zone, [], None, "root")
    assert caught.value.field == "time_zone"


def test_member_without_a_department_is_allowed():
    org = acme()
    add(org, "contractor", "外包", None)
    assert org.members["contractor"].department_id is None


# ---- reporting lines -------------------------------------------------------------------------


def test_manager_chain_lists_managers_nearest_first():
    org = acme()
    assert org.manager_chain("fanfan") == ["bailu", "boss"]
    assert org.manager_chain("bailu") == ["boss"]
    assert org.manager_chain("boss") == []
    assert org.manager_chain("ghost") == []


def test_direct_manager_is_only_the_nearest():
    org = acme()
    assert manages_directly(org, "bailu", ["fanfan"])
    assert not manages_directly(org, "boss", ["fanfan"])
    assert not manages_directly(org, "boss", ["ghost"])


def test_reporting_line_cannot_loop_back_directly():
    org = acme()
    with pytest.raises(Conflict) as caught:
        org.update_member("boss", {"manager_id": "bailu"}, "root")
    assert caught.value.code == "reporting_cycle"
    assert caught.value.field == "manager_id"
    assert org.members["boss"].manager_id is None


def test_reporting_line_cannot_loop_back_indirectly():
    org = acme()
    with pytest.raises(Conflict) as caught:
        org.update_member("boss", {"manager_id": "fanfan"}, "root")
    assert caught.value.code == "reporting_cycle"
    assert org.manager_chain("fanfan") == ["bailu", "boss"]


def test_member_cannot_be_made_their_own_manager():
    org = acme()
    with pytest.raises(Conflict) as caught:
        org.update_member("bailu", {"manager_id": "bailu"}, "root")
    assert caught.value.code == "reporting_cycle"


def test_reporting_line_can_move_without_a_cycle():
    org = acme()
    org.update_member("fanfan", {"manager_id": "boss"}, "root")
    assert org.manager_chain("fanfan") == ["boss"]
    org.update_member("boss", {"manager_id": "root"}, "root")
    assert org.manager_chain("fanfan") == ["boss", "root"]


def test_manager_can_be_removed():
    org = acme()
    org.update_member("bailu", {"manager_id": None}, "root")
    assert org.manager_chain("fanfan") == ["bailu"]


def test_update_to_an_unknown_manager_is_refused():
    org = acme()
    with pytest.raises(InvalidInput) as caught:
        org.update_member("bailu", {"manager_id": "ghost"}, "root")
    assert caught.value.field == "manager_id"


# ---- updating members ------------------------------------------------------------------------


def test_update_member_records_only_effective_changes():
    org = acme()
    org.collect_events()
    org.update_member("bailu", {"name": "白露", "department_id": "pm"}, "root")
    (e,) = org.collect_events()
    assert type(e).__name__ == "MemberUpdated"
    assert e.changes == {"department_id": "pm"}
    assert org.members["bailu"].department_id == "pm"


def test_update_that_changes_nothing_records_nothing():
    org = acme()
    org.collect_events()
    org.update_member("bailu", {"name": "白露", "manager_id": "boss"}, "root")
    assert org.collect_events() == []


def test_updating_an_unknown_member_is_not_found():
    with pytest.raises(NotFound) as caught:
        acme().update_member("ghost", {"name": "鬼"}, "root")
    assert caught.value.field == "id"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "new-id"}, "id"),
        ({"department_id": "nowhere"}, "department_id"),
        ({"time_zone": "Nowhere/Land"}, "time_zone"),
        ({"roles": ["king"]}, "roles"),
    ],
)
def test_invalid_member_updates_are_refused(changes, field):
    org = acme()
    with pytest.raises(InvalidInput) as caught:
        org.update_member("bailu", changes, "root")
    assert caught.value.field == field
    assert org.members["bailu"].department_id == "cs"


def test_admin_role_comes_from_the_directory():
    org = acme()
    assert is_admin(member_caller("root"), org)
    assert not is_admin(member_caller("boss"), org)
    assert not is_admin(member_caller("ghost"), org)
    org.update_member("boss", {"roles": ["admin", "supervisor"]}, "root")
    assert is_admin(member_caller("boss"), org)


def test_deactivated_member_is_kept():
    org = acme()
    org.update_member("mengbo", {"active": False}, "root")
    assert org.members["mengbo"].active is False
    assert org.manager_chain("mengbo") == ["boss"]


# ---- settings --------------------------------------------------------------------------------


def test_default_settings_follow_the_seed():
    settings = Organisation("acme", "Acme", actor="root").settings
    assert settings == OrgSettings(
        approval_required=True,
        approver_may_edit=True,
        subtasks_enabled=False,
        score_scale="0-100",
        confidence_scale=5,
        progress_warning_threshold=0.7,
    )


def test_settings_change_is_recorded_with_the_full_new_settings():
    org = acme()
    org.collect_events()
    org.change_settings(
        {"approval_required": False, "subtasks_enabled": True, "score_scale": "0-1"}, "root"
    )
    (e,) = org.collect_events()
    assert type(e).__name__ == "SettingsChanged"
    assert e.changes == {"approval_required": False, "subtasks_enabled": True, "score_scale": "0-1"}
    assert e.settings["progress_warning_threshold"] == 0.7
    assert org.settings.approval_required is False
    assert org.settings.subtasks_enabled is True
    assert org.settings.score_scale == "0-1"


def test_unchanged_settings_record_nothing():
    org = acme()
    org.collect_events()
    org.change_settings({"approval_required": True, "score_scale": "0-100"}, "root")
    assert org.collect_events() == []


@pytest.mark.parametrize("threshold", [1.0, 0.5, 0.01])
def test_progress_warning_threshold_in_range_is_accepted(threshold):
    org = acme()
    org.change_settings({"progress_warning_threshold": threshold}, "root")
    assert org.settings.progress_warning_threshold == threshold


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"score_scale": "0-10"}, "score_scale"),
        ({"score_scale": "百分制"}, "score_scale"),
        ({"confidence_scale": 10}, "confidence_scale"),
        ({"confidence_scale": 3}, "confidence_scale"),
        ({"progress_warning_threshold": 0}, "progress_warning_threshold"),
        ({"progress_warning_threshold": -0.5}, "progress_warning_threshold"),
        ({"progress_warning_threshold": 1.5}, "progress_warning_threshold"),
        ({"progress_warning_threshold": math.nan}, "progress_warning_threshold"),
    ],
)
def test_invalid_settings_are_refused_and_nothing_changes(changes, field):
    org = acme()
    org.collect_events()
    with pytest.raises(InvalidInput) as caught:
        org.change_settings(changes, "root")
    assert caught.value.field == field
    assert org.settings == OrgSettings()
    assert org.collect_events() == []
