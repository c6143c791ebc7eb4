"""Use cases of objectives: creating one (with its key results and alignments in the same
commit), editing it, its key results and check-ins, aligning it (docs/domain.md#objectives,
#check-ins, #alignment). Each loads, authorises and saves through `ObjectiveChanges`."""

from __future__ import annotations

import uuid
from typing import Any

from okr_platform.access import (
    can_manage_department,
    can_set_objectives_for,
    manages_directly,
    may_act,
)
from okr_platform.errors import DomainError, Forbidden, IllegalTransition, InvalidInput
from okr_platform.principal import Principal

from ..domain.objective import Objective
from ..domain.organisation import Organisation
from .changes import ObjectiveChanges


class ObjectiveUseCases(ObjectiveChanges):
    def create_objective(
        self,
        p: Principal,
        *,
        cycle_id: uuid.UUID,
        title: str,
        description: str = "",
        level: str | None = None,
        owner_type: str = "member",
        owner_id: str | None = None,
        responsible_ids: list[str] | None = None,
        visibility: str = "public",
        weight: float = 1.0,
        key_results: list[dict[str, Any]] | None = None,
        align_to: list[dict[str, Any]] | None = None,
    ) -> Objective:
        """Create an objective, optionally with its KRs and alignments in the same commit."""
        org = self._organisation(p)
        if not may_act(p, org):
            raise Forbidden("you are not an active member of this organisation")
        cycle = self._cycle(org, cycle_id)
        if cycle.state not in ("planning", "active"):
            raise IllegalTransition(
                f"cycle is {cycle.state!r}: objectives are set in planning or active cycles",
                field="cycle_id",
            )
        owner_id = owner_id or p.member_id
        created_for_report = False
        if owner_type == "member":
            owner = org.member(owner_id, field="owner_id")
            department_id = owner.department_id
            if not can_set_objectives_for(p, org, owner_id):
                raise Forbidden(
                    "you may create objectives for yourself and your direct reports only"
                )
            created_for_report = owner_id != p.member_id and manages_directly(
                org, p.member_id, [owner_id]
            )
        elif owner_type == "department":
            org.department(owner_id, field="owner_id")
            department_id = owner_id
            for member in responsible_ids or []:
                org.member(member, field="responsible_ids")
            if not can_manage_department(p, org, owner_id):
                raise Forbidden("only the department's leads or an admin set its objectives")
        else:
            raise InvalidInput("owner_type must be 'member' or 'department'", field="owner_type")
        objective = Objective.draft(
            org_id=org.id,
            cycle_id=cycle.id,
            title=title,
            description=description,
            level=level or ("personal" if owner_type == "member" else "department"),
            owner_type=owner_type,
            owner_id=owner_id,
            responsible_ids=responsible_ids,
            department_id=department_id,
            visibility=visibility,
            weight=weight,
            created_for_report=created_for_report,
            actor=p.member_id,
        )
        for index, kr in enumerate(key_results or []):
            try:
                objective.add_key_result(**kr, actor=p.member_id)
            except DomainError as error:
                error.field = f"key_results.{index}.{error.field}" if error.field else None
                raise
        for link in align_to or []:
            self._align(p, org, objective, link["objective_id"], link.get("kr_id"))
        self.save(objective)
        return objective

    def edit_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        changes: dict[str, Any],
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.edit(changes, actor=p.member_id, late=late),
        )

    def add_key_result(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        fields: dict[str, Any],
        expected_version: int | None = None,
    ) -> tuple[Objective, str]:
        return self._change_objective_returning(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.add_key_result(**fields, actor=p.member_id, late=late),
        )

    def edit_key_result(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        kr_id: str,
        changes: dict[str, Any],
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Objective:
        def edit(o: Objective, org: Organisation, late: bool) -> None:
            plain = {k: v for k, v in changes.items() if k != "target"}
            if plain:
                o.edit_key_result(kr_id, plain, actor=p.member_id, late=late)
            if "target" in changes:
                o.change_target(kr_id, changes["target"], reason or "", p.member_id, late=late)

        return self._change_objective(p, objective_id, expected_version, edit)

    def remove_key_result(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        kr_id: str,
        reason: str,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.remove_key_result(kr_id, reason, actor=p.member_id),
        )

    def check_in(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        kr_id: str,
        *,
        current: float | None = None,
        done: bool | None = None,
        confidence: int | None = None,
        risk: str | None = None,
        note: str = "",
        source: str = "manual",
        expected_version: int | None = None,
    ) -> tuple[Objective, str]:
        def check_in(o: Objective, org: Organisation, late: bool) -> str:
            return o.check_in(
                kr_id,
                current=current,
                done=done,
                confidence=confidence,
                risk=risk,
                note=note,
                source=source,
                actor=p.member_id,
                late=late,
            )

        return self._change_objective_returning(
            p, objective_id, expected_version, check_in, kr_owner_may=kr_id
        )

    def align_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        parent_objective_id: uuid.UUID,
        parent_kr_id: str | None = None,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: self._align(p, org, o, parent_objective_id, parent_kr_id),
        )

    def unalign_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        parent_objective_id: uuid.UUID,
        parent_kr_id: str | None = None,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.unalign(parent_objective_id, parent_kr_id, p.member_id),
        )
