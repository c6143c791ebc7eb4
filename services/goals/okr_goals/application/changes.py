"""The one place objectives are loaded, authorised, changed and saved (the write loop of
okr_platform.writes), and the alignment rule every alignment goes through
(docs/domain.md#objectives, #lifecycle, #alignment)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.application import AggregateNotFoundError
from okr_platform.access import can_approve, can_check_in, can_edit, is_admin
from okr_platform.errors import Conflict, Forbidden, IllegalTransition, InvalidInput
from okr_platform.principal import Principal
from okr_platform.writes import contention

from ..domain.objective import Objective
from ..domain.organisation import Organisation
from .core import GoalsCore

T = TypeVar("T")
Change = Callable[[Objective, Organisation, bool], T]


class ObjectiveChanges(GoalsCore):
    def _change_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        expected_version: int | None,
        change: Change[None],
        *,
        approver_only: bool = False,
    ) -> Objective:
        objective, _ = self._change_objective_returning(
            p, objective_id, expected_version, change, approver_only=approver_only
        )
        return objective

    def _change_objective_returning(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        expected_version: int | None,
        change: Change[T],
        *,
        approver_only: bool = False,
        kr_owner_may: str | None = None,
    ) -> tuple[Objective, T]:
        with self.writes.locked(objective_id):
            for attempt in self.writes.attempts(expected_version):
                org = self._organisation(p)
                objective = self._visible_objective(p, org, objective_id)
                self._authorise_change(p, org, objective, approver_only, kr_owner_may)
                attempt.check(objective)
                late = self._late_update(p, org, objective)
                result = change(objective, org, late)
                if attempt.saved(objective):
                    return objective, result
        raise contention()

    def _authorise_change(
        self,
        p: Principal,
        org: Organisation,
        o: Objective,
        approver_only: bool,
        kr_owner_may: str | None,
    ) -> None:
        owners = o.responsible_ids
        if approver_only:
            if not can_approve(p, org, owners):
                raise Forbidden("only the owner's direct manager or an admin may do this")
            return
        if o.status == "pending_approval":
            # While awaiting approval only the approver may edit, and only if allowed
            # (docs/domain.md#approval).
            approver = can_approve(p, org, owners)
            if not (is_admin(p, org) or (approver and org.settings.approver_may_edit)):
                raise IllegalTransition(
                    "objective is awaiting approval; only the approver may change it now",
                    field="status",
                )
            return
        if kr_owner_may is None:
            allowed = can_edit(p, org, owners)
        else:
            kr = o.key_results.get(kr_owner_may)
            allowed = can_check_in(p, org, owners, kr.owner_id if kr else None)
        if allowed:
            return
        raise Forbidden("you may change your own objectives and your direct reports' only")

    def _late_update(self, p: Principal, org: Organisation, o: Objective) -> bool:
        """After a cycle closes, objectives are read-only; an admin's change is recorded as late."""
        cycle = self._cycle(org, o.cycle_id)
        closed = cycle.state in ("closed", "archived")
        if closed and not is_admin(p, org):
            raise IllegalTransition(
                f"cycle is {cycle.state!r}: its objectives are read-only", field="cycle_id"
            )
        return is_admin(p, org) and (closed or o.status in ("scoring", "scored", "closed"))

    def _align(
        self,
        p: Principal,
        org: Organisation,
        objective: Objective,
        parent_id: uuid.UUID | str,
        parent_kr_id: str | None,
    ) -> None:
        parent_id = uuid.UUID(str(parent_id))
        if parent_id == objective.id:
            raise Conflict(
                "an objective cannot align to itself",
                field="parent_objective_id",
                code="alignment_cycle",
            )
        parent = self._visible_objective(p, org, parent_id, field="parent_objective_id", copy=False)
        if parent_kr_id is not None:
            parent.key_result(parent_kr_id)
        child_cycle = self._cycle(org, objective.cycle_id)
        parent_cycle = self._cycle(org, parent.cycle_id)
        if not (
            parent_cycle.start_date <= child_cycle.start_date
            and parent_cycle.end_date >= child_cycle.end_date
        ):
            raise InvalidInput(
                "a parent objective must be in the same or an enclosing cycle",
                field="parent_objective_id",
            )
        if objective.id in self._ancestors(parent):
            raise Conflict(
                "aligning here would make the alignment graph cyclic",
                field="parent_objective_id",
                code="alignment_cycle",
            )
        objective.align(parent_id, parent_kr_id, actor=p.member_id)

    def _ancestors(self, objective: Objective) -> set[uuid.UUID]:
        """Every objective reachable upwards through alignments (read from the event store)."""
        seen: set[uuid.UUID] = set()
        frontier = list(objective.parent_objective_ids)
        while frontier:
            current = frontier.pop()
            if current in seen:
                continue
            seen.add(current)
            try:
                parent: Objective = self.repository.get(current, deepcopy_from_cache=False)
            except AggregateNotFoundError:
                continue
            frontier.extend(parent.parent_objective_ids)
        return seen
