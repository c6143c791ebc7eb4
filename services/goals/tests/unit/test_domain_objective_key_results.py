"""Objectives and key results (docs/domain.md#objectives).

Key results: adding, their input rules, removing.

Pure domain tests on the aggregate: no HTTP, no database.
"""

from __future__ import annotations

import math
from datetime import date

import pytest
from objective_kit import draft, in_state, with_kr
from okr_platform.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
)

# ---- key results: adding and input rules ------------------------------------------------------


def test_key_result_defaults():
    objective = draft()
    kr_id = objective.add_key_result(title="KR", actor="bailu")
    kr = objective.key_results[kr_id]
    assert (kr.kind, kr.unit, kr.start, kr.target, kr.current) == ("metric", "number", 0, 1, 0)
    assert kr.owner_id == "bailu"
    assert kr.weight == 1.0
    assert kr.risk == "normal"
    assert kr.confidence is None


def test_department_objective_key_results_have_no_default_owner():
    objective = draft(owner_type="department", owner_id="cs", responsible_ids=["bailu"])
    kr_id = objective.add_key_result(title="KR", actor="bailu")
    assert objective.key_results[kr_id].owner_id is None
    other = objective.add_key_result(title="KR2", owner_id="mengbo", actor="bailu")
    assert objective.key_results[other].owner_id == "mengbo"


def test_key_result_keeps_its_due_date_and_weight():
    objective = draft()
    kr_id = objective.add_key_result(
        title="KR", due_date=date(2026, 12, 15), weight=2.5, actor="bailu"
    )
    kr = objective.key_results[kr_id]
    assert kr.due_date == date(2026, 12, 15)
    assert kr.weight == 2.5


def test_key_result_current_defaults_to_its_start():
    objective, kr_id = with_kr(start=24, target=4)
    assert objective.key_results[kr_id].current == 24.0


BAD_NUMBERS = [math.nan, math.inf, -math.inf, "10", False]


@pytest.mark.parametrize(
    ("field", "value"),
    [(f, v) for f in ("start", "target", "current") for v in BAD_NUMBERS]
    + [("start", None), ("target", None)],
)
def test_metric_values_must_be_finite_numbers(field, value):
    objective = draft()
    with pytest.raises(InvalidInput) as caught:
        objective.add_key_result(title="KR", actor="bailu", **{field: value})
    assert caught.value.field == field
    assert objective.key_results == {}


def test_start_equal_to_target_is_refused():
    objective = draft()
    with pytest.raises(InvalidInput) as caught:
        objective.add_key_result(title="KR", start=50, target=50, actor="bailu")
    assert caught.value.field == "target"


@pytest.mark.parametrize("label", [None, "", "RMB1", "CN", "12$", "C N"])
def test_currency_needs_an_iso_4217_code(label):
    objective = draft()
    with pytest.raises(InvalidInput) as caught:
        objective.add_key_result(
            title="营收", unit="currency", unit_label=label, target=1_000_000, actor="bailu"
        )
    assert caught.value.field == "unit_label"
    assert objective.key_results == {}


@pytest.mark.parametrize("label", ["人民币", "ÄBC", "ｃｎｙ"])
def test_currency_code_must_be_three_latin_letters_not_any_three_letters(label):
    # ISO 4217 codes are three letters A-Z; 人民币 is the currency's name, not its code.
    objective = draft()
    with pytest.raises(InvalidInput) as caught:
        objective.add_key_result(
            title="营收", unit="currency", unit_label=label, target=1_000_000, actor="bailu"
        )
    assert caught.value.field == "unit_label"
    assert objective.key_results == {}


def test_currency_code_is_stored_in_capitals():
    objective = draft()
    kr_id = objective.add_key_result(
        title="营收", unit="currency", unit_label="cny", target=1_000_000, actor="bailu"
    )
    assert objective.key_results[kr_id].unit_label == "CNY"


@pytest.mark.parametrize("label", [None, "", "   "])
def test_custom_unit_needs_a_label(label):
    objective = draft()
    with pytest.raises(InvalidInput) as caught:
        objective.add_key_result(
            title="培训", unit="custom", unit_label=label, target=12, actor="bailu"
        )
    assert caught.value.field == "unit_label"


def test_percent_unit_needs_no_label():
    objective = draft()
    kr_id = objective.add_key_result(title="满意度", unit="percent", target=95, actor="bailu")
    assert objective.key_results[kr_id].unit == "percent"


@pytest.mark.parametrize(("field", "value"), [("kind", "okr"), ("unit", "hours")])
def test_unknown_kind_or_unit_is_refused(field, value):
    objective = draft()
    with pytest.raises(InvalidInput) as caught:
        objective.add_key_result(title="KR", actor="bailu", **{field: value})
    assert caught.value.field == field


@pytest.mark.parametrize("weight", [0, -2, math.nan, math.inf])
def test_key_result_weight_must_be_positive(weight):
    objective = draft()
    with pytest.raises(InvalidInput) as caught:
        objective.add_key_result(title="KR", weight=weight, actor="bailu")
    assert caught.value.field == "weight"


@pytest.mark.parametrize("title", ["", "  "])
def test_key_result_title_must_not_be_blank(title):
    objective = draft()
    with pytest.raises(InvalidInput) as caught:
        objective.add_key_result(title=title, actor="bailu")
    assert caught.value.field == "title"


def test_boolean_key_result_starts_not_done_or_done_only():
    objective = draft()
    with pytest.raises(InvalidInput) as caught:
        objective.add_key_result(title="上线", kind="boolean", current=0.5, actor="bailu")
    assert caught.value.field == "current"
    done = objective.add_key_result(title="上线", kind="boolean", current=1, actor="bailu")
    assert objective.key_results[done].progress == 1.0


def test_duplicate_key_result_id_is_a_conflict():
    objective = draft()
    objective.add_key_result(title="KR", kr_id="kr-1", actor="bailu")
    with pytest.raises(Conflict) as caught:
        objective.add_key_result(title="KR again", kr_id="kr-1", actor="bailu")
    assert caught.value.code == "conflict"
    assert caught.value.field == "id"
    assert objective.key_results["kr-1"].title == "KR"


@pytest.mark.parametrize("status", ["draft", "pending_approval", "active"])
def test_key_results_can_be_added_while_editable(status):
    objective, _ = in_state(status)
    objective.add_key_result(title="新KR", actor="bailu")
    assert len(objective.active_key_results) == 2


@pytest.mark.parametrize("status", ["scoring", "scored", "closed", "cancelled"])
def test_key_results_cannot_be_added_after_active_without_a_late_update(status):
    objective, _ = in_state(status)
    with pytest.raises(IllegalTransition) as caught:
        objective.add_key_result(title="新KR", actor="bailu")
    assert caught.value.field == "status"
    assert len(objective.key_results) == 1


@pytest.mark.parametrize("status", ["scoring", "scored", "closed"])
def test_late_key_result_is_recorded_as_late(status):
    objective, _ = in_state(status)
    objective.collect_events()
    objective.add_key_result(title="补录KR", actor="root", late=True)
    (e,) = objective.collect_events()
    assert type(e).__name__ == "KeyResultAdded"
    assert e.late is True


def test_cancelled_objective_takes_no_late_updates():
    objective, kr_id = in_state("cancelled")
    with pytest.raises(IllegalTransition):
        objective.add_key_result(title="补录KR", actor="root", late=True)
    with pytest.raises(IllegalTransition):
        objective.edit({"title": "新标题"}, actor="root", late=True)
    with pytest.raises(IllegalTransition):
        objective.change_target(kr_id, 200, reason="调整", actor="root", late=True)


# ---- removing key results --------------------------------------------------------------------


def test_removed_key_result_stays_in_history_but_is_inactive():
    objective, kr_id = in_state("active")
    objective.collect_events()
    objective.remove_key_result(kr_id, reason=" 不再适用 ", actor="bailu")
    (e,) = objective.collect_events()
    assert type(e).__name__ == "KeyResultRemoved"
    assert e.reason == "不再适用"
    assert objective.key_results[kr_id].active is False
    assert objective.active_key_results == []


def test_removing_an_unknown_or_removed_key_result_is_not_found():
    objective, kr_id = in_state("active")
    with pytest.raises(NotFound):
        objective.remove_key_result("nope", reason="x", actor="bailu")
    objective.remove_key_result(kr_id, reason="x", actor="bailu")
    with pytest.raises(NotFound):
        objective.remove_key_result(kr_id, reason="x", actor="bailu")


@pytest.mark.parametrize("status", ["scoring", "scored", "closed", "cancelled"])
def test_key_results_cannot_be_removed_after_active(status):
    objective, kr_id = in_state(status)
    with pytest.raises(IllegalTransition):
        objective.remove_key_result(kr_id, reason="x", actor="bailu")
    assert objective.key_results[kr_id].active is True
