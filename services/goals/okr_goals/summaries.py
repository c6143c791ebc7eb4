"""The JSON shape of an objective and a cycle, shared by the API (from the aggregate) and the
views (stored per row), so a board row and GET /objectives/{id} never disagree."""

from __future__ import annotations

from typing import Any

from .domain.cycle import Cycle
from .domain.key_result import KeyResult
from .domain.objective import Objective


def key_result_summary(kr: KeyResult) -> dict[str, Any]:
    return {
        "id": kr.id,
        "title": kr.title,
        "kind": kr.kind,
        "unit": kr.unit,
        "unit_label": kr.unit_label,
        "start": kr.start,
        "target": kr.target,
        "current": kr.current,
        "progress": round(kr.progress, 6),
        "decreasing": kr.decreasing,
        "weight": kr.weight,
        "owner_id": kr.owner_id,
        "due_date": kr.due_date.isoformat() if kr.due_date else None,
        "confidence": kr.confidence,
        "risk": kr.risk,
        "check_ins": kr.check_ins,
    }


def objective_summary(objective: Objective) -> dict[str, Any]:
    return {
        "id": str(objective.id),
        "version": objective.version,
        "org_id": str(objective.org_id),
        "cycle_id": str(objective.cycle_id),
        "title": objective.title,
        "description": objective.description,
        "level": objective.level,
        "owner_type": objective.owner_type,
        "owner_id": objective.owner_id,
        "responsible_ids": list(objective.responsible_ids),
        "department_id": objective.department_id,
        "visibility": objective.visibility,
        "weight": objective.weight,
        "status": objective.status,
        "progress": round(objective.progress, 6),
        "confidence": objective.confidence,
        "parents": [dict(p) for p in objective.parents],
        "key_results": [key_result_summary(kr) for kr in objective.active_key_results],
        "created_by": objective.created_by,
        "created_for_report": objective.created_for_report,
        "rejection_reason": objective.rejection_reason,
        "cancel_reason": objective.cancel_reason,
        "score": objective.score,
        "created_on": objective.created_on.isoformat(),
        "modified_on": objective.modified_on.isoformat(),
    }


def cycle_summary(cycle: Cycle) -> dict[str, Any]:
    return {
        "id": str(cycle.id),
        "version": cycle.version,
        "org_id": str(cycle.org_id),
        "name": cycle.name,
        "kind": cycle.kind,
        "start_date": cycle.start_date.isoformat(),
        "end_date": cycle.end_date.isoformat(),
        "state": cycle.state,
    }
