"""Objectives and key results (docs/domain.md#objectives).

Check-ins: values, confidence, risk, late check-ins and input rules.

Pure domain tests on the aggregate: no HTTP, no database.
"""

from __future__ import annotations

import math

import pytest
from objective_kit import draft, in_state, with_kr
from okr_platform.errors import (
    DomainError,
    IllegalTransition,
    InvalidInput,
    NotFound,
)

# ---- check-ins -------------------------------------------------------------------------------


def test_check_in_keeps_values_before_and_after():
    objective, kr_id = in_state("active")
    objective.check_in(kr_id, current=20, confidence=4, actor="bailu")
    objective.collect_events()
    check_in_id = objective.check_in(
        kr_id,
        current=60,
        confidence=3,
        risk="at_risk",
        note="新增30家",
        source="report",
        actor="bailu",
    )
    (e,) = objective.collect_events()
    assert type(e).__name__ == "KRProgressUpdated"
    assert e.check_in_id == check_in_id
    assert e.before == {"current": 20.0, "progress": 0.2, "confidence": 4, "risk": "normal"}
    assert e.after["current"] == 60.0
    assert e.after["progress"] == pytest.approx(0.6)
    assert e.after["confidence"] == 3
    assert e.after["risk"] == "at_risk"
    assert (e.note, e.source, e.actor, e.late) == ("新增30家", "report", "bailu", False)


def test_check_in_keeps_objective_progress_before_and_after():
    objective = draft()
    a = objective.add_key_result(title="A", start=0, target=100, current=50, actor="bailu")
    objective.add_key_result(title="B", start=0, target=10, current=0, weight=3, actor="bailu")
    objective.submit(approval_required=False, actor="bailu")
    objective.collect_events()
    objective.check_in(a, current=100, actor="bailu")
    (e,) = objective.collect_events()
    assert e.objective_progress_before == pytest.approx(0.125)
    assert e.objective_progress_after == pytest.approx(0.25)
    assert objective.progress == pytest.approx(0.25)


def test_check_in_updates_the_key_result():
    objective, kr_id = in_state("active")
    objective.check_in(kr_id, current=45, confidence=2, risk="delayed", actor="bailu")
    kr = objective.key_results[kr_id]
    assert (kr.current, kr.confidence, kr.risk, kr.check_ins) == (45.0, 2, "delayed", 1)


def test_confidence_only_check_in_leaves_the_value_alone():
    objective, kr_id = in_state("active")
    objective.check_in(kr_id, current=30, actor="bailu")
    objective.collect_events()
    objective.check_in(kr_id, confidence=5, actor="bailu")
    (e,) = objective.collect_events()
    assert e.before["current"] == e.after["current"] == 30.0
    assert e.objective_progress_before == e.objective_progress_after == pytest.approx(0.3)
    assert objective.key_results[kr_id].confidence == 5


def test_risk_only_check_in_keeps_the_confidence():
    objective, kr_id = in_state("active")
    objective.check_in(kr_id, confidence=4, actor="bailu")
    objective.check_in(kr_id, risk="at_risk", actor="bailu")
    kr = objective.key_results[kr_id]
    assert (kr.confidence, kr.risk, kr.check_ins) == (4, "at_risk", 2)


def test_check_in_changing_nothing_is_refused():
    objective, kr_id = in_state("active")
    with pytest.raises(InvalidInput) as caught:
        objective.check_in(kr_id, note="只是看看", actor="bailu")
    assert caught.value.field == "current"


def test_decreasing_key_result_check_in_counts_down():
    objective, kr_id = with_kr(title="平均响应时长", start=24, target=4)
    objective.submit(approval_required=False, actor="bailu")
    objective.collect_events()
    objective.check_in(kr_id, current=9, actor="bailu")
    (e,) = objective.collect_events()
    assert e.before["progress"] == 0.0
    assert e.after["progress"] == pytest.approx(0.75)


@pytest.mark.parametrize("status", ["draft", "pending_approval", "scoring", "scored", "closed"])
def test_check_in_needs_an_active_objective(status):
    objective, kr_id = in_state(status)
    with pytest.raises(IllegalTransition) as caught:
        objective.check_in(kr_id, current=10, actor="bailu")
    assert caught.value.code == "illegal_transition"
    assert caught.value.field == "status"
    assert objective.key_results[kr_id].current == 0.0


@pytest.mark.parametrize("status", ["scoring", "scored", "closed"])
def test_late_check_in_is_allowed_after_active_and_recorded_as_late(status):
    objective, kr_id = in_state(status)
    objective.collect_events()
    objective.check_in(kr_id, current=90, actor="root", late=True)
    (e,) = objective.collect_events()
    assert e.late is True
    assert objective.key_results[kr_id].current == 90.0
    assert objective.status == status


@pytest.mark.parametrize("status", ["draft", "pending_approval", "cancelled"])
def test_late_check_in_is_refused_before_activation_and_after_cancellation(status):
    objective, kr_id = in_state(status)
    with pytest.raises(IllegalTransition):
        objective.check_in(kr_id, current=90, actor="root", late=True)


def test_check_in_on_an_unknown_key_result_is_not_found():
    objective, _ = in_state("active")
    with pytest.raises(NotFound) as caught:
        objective.check_in("nope", current=1, actor="bailu")
    assert caught.value.field == "kr_id"


def test_check_in_on_a_removed_key_result_is_not_found():
    objective = draft()
    objective.add_key_result(title="A", actor="bailu")
    b = objective.add_key_result(title="B", actor="bailu")
    objective.submit(approval_required=False, actor="bailu")
    objective.remove_key_result(b, reason="重复", actor="bailu")
    with pytest.raises(NotFound):
        objective.check_in(b, current=1, actor="bailu")


@pytest.mark.parametrize("current", [math.nan, math.inf, -math.inf, "12", True])
def test_check_in_value_must_be_a_finite_number(current):
    objective, kr_id = in_state("active")
    with pytest.raises(InvalidInput) as caught:
        objective.check_in(kr_id, current=current, actor="bailu")
    assert caught.value.field == "current"


@pytest.mark.parametrize("confidence", [0, 6, -1, 2.5, True, False, "3"])
def test_confidence_outside_one_to_five_stars_is_refused(confidence):
    objective, kr_id = in_state("active")
    with pytest.raises(InvalidInput) as caught:
        objective.check_in(kr_id, confidence=confidence, actor="bailu")
    assert caught.value.field == "confidence"
    assert objective.key_results[kr_id].confidence is None


@pytest.mark.parametrize("confidence", [1, 2, 3, 4, 5])
def test_every_star_rating_is_accepted(confidence):
    objective, kr_id = in_state("active")
    objective.check_in(kr_id, confidence=confidence, actor="bailu")
    assert objective.confidence == confidence


def test_unknown_risk_is_refused():
    objective, kr_id = in_state("active")
    with pytest.raises(InvalidInput) as caught:
        objective.check_in(kr_id, risk="on_fire", actor="bailu")
    assert caught.value.field == "risk"


@pytest.mark.parametrize("source", ["manual", "report", "task", "api"])
def test_every_check_in_source_is_accepted(source):
    objective, kr_id = in_state("active")
    objective.collect_events()
    objective.check_in(kr_id, current=1, source=source, actor="bailu")
    (e,) = objective.collect_events()
    assert e.source == source


def test_unknown_check_in_source_is_refused():
    objective, kr_id = in_state("active")
    with pytest.raises(InvalidInput) as caught:
        objective.check_in(kr_id, current=1, source="email", actor="bailu")
    assert caught.value.field == "source"


@pytest.mark.parametrize("current", [0.5, 2, -1])
def test_boolean_check_in_is_zero_or_one(current):
    objective = draft()
    kr_id = objective.add_key_result(title="上线知识库", kind="boolean", actor="bailu")
    objective.submit(approval_required=False, actor="bailu")
    with pytest.raises(InvalidInput) as caught:
        objective.check_in(kr_id, current=current, actor="bailu")
    assert caught.value.field == "current"


def test_refused_check_in_records_nothing():
    objective, kr_id = in_state("active")
    objective.collect_events()
    version = objective.version
    with pytest.raises(DomainError):
        objective.check_in(kr_id, current=10, confidence=9, actor="bailu")
    assert objective.version == version
    assert objective.collect_events() == []
    assert objective.key_results[kr_id].current == 0.0
