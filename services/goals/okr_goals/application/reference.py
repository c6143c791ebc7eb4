"""The reference data commands read for their checks: the organisation and its cycles.

Read-only callers get a recent shared copy (younger than ``max_age`` seconds) without a round
trip to the store; writers always get a fresh private copy. What this process saves is
forgotten at once, so it sees its own changes immediately."""

from __future__ import annotations

import time
import uuid
from typing import Any

from eventsourcing.application import Repository


class ReferenceData:
    def __init__(self, repository: Repository[uuid.UUID], max_age: float) -> None:
        self._repository = repository
        self._max_age = max_age
        self._recent: dict[uuid.UUID, tuple[float, Any]] = {}  # id -> (read at, aggregate)

    def get(self, aggregate_id: uuid.UUID, *, copy: bool) -> Any:
        """The aggregate: a private copy if ``copy`` (to change it), else a shared one."""
        if copy:
            return self._repository.get(aggregate_id)
        now = time.monotonic()
        recent = self._recent.get(aggregate_id)
        if recent is not None and now - recent[0] < self._max_age:
            return recent[1]
        aggregate: Any = self._repository.get(aggregate_id, deepcopy_from_cache=False)
        self._recent[aggregate_id] = (now, aggregate)
        return aggregate

    def forget(self, aggregate_id: uuid.UUID | None) -> None:
        self._recent.pop(aggregate_id, None)  # type: ignore[arg-type]
