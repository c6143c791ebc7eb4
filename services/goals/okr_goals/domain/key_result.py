"""A key result, the value an objective holds for each of its KRs, and the input rules its
commands check (docs/domain.md#objectives, #progress, #check-ins). Not an aggregate: a KR lives
in its objective's event stream (objective.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from okr_events.vocabulary import MAX_STARS, MIN_STARS
from okr_platform.errors import InvalidInput
from okr_platform.progress import metric_progress


@dataclass
class KeyResult:
    id: str
    title: str
    kind: str
    unit: str
    unit_label: str | None
    start: float
    target: float
    current: float
    owner_id: str | None
    due_date: date | None
    weight: float
    confidence: int | None = None
    risk: str = "normal"
    active: bool = True
    check_ins: int = 0

    @property
    def progress(self) -> float:
        if self.kind == "boolean":
            return 1.0 if self.current >= 1 else 0.0
        return metric_progress(self.start, self.target, self.current)

    @property
    def decreasing(self) -> bool:
        return self.kind == "metric" and self.start > self.target

    def snapshot(self) -> dict[str, Any]:
        """Values a check-in keeps before and after."""
        return {
            "current": self.current,
            "progress": self.progress,
            "confidence": self.confidence,
            "risk": self.risk,
        }


def finite(value: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{field} must be a finite number", field=field)
    return float(value)


def positive(value: float, field: str) -> float:
    value = finite(value, field)
    if value <= 0:
        raise InvalidInput(f"{field} must be greater than 0", field=field)
    return value


def one_of(value: str, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of {list(allowed)}", field=field)
    return value


def title_text(value: str, field: str = "title") -> str:
    value = value.strip()
    if not value:
        raise InvalidInput(f"{field} must not be blank", field=field)
    if len(value) > 500:
        raise InvalidInput(f"{field} is longer than 500 characters", field=field)
    return value


def confidence_stars(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_STARS <= value <= MAX_STARS:
        raise InvalidInput(
            "confidence must be a whole number of stars from 1 to 5", field="confidence"
        )
    return value


def checked_in_value(kr: KeyResult, current: float | None, done: bool | None) -> float | None:
    """The KR's new current value from a check-in's `current` or `done`, by the KR's kind."""
    if done is not None:
        if current is not None:
            raise InvalidInput("send current or done, not both", field="done")
        if not isinstance(done, bool):
            raise InvalidInput("done is true or false", field="done")
        if kr.kind != "boolean":
            raise InvalidInput(
                f"done is for boolean KRs; this one is a {kr.kind} KR: send current",
                field="done",
            )
        return 1.0 if done else 0.0
    if current is None:
        return None
    current = finite(current, "current")
    if kr.kind == "boolean" and current not in (0.0, 1.0):
        raise InvalidInput("a boolean KR's current value is 0 or 1", field="current")
    return current
