"""Objectives and key results (DOMAIN §3): lifecycle, check-ins, changes and input rules.

Pure domain tests on the aggregate: no HTTP, no database.
"""

from __future__ import annotations

import math
import uuid
from datetime import date

import pytest
from okr_goals.application import GoalsApplication
from okr_goals.domain.objective import Objective
from okr_platform.errors import (
    Conflict,
    DomainError,
    IllegalTransition,
    InvalidInput,
    NotFound,
)

TITLE = "建立高效专业的客户支持团队"


def draft(**fields) -> Objective:
    values = {
        "org_id": uuid.uuid4(),
        "cycle_id": uuid.uuid4(),
        "title": TITLE,
        "owner_id": "bailu",
        "actor": "bailu",
    } | fields
    return Objective.draft(**values)


def with_kr(**kr) -> tuple[Objective, str]:
    objective = draft()
    fields = {"title": "获取100家客户的5星好评", "start": 0, "target": 100} | kr
    return objective, objective.add_key_result(actor="bailu", **fields)


def in_state(status: str) -> tuple[Objective, str]:
    """An objective with one metric KR (0 -> 100), driven to the given status."""
    objective, kr_id = with_kr()
    steps = {
        "draft": [],
        "pending_approval": [lambda o: o.submit(approval_required=True, actor="bailu")],
        "active": [lambda o: o.submit(approval_required=False, actor="bailu")],
    }
    steps["scoring"] = [*steps["active"], lambda o: o.start_scoring(actor="boss")]
    steps["scored"] = [*steps["scoring"], lambda o: o.mark_scored(70, actor="boss")]
    steps["closed"] = [*steps["scored"], lambda o: o.close(actor="boss")]
    steps["cancelled"] = [lambda o: o.cancel("方向调整", actor="bailu")]
    for step in steps[status]:
        step(objective)
    assert objective.status == status
    return objective, kr_id


def event_names(objective: Objective) -> list[str]:
    return [type(e).__name__ for e in objective.collect_events()]


def replay(objective: Objective) -> Objective:
    copy = None
    for e in objective.collect_events():
        copy = e.mutate(copy)
    assert copy is not None
    return copy


ALL_STATES = ("draft", "pending_approval", "active", "scoring", "scored", "closed", "cancelled")


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
