"""Progress and pace formulas (docs/domain.md#progress): okr_platform.progress, pure.

Every context computes KR progress, objective roll-up, expected progress and "behind pace"
with these; the goals domain's own tests check that the aggregates apply them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from okr_platform.progress import (
    clamp,
    cycle_bounds,
    expected_progress,
    is_behind,
    metric_progress,
    weighted_progress,
)

Q4_START = date(2026, 10, 1)
Q4_END = date(2026, 12, 31)


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


# ---- objective progress ------------------------------------------------------------------


def test_weighted_progress_is_the_normalised_weighted_mean():
    assert weighted_progress([(1, 1.0), (3, 0.0)]) == pytest.approx(0.25)


def test_weights_need_not_sum_to_one():
    assert weighted_progress([(2, 0.5), (2, 1.0)]) == pytest.approx(0.75)
    assert weighted_progress([(20, 0.5), (20, 1.0)]) == pytest.approx(0.75)
    assert weighted_progress([(0.2, 0.5), (0.2, 1.0)]) == pytest.approx(0.75)


def test_weighted_progress_of_nothing_is_zero():
    assert weighted_progress([]) == 0.0


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
