"""Progress in the objective aggregate (docs/domain.md#progress): KR progress, roll-up,
confidence, pace. The formulas alone: shared/platform/tests/test_progress.py.

Pure domain tests: no HTTP, no database.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from okr_goals.domain.objective import Objective
from okr_platform.progress import expected_progress, is_behind

Q4_START = date(2026, 10, 1)
Q4_END = date(2026, 12, 31)


def draft(**fields) -> Objective:
    values = {
        "org_id": uuid.uuid4(),
        "cycle_id": uuid.uuid4(),
        "title": "建立高效专业的客户支持团队",
        "owner_id": "bailu",
        "actor": "bailu",
    } | fields
    return Objective.draft(**values)


def active(*krs: dict) -> tuple[Objective, list[str]]:
    objective = draft()
    ids = [objective.add_key_result(actor="bailu", **kr) for kr in krs]
    objective.submit(approval_required=False, actor="bailu")
    return objective, ids


# ---- KR progress ---------------------------------------------------------------------------


def test_key_result_progress_property_uses_the_formula():
    objective = draft()
    kr_id = objective.add_key_result(
        title="获取100家客户的5星好评",
        unit="custom",
        unit_label="家",
        start=0,
        target=100,
        current=60,
        actor="bailu",
    )
    assert objective.key_results[kr_id].progress == pytest.approx(0.6)


def test_decreasing_key_result_is_flagged_as_decreasing():
    objective = draft()
    down = objective.add_key_result(title="客户流失率", start=10, target=4, actor="bailu")
    up = objective.add_key_result(title="续约客户", start=0, target=30, actor="bailu")
    assert objective.key_results[down].decreasing is True
    assert objective.key_results[up].decreasing is False
    assert objective.key_results[down].progress == 0.0


def test_boolean_key_result_is_zero_until_done_then_one():
    objective, (kr_id,) = active({"title": "上线客户支持知识库", "kind": "boolean"})
    kr = objective.key_results[kr_id]
    assert (kr.start, kr.target, kr.current) == (0.0, 1.0, 0.0)
    assert kr.progress == 0.0
    objective.check_in(kr_id, current=1, actor="bailu")
    assert objective.key_results[kr_id].progress == 1.0


def test_boolean_key_result_ignores_metric_fields_given_to_it():
    objective = draft()
    kr_id = objective.add_key_result(
        title="完成招聘",
        kind="boolean",
        unit="custom",
        unit_label="位",
        start=5,
        target=9,
        actor="bailu",
    )
    kr = objective.key_results[kr_id]
    assert (kr.unit, kr.unit_label, kr.start, kr.target) == ("number", None, 0.0, 1.0)
    assert kr.decreasing is False


# ---- objective progress ------------------------------------------------------------------


def test_objective_progress_is_the_weighted_mean_of_its_key_results():
    objective, _ = active(
        {"title": "KR1", "start": 0, "target": 100, "current": 60, "weight": 3},
        {"title": "KR2", "start": 0, "target": 10, "current": 2, "weight": 1},
    )
    # (3 * 0.6 + 1 * 0.2) / 4 = 0.5
    assert objective.progress == pytest.approx(0.5)


def test_equal_default_weights_give_the_plain_mean():
    objective, _ = active(
        {"title": "KR1", "start": 0, "target": 100, "current": 80},
        {"title": "KR2", "kind": "boolean"},
    )
    assert objective.progress == pytest.approx(0.4)


def test_objective_progress_mixes_decreasing_and_boolean_key_results():
    objective, (down, done) = active(
        {"title": "平均响应时长(小时)", "start": 24, "target": 4, "current": 14, "weight": 1},
        {"title": "上线知识库", "kind": "boolean", "weight": 1},
    )
    assert objective.key_results[down].progress == pytest.approx(0.5)
    assert objective.progress == pytest.approx(0.25)
    objective.check_in(done, current=1, actor="bailu")
    assert objective.progress == pytest.approx(0.75)


def test_removed_key_results_are_left_out_of_objective_progress():
    objective, (kept, removed) = active(
        {"title": "KR1", "start": 0, "target": 100, "current": 50},
        {"title": "KR2", "start": 0, "target": 100, "current": 0, "weight": 5},
    )
    assert objective.progress == pytest.approx(50 / 600)
    objective.remove_key_result(removed, reason="不再适用", actor="bailu")
    assert objective.progress == pytest.approx(0.5)
    assert [kr.id for kr in objective.active_key_results] == [kept]


def test_objective_without_key_results_has_zero_progress():
    assert draft().progress == 0.0


def test_overachieving_one_key_result_does_not_lift_the_objective_above_one():
    objective, _ = active(
        {"title": "KR1", "start": 0, "target": 10, "current": 1000},
        {"title": "KR2", "start": 0, "target": 10, "current": 10},
    )
    assert objective.progress == 1.0


# ---- confidence ----------------------------------------------------------------------------


def test_objective_confidence_is_the_lowest_key_result_confidence():
    objective, (a, b, c) = active({"title": "A"}, {"title": "B"}, {"title": "C"})
    objective.check_in(a, confidence=4, actor="bailu")
    objective.check_in(b, confidence=2, actor="bailu")
    objective.check_in(c, confidence=5, actor="bailu")
    assert objective.confidence == 2


def test_unrated_key_results_do_not_count_towards_confidence():
    objective, (a, _b) = active({"title": "A"}, {"title": "B"})
    assert objective.confidence is None
    objective.check_in(a, confidence=3, actor="bailu")
    assert objective.confidence == 3


def test_removed_key_result_confidence_no_longer_counts():
    objective, (a, b) = active({"title": "A"}, {"title": "B"})
    objective.check_in(a, confidence=4, actor="bailu")
    objective.check_in(b, confidence=1, actor="bailu")
    objective.remove_key_result(b, reason="合并到A", actor="bailu")
    assert objective.confidence == 4


# ---- behind pace ---------------------------------------------------------------------------


def test_objective_behind_pace_from_its_own_progress():
    objective, _ = active({"title": "KR", "start": 0, "target": 100, "current": 20})
    half_way = expected_progress(
        date(2026, 1, 1), date(2026, 1, 10), datetime(2026, 1, 6, tzinfo=UTC)
    )
    assert is_behind(objective.progress, half_way, 0.7) is True
    objective.check_in(next(iter(objective.key_results)), current=40, actor="bailu")
    assert is_behind(objective.progress, half_way, 0.7) is False
