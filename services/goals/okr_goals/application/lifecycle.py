"""Use cases of an objective's lifecycle: submitting, approving or rejecting, cancelling,
scoring and closing (docs/domain.md#lifecycle, #approval, #scoring)."""

from __future__ import annotations

import uuid

from okr_platform.principal import Principal

from ..domain.objective import Objective
from ..domain.organisation import Organisation
from .changes import ObjectiveChanges


class LifecycleUseCases(ObjectiveChanges):
    def submit_objective(
        self, p: Principal, objective_id: uuid.UUID, expected_version: int | None = None
    ) -> Objective:
        def submit(o: Objective, org: Organisation, late: bool) -> None:
            o.submit(self._approval_required(org, o), actor=p.member_id)

        return self._change_objective(p, objective_id, expected_version, submit)

    def _approval_required(self, org: Organisation, o: Objective) -> bool:
        """Approval when the org wants it, unless the supervisor wrote it for their report or
        nobody above the owners could approve (docs/domain.md#approval)."""
        has_approver = any(org.manager_chain(m) for m in o.responsible_ids)
        return org.settings.approval_required and not o.created_for_report and has_approver

    def approve_objective(
        self, p: Principal, objective_id: uuid.UUID, expected_version: int | None = None
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.approve(actor=p.member_id),
            approver_only=True,
        )

    def reject_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        reason: str,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.reject(reason, actor=p.member_id),
            approver_only=True,
        )

    def cancel_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        reason: str,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.cancel(reason, actor=p.member_id),
        )

    def start_scoring(
        self, p: Principal, objective_id: uuid.UUID, expected_version: int | None = None
    ) -> Objective:
        return self._change_objective(
            p, objective_id, expected_version, lambda o, org, late: o.start_scoring(p.member_id)
        )

    def mark_scored(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        score: float,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.mark_scored(score, p.member_id),
            approver_only=True,
        )

    def close_objective(
        self, p: Principal, objective_id: uuid.UUID, expected_version: int | None = None
    ) -> Objective:
        return self._change_objective(
            p, objective_id, expected_version, lambda o, org, late: o.close(p.member_id)
        )
