"""Progress and pace (DOMAIN §3), as the goals context defines them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def metric_progress(start: float, target: float, current: float) -> float:
    span = target - start
    if span == 0:
        return 1.0 if current == target else 0.0
    return clamp((current - start) / span)


def weighted_progress(items: Iterable[tuple[float, float]]) -> float:
    """sum(w_i * p_i) / sum(w_i) over (weight, progress) pairs."""
    total_weight = total = 0.0
    for weight, progress in items:
        total_weight += weight
        total += weight * progress
    return total / total_weight if total_weight > 0 else 0.0


def expected_progress(start: date, end: date, now: datetime) -> float:
    """Elapsed fraction of the cycle (start date's first instant to end date's last, UTC)."""
    begin = datetime.combine(start, time.min, tzinfo=UTC)
    finish = datetime.combine(end, time.max, tzinfo=UTC)
    span = (finish - begin).total_seconds()
    return clamp((now - begin).total_seconds() / span) if span > 0 else 1.0


def is_behind(progress: float, expected: float, threshold: float) -> bool:
    """Behind pace when progress < expected x threshold (org setting, default 0.7)."""
    return progress < expected * threshold
