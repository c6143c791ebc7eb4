"""Goals' facts as a consuming context reads them from its replica, and what one event changed.

The read side (`reads.py`) returns `OrgFacts`, `CycleFacts`, `ObjectiveFacts` and
`KeyResultFacts` (and the organisation's `okr_platform.directory.Directory`). The write side
(`projection.GoalsReplica.apply`) returns a `FactsChange` per event: what a context's own
appliers, run on the same event in the same batch, need beyond the contract (docs/replica.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from okr_events.codec import InboundEvent

from ..progress import expected_progress, is_behind
from .schema import DEFAULT_THRESHOLD


@dataclass(frozen=True)
class OrgFacts:
    org_id: str
    slug: str
    name: str
    threshold: float  # progress warning: behind when progress < expected x threshold
    settings: Mapping[str, Any]  # every setting as goals last sent them; {} = goals' defaults


@dataclass(frozen=True)
class CycleFacts:
    cycle_id: str
    org_id: str
    name: str
    kind: str
    start_date: date
    end_date: date
    status: str


@dataclass(frozen=True)
class ObjectiveFacts:
    """One objective as the replica knows it, with its cycle's dates and its organisation's
    threshold (docs/domain.md#objectives, #progress)."""

    objective_id: str
    org_id: str
    title: str
    status: str
    visibility: str
    owner_ids: tuple[str, ...]
    department_id: str | None
    progress: float
    confidence: int | None  # the lowest of its active KRs' confidence; None when never rated
    cycle_start: date | None = None
    cycle_end: date | None = None
    threshold: float = DEFAULT_THRESHOLD  # the organisation's progress-warning threshold
    cycle_id: str = ""
    level: str = ""
    owner_type: str = ""
    owner_id: str = ""
    weight: float = 1.0

    @property
    def link(self) -> str:
        """Where goals serves it."""
        return f"/objectives/{self.objective_id}"

    def expected(self, now: datetime) -> float | None:
        if self.cycle_start is None or self.cycle_end is None:
            return None
        return expected_progress(self.cycle_start, self.cycle_end, now)

    def behind(self, now: datetime) -> bool:
        expected = self.expected(now)
        return expected is not None and is_behind(self.progress, expected, self.threshold)


@dataclass(frozen=True)
class KeyResultFacts:
    objective_id: str
    kr_id: str
    title: str
    kind: str
    unit: str
    unit_label: str | None
    start: float
    target: float
    current: float
    progress: float
    confidence: int | None
    risk: str
    weight: float
    owner_id: str | None
    due_date: date | None
    active: bool


@dataclass(frozen=True, slots=True)
class KRPoint:
    """A key result's title and values at one point of a batch."""

    kr_id: str
    title: str
    current: float
    target: float
    progress: float


@dataclass(slots=True)
class FactsChange:
    """What the replica made of one goals event, for a context's own appliers of that event.

    The contract says what happened; this adds what the replica alone knows at that point of
    the batch, worked out once so that no other applier reads or recomputes it:

    * ``at``: when it happened, as stored text (okr_platform.clock.utc_text: made once, it
      costs as much as a check-in's other work);
    * ``objective_id``: the objective the event changed (objective and key-result events);
    * ``org_id``: the organisation whose directory or settings the event changed;
    * ``kr``: the key result it touched, as the replica holds it after the event (a removed
      one: as it was when removed); None for a check-in (its values are in the contract, and
      the hot path reads nothing) and for a key result the replica does not know;
    * ``objective_progress``: (before, after) when the replica recomputed the objective's
      progress from its active KRs (a KR added, reweighted, retargeted or removed); None
      otherwise (a check-in carries goals' own before and after)."""

    event: InboundEvent
    at: str
    objective_id: str | None = None
    org_id: str | None = None
    kr: KRPoint | None = None
    objective_progress: tuple[float, float] | None = None
