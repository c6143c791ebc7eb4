"""Objectives and key results (docs/domain.md#objectives).

Edits of the objective and its key results, target changes.

Pure domain tests on the aggregate: no HTTP, no database.
"""

from __future__ import annotations

import math

import pytest
from objective_kit import TITLE, draft, in_state
from okr_platform.errors import (
    IllegalTransition,
    InvalidInput,
    NotFound,
)

# ---- editing the objective -------------------------------------------------------------------


def test_edit_records_the_changes_and_previous_values():
    objective, _ = in_state("active")
    objective.collect_events()
    objective.edit({"title": "  打造一流客户支持团队 ", "weight": 2}, actor="boss")
    (e,) = objective.collect_events()
    assert type(e).__name__ == "ObjectiveEdited"
    assert e.changes == {"title": "打造一流客户支持团队", "weight": 2.0}
    assert e.previous == {"title": TITLE, "weight": 1.0}
    assert e.actor == "boss"
    assert objective.title == "打造一流客户支持团队"
    assert objective.weight == 2.0


def test_edit_that_changes_nothing_records_nothing():
    objective, _ = in_state("active")
    objective.collect_events()
    objective.edit({"title": TITLE, "visibility": "public"}, actor="bailu")
    assert objective.collect_events() == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": " "}, "title"),
        ({"level": "galaxy"}, "level"),
        ({"visibility": "everyone"}, "visibility"),
        ({"weight": 0}, "weight"),
        ({"weight": math.nan}, "weight"),
        ({"status": "active"}, "status"),
        ({"owner_id": "mengbo"}, "owner_id"),
    ],
)
def test_invalid_edits_are_refused_with_the_field(changes, field):
    objective, _ = in_state("active")
    with pytest.raises(InvalidInput) as caught:
        objective.edit(changes, actor="bailu")
    assert caught.value.field == field
    assert objective.title == TITLE
    assert objective.status == "active"


@pytest.mark.parametrize("status", ["scoring", "scored", "closed"])
def test_editing_after_active_needs_a_late_update(status):
    objective, _ = in_state(status)
    with pytest.raises(IllegalTransition):
        objective.edit({"title": "新标题"}, actor="bailu")
    objective.collect_events()
    objective.edit({"title": "新标题"}, actor="root", late=True)
    (e,) = objective.collect_events()
    assert e.late is True
    assert objective.title == "新标题"


def test_key_result_edit_records_the_change():
    objective, kr_id = in_state("active")
    objective.collect_events()
    objective.edit_key_result(kr_id, {"title": "获取120家客户的5星好评", "weight": 3}, "boss")
    (e,) = objective.collect_events()
    assert type(e).__name__ == "KeyResultEdited"
    assert e.previous == {"title": "获取100家客户的5星好评", "weight": 1.0}
    assert e.changes == {"title": "获取120家客户的5星好评", "weight": 3.0}
    assert objective.key_results[kr_id].weight == 3.0


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"target": 5}, "target"), ({"current": 5}, "current"), ({"weight": -1}, "weight")],
)
def test_key_result_edit_refuses_fields_with_their_own_command(changes, field):
    objective, kr_id = in_state("active")
    with pytest.raises(InvalidInput) as caught:
        objective.edit_key_result(kr_id, changes, "bailu")
    assert caught.value.field == field


def test_key_result_edit_of_unknown_key_result_is_not_found():
    objective, _ = in_state("active")
    with pytest.raises(NotFound):
        objective.edit_key_result("nope", {"title": "x"}, "bailu")


# ---- target changes --------------------------------------------------------------------------


def test_target_change_keeps_old_and_new_target_and_the_reason():
    objective, kr_id = in_state("active")
    objective.check_in(kr_id, current=50, actor="bailu")
    objective.collect_events()
    objective.change_target(kr_id, 200, reason="  市场扩大  ", actor="boss")
    (e,) = objective.collect_events()
    assert type(e).__name__ == "KeyResultTargetChanged"
    assert (e.old_target, e.new_target) == (100.0, 200.0)
    assert e.reason == "市场扩大"
    assert e.progress_before == pytest.approx(0.5)
    assert e.late is False
    assert objective.key_results[kr_id].target == 200.0
    assert objective.key_results[kr_id].progress == pytest.approx(0.25)


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_target_change_needs_a_reason(reason):
    objective, kr_id = in_state("active")
    with pytest.raises(InvalidInput) as caught:
        objective.change_target(kr_id, 200, reason=reason, actor="boss")
    assert caught.value.field == "reason"
    assert objective.key_results[kr_id].target == 100.0


def test_target_equal_to_start_is_refused():
    objective, kr_id = in_state("active")
    with pytest.raises(InvalidInput) as caught:
        objective.change_target(kr_id, 0, reason="归零", actor="boss")
    assert caught.value.field == "target"


@pytest.mark.parametrize("target", [math.nan, math.inf])
def test_target_must_be_finite(target):
    objective, kr_id = in_state("active")
    with pytest.raises(InvalidInput) as caught:
        objective.change_target(kr_id, target, reason="调整", actor="boss")
    assert caught.value.field == "target"


def test_unchanged_target_records_nothing():
    objective, kr_id = in_state("active")
    objective.collect_events()
    objective.change_target(kr_id, 100, reason="确认", actor="boss")
    assert objective.collect_events() == []


def test_boolean_key_result_has_no_target_to_change():
    objective = draft()
    kr_id = objective.add_key_result(title="上线", kind="boolean", actor="bailu")
    with pytest.raises(InvalidInput) as caught:
        objective.change_target(kr_id, 2, reason="调整", actor="bailu")
    assert caught.value.field == "target"


@pytest.mark.parametrize("status", ["scoring", "scored", "closed"])
def test_target_change_after_active_only_as_a_late_update(status):
    objective, kr_id = in_state(status)
    with pytest.raises(IllegalTransition):
        objective.change_target(kr_id, 80, reason="调整", actor="boss")
    objective.collect_events()
    objective.change_target(kr_id, 80, reason="调整", actor="root", late=True)
    (e,) = objective.collect_events()
    assert e.late is True
    assert objective.key_results[kr_id].target == 80.0
