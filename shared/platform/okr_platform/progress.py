"""Progress and pace (docs/domain.md#progress): pure formulas every context computes alike.

Goals rolls key results up into objectives with them; the notifier recomputes the same from
goals' events and warns about objectives behind pace; boards and reports show expected progress.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def metric_progress(start: float, target: float, current: float) -> float:
    """clamp((current - start) / (target - start), 0, 1). Decreasing KRs (start > target)
    work unchanged because numerator and denominator change sign together."""
    span = target - start
    if span == 0:
        # Degenerate KR (start == target): done once current reaches the target.
        return 1.0 if current == target else 0.0
    return clamp((current - start) / span)


def weighted_progress(items: Iterable[tuple[float, float]]) -> float:
    """sum(w_i * p_i) / sum(w_i) over (weight, progress) pairs; weights need not sum to 1."""
    total_weight = 0.0
    total = 0.0
    for weight, progress in items:
        total_weight += weight
        total += weight * progress
    return total / total_weight if total_weight > 0 else 0.0


def cycle_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """A cycle runs from the start date's first instant to the end date's last (UTC)."""
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end, time.max, tzinfo=UTC),
    )


def expected_progress(start: date, end: date, now: datetime) -> float:
    """Elapsed fraction of the cycle at `now`, clamped to [0, 1]."""
    begin, finish = cycle_bounds(start, end)
    span = (finish - begin).total_seconds()
    return clamp((now - begin).total_seconds() / span) if span > 0 else 1.0


def is_behind(progress: float, expected: float, threshold: float) -> bool:
    """Behind pace when progress < expected x threshold (org setting, default 0.7)."""
    return progress < expected * threshold
