"""Objectives and key results (docs/domain.md#objectives).

Creating one, its input rules, Chinese content through the events, replay.

Pure domain tests on the aggregate: no HTTP, no database.
"""

from __future__ import annotations

import math
from datetime import date

import pytest
from objective_kit import TITLE, draft, in_state, replay
from okr_goals.application import GoalsApplication
from okr_platform.errors import (
    InvalidInput,
)

# ---- creating --------------------------------------------------------------------------------


def test_new_objective_is_a_draft_with_defaults():
    objective = draft()
    assert objective.status == "draft"
    assert objective.level == "personal"
    assert objective.visibility == "public"
    assert objective.weight == 1.0
    assert objective.responsible_ids == ["bailu"]
    assert objective.key_results == {}
    assert objective.parents == []
    assert objective.created_by == "bailu"


def test_title_and_description_are_trimmed():
    objective = draft(title=f"  {TITLE}  ", description="  说明  ")
    assert objective.title == TITLE
    assert objective.description == "说明"


def test_department_objective_keeps_its_responsible_people_without_duplicates():
    objective = draft(
        owner_type="department",
        owner_id="cs",
        level="department",
        responsible_ids=["bailu", "mengbo", "bailu"],
    )
    assert objective.responsible_ids == ["bailu", "mengbo"]
    assert objective.is_owned_by("mengbo")
    assert not objective.is_owned_by("cs")


def test_member_objective_is_owned_by_its_owner_only():
    objective = draft(responsible_ids=["mengbo"])
    assert objective.responsible_ids == ["bailu"]
    assert objective.is_owned_by("bailu")
    assert not objective.is_owned_by("mengbo")


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
def test_blank_title_is_refused(title):
    with pytest.raises(InvalidInput) as caught:
        draft(title=title)
    assert caught.value.field == "title"
    assert caught.value.code == "invalid_input"


def test_title_longer_than_500_characters_is_refused():
    with pytest.raises(InvalidInput) as caught:
        draft(title="目" * 501)
    assert caught.value.field == "title"
    assert draft(title="目" * 500).title == "目" * 500


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("level", "division"),
        ("visibility", "secret"),
        ("owner_type", "team"),
    ],
)
def test_unknown_level_visibility_or_owner_type_is_refused(field, value):
    with pytest.raises(InvalidInput) as caught:
        draft(**{field: value})
    assert caught.value.field == field


@pytest.mark.parametrize("weight", [0, -1, math.nan, math.inf, True])
def test_objective_weight_must_be_a_positive_finite_number(weight):
    with pytest.raises(InvalidInput) as caught:
        draft(weight=weight)
    assert caught.value.field == "weight"


@pytest.mark.parametrize("level", ["company", "department", "team", "personal"])
def test_every_level_is_accepted(level):
    assert draft(level=level).level == level


# ---- Chinese content -------------------------------------------------------------------------


def test_chinese_titles_and_units_round_trip_through_the_events():
    objective = draft(description="客户成功部的季度目标")
    ids = [
        objective.add_key_result(
            title=title, unit="custom", unit_label=unit, start=0, target=target, actor="bailu"
        )
        for title, unit, target in (
            ("每月组织客户培训4次", "次", 12),
            ("获取100家客户的5星好评", "家", 100),
            ("招聘60位客服专员", "位", 60),
        )
    ]
    copy = replay(objective)
    assert copy.title == TITLE
    assert copy.description == "客户成功部的季度目标"
    assert [copy.key_results[i].unit_label for i in ids] == ["次", "家", "位"]
    assert copy.key_results[ids[2]].title == "招聘60位客服专员"


def test_chinese_content_round_trips_through_the_stored_json_events():
    app = GoalsApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    objective = draft(description="客户成功部")
    kr_id = objective.add_key_result(
        title="每月组织客户培训4次",
        unit="custom",
        unit_label="次",
        target=12,
        due_date=date(2026, 12, 15),
        actor="bailu",
    )
    app.save(objective)
    stored = app.repository.get(objective.id)
    assert stored.title == TITLE
    assert stored.description == "客户成功部"
    assert stored.key_results[kr_id].title == "每月组织客户培训4次"
    assert stored.key_results[kr_id].unit_label == "次"
    assert stored.key_results[kr_id].due_date == date(2026, 12, 15)


def test_replaying_the_events_rebuilds_the_same_state():
    objective, kr_id = in_state("active")
    objective.check_in(kr_id, current=60, confidence=4, risk="at_risk", actor="bailu")
    copy = replay(objective)
    assert copy.id == objective.id
    assert copy.version == objective.version
    assert copy.status == "active"
    assert copy.key_results[kr_id] == objective.key_results[kr_id]
    assert copy.progress == pytest.approx(0.6)
