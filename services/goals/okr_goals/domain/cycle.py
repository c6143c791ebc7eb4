"""Cycles: the period OKRs run for (docs/domain.md#cycles)."""

from __future__ import annotations

import uuid
from datetime import date

from eventsourcing.domain import event
from okr_events.vocabulary import CYCLE_KINDS, CYCLE_STATES
from okr_platform.aggregate import ClockedAggregate
from okr_platform.errors import IllegalTransition, InvalidInput

# state -> {target state: event-recording method name}
_TRANSITIONS = {
    "planning": {"active": "_activated"},
    "active": {"scoring": "_scoring_started"},
    "scoring": {"closed": "_closed"},
    "closed": {"archived": "_archived"},
    "archived": {},
}


class Cycle(ClockedAggregate):
    @event("CycleCreated")
    def __init__(
        self,
        org_id: uuid.UUID,
        name: str,
        kind: str,
        start_date: date,
        end_date: date,
        actor: str,
    ):
        self.org_id = org_id
        self.name = name
        self.kind = kind
        self.start_date = start_date
        self.end_date = end_date
        self.state = "planning"

    @classmethod
    def plan(
        cls, org_id: uuid.UUID, name: str, kind: str, start_date: date, end_date: date, actor: str
    ) -> Cycle:
        if kind not in CYCLE_KINDS:
            raise InvalidInput(f"kind must be one of {list(CYCLE_KINDS)}", field="kind")
        if end_date < start_date:
            raise InvalidInput("end_date is before start_date", field="end_date")
        if not name.strip():
            raise InvalidInput("name must not be blank", field="name")
        return cls(org_id, name.strip(), kind, start_date, end_date, actor)

    def transition(self, to: str, actor: str) -> None:
        if to not in CYCLE_STATES:
            raise InvalidInput(f"state must be one of {list(CYCLE_STATES)}", field="to")
        method = _TRANSITIONS[self.state].get(to)
        if method is None:
            raise IllegalTransition(
                f"cycle is {self.state!r}; it cannot move to {to!r}", field="to"
            )
        getattr(self, method)(actor=actor)

    @property
    def accepts_changes(self) -> bool:
        """Objectives are written in planning/active and scored in scoring."""
        return self.state in ("planning", "active", "scoring")

    @event("CycleActivated")
    def _activated(self, actor: str) -> None:
        self.state = "active"

    @event("CycleScoringStarted")
    def _scoring_started(self, actor: str) -> None:
        self.state = "scoring"

    @event("CycleClosed")
    def _closed(self, actor: str) -> None:
        self.state = "closed"

    @event("CycleArchived")
    def _archived(self, actor: str) -> None:
        self.state = "archived"
