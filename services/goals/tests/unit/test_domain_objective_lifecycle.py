"""Objectives and key results (docs/domain.md#objectives).

The lifecycle: approval, scoring and closing, cancelling.

Pure domain tests on the aggregate: no HTTP, no database.
"""

from __future__ import annotations

import math

import pytest
from objective_kit import ALL_STATES, draft, event_names, in_state, with_kr
from okr_platform.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
)

# ---- lifecycle: approval ---------------------------------------------------------------------


def test_submitting_with_approval_on_awaits_approval():
    objective, _ = with_kr()
    objective.collect_events()
    objective.submit(approval_required=True, actor="bailu")
    assert objective.status == "pending_approval"
    assert event_names(objective) == ["ObjectiveSubmittedForApproval"]


def test_approval_activates_the_objective():
    objective, _ = in_state("pending_approval")
    objective.collect_events()
    objective.approve(actor="boss")
    assert objective.status == "active"
    assert event_names(objective) == ["ObjectiveApproved"]


def test_submitting_with_approval_off_activates_directly():
    objective, _ = with_kr()
    objective.collect_events()
    objective.submit(approval_required=False, actor="bailu")
    assert objective.status == "active"
    events = objective.collect_events()
    assert [type(e).__name__ for e in events] == ["ObjectiveActivated"]
    assert events[0].reason == "approval_not_required"


def test_rejection_returns_to_draft_keeping_the_reason():
    objective, _ = in_state("pending_approval")
    objective.collect_events()
    objective.reject("  关键结果不够具体  ", actor="boss")
    assert objective.status == "draft"
    assert objective.rejection_reason == "关键结果不够具体"
    events = objective.collect_events()
    assert [type(e).__name__ for e in events] == ["ObjectiveRejected"]
    assert events[0].reason == "关键结果不够具体"
    assert events[0].actor == "boss"


def test_rejected_objective_can_be_reworked_and_resubmitted():
    objective, _ = in_state("pending_approval")
    objective.reject("关键结果不够具体", actor="boss")
    objective.add_key_result(title="客户满意度达到95%", unit="percent", target=95, actor="bailu")
    objective.submit(approval_required=True, actor="bailu")
    assert objective.status == "pending_approval"
    objective.approve(actor="boss")
    assert objective.status == "active"


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_rejection_needs_a_reason(reason):
    objective, _ = in_state("pending_approval")
    with pytest.raises(InvalidInput) as caught:
        objective.reject(reason, actor="boss")
    assert caught.value.field == "reason"
    assert objective.status == "pending_approval"


def test_submitting_without_key_results_is_refused():
    objective = draft()
    with pytest.raises(Conflict) as caught:
        objective.submit(approval_required=True, actor="bailu")
    assert caught.value.code == "no_key_results"
    assert caught.value.field == "key_results"
    assert objective.status == "draft"


def test_submitting_with_only_removed_key_results_is_refused():
    objective, kr_id = with_kr()
    objective.remove_key_result(kr_id, reason="重写", actor="bailu")
    with pytest.raises(Conflict) as caught:
        objective.submit(approval_required=False, actor="bailu")
    assert caught.value.code == "no_key_results"


@pytest.mark.parametrize("status", [s for s in ALL_STATES if s != "draft"])
def test_only_drafts_can_be_submitted(status):
    objective, _ = in_state(status)
    with pytest.raises(IllegalTransition) as caught:
        objective.submit(approval_required=False, actor="bailu")
    assert caught.value.code == "illegal_transition"
    assert caught.value.field == "status"
    assert objective.status == status


@pytest.mark.parametrize("status", [s for s in ALL_STATES if s != "pending_approval"])
def test_only_pending_objectives_can_be_approved(status):
    objective, _ = in_state(status)
    with pytest.raises(IllegalTransition) as caught:
        objective.approve(actor="boss")
    assert caught.value.code == "illegal_transition"
    assert objective.status == status


@pytest.mark.parametrize("status", [s for s in ALL_STATES if s != "pending_approval"])
def test_only_pending_objectives_can_be_rejected(status):
    objective, _ = in_state(status)
    with pytest.raises(IllegalTransition) as caught:
        objective.reject("不行", actor="boss")
    assert caught.value.code == "illegal_transition"
    assert objective.status == status


# ---- lifecycle: scoring and closing ----------------------------------------------------------


def test_scoring_then_scored_then_closed():
    objective, _ = in_state("active")
    objective.collect_events()
    objective.start_scoring(actor="boss")
    assert objective.status == "scoring"
    objective.mark_scored(70, actor="boss")
    assert objective.status == "scored"
    assert objective.score == 70.0
    objective.close(actor="boss")
    assert objective.status == "closed"
    assert event_names(objective) == [
        "ObjectiveScoringStarted",
        "ObjectiveScored",
        "ObjectiveClosed",
    ]


@pytest.mark.parametrize("status", [s for s in ALL_STATES if s != "active"])
def test_only_active_objectives_start_scoring(status):
    objective, _ = in_state(status)
    with pytest.raises(IllegalTransition) as caught:
        objective.start_scoring(actor="boss")
    assert caught.value.code == "illegal_transition"
    assert objective.status == status


@pytest.mark.parametrize("status", [s for s in ALL_STATES if s != "scoring"])
def test_only_objectives_in_scoring_can_be_scored(status):
    objective, _ = in_state(status)
    with pytest.raises(IllegalTransition):
        objective.mark_scored(70, actor="boss")
    assert objective.status == status


@pytest.mark.parametrize("status", [s for s in ALL_STATES if s != "scored"])
def test_only_scored_objectives_can_be_closed(status):
    objective, _ = in_state(status)
    with pytest.raises(IllegalTransition):
        objective.close(actor="boss")
    assert objective.status == status


@pytest.mark.parametrize("score", [0, 30, 70, 100, 42.5])
def test_scores_on_the_0_to_100_scale_are_kept(score):
    objective, _ = in_state("scoring")
    objective.mark_scored(score, actor="boss")
    assert objective.score == float(score)


@pytest.mark.parametrize("score", [-1, 100.5, math.nan, math.inf, True])
def test_scores_outside_the_scale_are_refused(score):
    objective, _ = in_state("scoring")
    with pytest.raises(InvalidInput) as caught:
        objective.mark_scored(score, actor="boss")
    assert caught.value.field == "score"
    assert objective.status == "scoring"


# ---- lifecycle: cancelling -------------------------------------------------------------------


@pytest.mark.parametrize("status", ["draft", "pending_approval", "active", "scoring", "scored"])
def test_cancel_from_each_open_state(status):
    objective, _ = in_state(status)
    objective.cancel("  公司战略调整  ", actor="admin")
    assert objective.status == "cancelled"
    assert objective.cancel_reason == "公司战略调整"


@pytest.mark.parametrize("status", ["closed", "cancelled"])
def test_cancel_is_refused_once_closed_or_cancelled(status):
    objective, _ = in_state(status)
    with pytest.raises(IllegalTransition) as caught:
        objective.cancel("再取消一次", actor="admin")
    assert caught.value.code == "illegal_transition"
    assert caught.value.field == "status"
    assert objective.status == status
