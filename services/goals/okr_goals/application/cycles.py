"""Use cases of cycles: planning one and moving it through its states (an admin's;
docs/domain.md#cycles)."""

from __future__ import annotations

import uuid
from datetime import date

from okr_platform.access import is_admin, may_act
from okr_platform.errors import Forbidden, NotFound, StaleVersion
from okr_platform.principal import Principal

from ..domain.cycle import Cycle
from .core import GoalsCore


class CycleUseCases(GoalsCore):
    def plan_cycle(
        self, p: Principal, *, name: str, kind: str, start_date: date, end_date: date
    ) -> Cycle:
        org = self._organisation(p)
        if not is_admin(p, org):
            raise Forbidden("only an admin manages cycles")
        cycle = Cycle.plan(org.id, name, kind, start_date, end_date, actor=p.member_id)
        self.save(cycle)
        return cycle

    def transition_cycle(
        self, p: Principal, cycle_id: uuid.UUID, to: str, expected_version: int | None = None
    ) -> Cycle:
        org = self._organisation(p)
        if not is_admin(p, org):
            raise Forbidden("only an admin manages cycles")
        cycle = self._cycle(org, cycle_id, copy=True)
        attempt = self.writes.attempt(expected_version)  # one try: a collision is stale
        attempt.check(cycle)
        cycle.transition(to, actor=p.member_id)
        if not attempt.saved(cycle):
            raise StaleVersion("the cycle changed meanwhile; reload and retry")
        return cycle

    def get_cycle(self, p: Principal, cycle_id: uuid.UUID) -> Cycle:
        org = self._organisation(p)
        if not may_act(p, org):
            raise NotFound(f"unknown cycle {cycle_id}", field="cycle_id")
        return self._cycle(org, cycle_id)
