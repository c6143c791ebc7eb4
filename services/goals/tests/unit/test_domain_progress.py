"""Progress formulas (DOMAIN §3): KR progress, objective roll-up, confidence, pace.

Pure domain tests: no HTTP, no database.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from okr_goals.domain.objective import Objective
from okr_goals.domain.progress import (
    clamp,
    cycle_bounds,
    expected_progress,
    is_behind,
    metric_progress,
    weighted_progress,
)

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


def test_increasing_metric_progress_is_the_share_of_the_way_from_start_to_target():
    assert metric_progress(0, 100, 60) == pytest.approx(0.6)
    assert metric_progress(20, 120, 70) == pytest.approx(0.5)


def test_seed_board_values_give_the_seed_percentages():
    # 60位(60%) and 12次(3.3%) from the seed board.
    assert metric_progress(0, 100, 60) == pytest.approx(0.60)
    assert round(metric_progress(0, 360, 12) * 100, 1) == 3.3


def test_decreasing_key_result_progress_counts_down():
    # Reduce churn from 10% to 4%: at 7% we are half way there.
    assert metric_progress(10, 4, 7) == pytest.approx(0.5)
    assert metric_progress(10, 4, 10) == 0.0
    assert metric_progress(10, 4, 4) == 1.0


def test_decreasing_key_result_moving_the_wrong_way_stays_at_zero():
    assert metric_progress(10, 4, 12) == 0.0


def test_decreasing_key_result_overshooting_the_target_is_capped_at_one():
    assert metric_progress(10, 4, 1) == 1.0


def test_progress_below_start_is_clamped_to_zero():
    assert metric_progress(0, 100, -30) == 0.0


def test_progress_beyond_target_is_clamped_to_one():
    assert metric_progress(0, 100, 250) == 1.0


def test_negative_ranges_work_like_any_other():
    assert metric_progress(-50, 50, 0) == pytest.approx(0.5)


def test_degenerate_metric_is_done_only_at_its_target():
    assert metric_progress(5, 5, 5) == 1.0
    assert metric_progress(5, 5, 4) == 0.0


def test_clamp_limits_to_the_unit_interval_by_default():
    assert clamp(-0.1) == 0.0
    assert clamp(1.7) == 1.0
    assert clamp(0.42) == 0.42
    assert clamp(7, 0, 5) == 5


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


def test_weighted_progress_is_the_normalised_weighted_mean():
    assert weighted_progress([(1, 1.0), (3, 0.0)]) == pytest.approx(0.25)


def test_weights_need_not_sum_to_one():
    assert weighted_progress([(2, 0.5), (2, 1.0)]) == pytest.approx(0.75)
    assert weighted_progress([(20, 0.5), (20, 1.0)]) == pytest.approx(0.75)
    assert weighted_progress([(0.2, 0.5), (0.2, 1.0)]) == pytest.approx(0.75)


def test_weighted_progress_of_nothing_is_zero():
    assert weighted_progress([]) == 0.0


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


# ---- expected progress (pace) --------------------------------------------------------------


def test_cycle_runs_from_first_instant_of_start_to_last_instant_of_end_in_utc():
    begin, finish = cycle_bounds(Q4_START, Q4_END)
    assert begin == datetime(2026, 10, 1, tzinfo=UTC)
    assert finish == datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_expected_progress_is_the_elapsed_fraction_of_the_cycle():
    start, end = date(2026, 1, 1), date(2026, 1, 10)  # ten days
    now = datetime(2026, 1, 6, tzinfo=UTC)  # five days elapsed
    assert expected_progress(start, end, now) == pytest.approx(0.5, abs=1e-6)


def test_expected_progress_is_zero_at_the_start():
    assert expected_progress(Q4_START, Q4_END, datetime(2026, 10, 1, tzinfo=UTC)) == 0.0


def test_expected_progress_is_clamped_to_zero_before_the_cycle_starts():
    before = datetime(2026, 9, 1, tzinfo=UTC)
    assert expected_progress(Q4_START, Q4_END, before) == 0.0


def test_expected_progress_is_clamped_to_one_after_the_cycle_ends():
    after = datetime(2027, 3, 1, tzinfo=UTC)
    assert expected_progress(Q4_START, Q4_END, after) == 1.0


def test_expected_progress_reaches_one_at_the_end_of_the_last_day():
    end_of_cycle = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert expected_progress(Q4_START, Q4_END, end_of_cycle) == 1.0


def test_expected_progress_grows_through_the_cycle():
    samples = [
        expected_progress(Q4_START, Q4_END, datetime(2026, month, 15, tzinfo=UTC))
        for month in (10, 11, 12)
    ]
    assert 0 < samples[0] < samples[1] < samples[2] < 1


def test_expected_progress_respects_the_callers_time_zone():
    beijing = timezone(timedelta(hours=8))
    # 08:00 in Beijing on the first day is the cycle's first instant in UTC.
    assert expected_progress(Q4_START, Q4_END, datetime(2026, 10, 1, 8, tzinfo=beijing)) == 0.0
    start, end = date(2026, 1, 1), date(2026, 1, 10)
    noon_day_six_beijing = datetime(2026, 1, 6, 8, tzinfo=beijing)
    assert expected_progress(start, end, noon_day_six_beijing) == pytest.approx(0.5, abs=1e-6)


def test_one_day_cycle_has_a_pace_too():
    day = date(2026, 10, 1)
    assert expected_progress(day, day, datetime(2026, 10, 1, 12, tzinfo=UTC)) == pytest.approx(
        0.5, abs=1e-6
    )


# ---- behind pace ---------------------------------------------------------------------------


def test_behind_when_progress_is_below_expected_times_threshold():
    assert is_behind(0.69, 1.0, 0.7) is True


def test_not_behind_exactly_at_the_threshold():
    assert is_behind(0.7, 1.0, 0.7) is False


def test_not_behind_when_ahead_of_pace():
    assert is_behind(0.4, 0.5, 0.7) is False


def test_behind_half_way_through_with_little_progress():
    assert is_behind(0.3, 0.5, 0.7) is True


def test_nothing_is_behind_before_the_cycle_starts():
    expected = expected_progress(Q4_START, Q4_END, datetime(2026, 9, 1, tzinfo=UTC))
    assert is_behind(0.0, expected, 0.7) is False


def test_a_stricter_threshold_flags_more():
    assert is_behind(0.45, 0.5, 0.7) is False
    assert is_behind(0.45, 0.5, 1.0) is True


def test_objective_behind_pace_from_its_own_progress():
    objective, _ = active({"title": "KR", "start": 0, "target": 100, "current": 20})
    half_way = expected_progress(
        date(2026, 1, 1), date(2026, 1, 10), datetime(2026, 1, 6, tzinfo=UTC)
    )
    assert is_behind(objective.progress, half_way, 0.7) is True
    objective.check_in(next(iter(objective.key_results)), current=40, actor="bailu")
    assert is_behind(objective.progress, half_way, 0.7) is False
