"""The operations report of a cycle as of a moment: each visible objective's and KR's last
progress point by then against the cycle's expected progress, and departments' roll-ups.

The objectives, KRs, cycle, threshold and directory come from the replica of goals' facts
(okr_platform.replica.reads); the points from the notifier's progress history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from okr_platform.clock import utc_text
from okr_platform.directory import Directory
from okr_platform.errors import NotFound
from okr_platform.principal import Principal
from okr_platform.progress import expected_progress, is_behind, weighted_progress
from okr_platform.replica import DEFAULT_THRESHOLD, ObjectiveFacts
from okr_platform.replica import reads as replica

if TYPE_CHECKING:
    from .queries import Reads


def operations_report(
    reads: Reads, principal: Principal, cycle_id: str, as_of: datetime
) -> dict[str, Any]:
    query = reads.store.query
    org_id = reads.org_id(principal)
    cycle = replica.cycle(query, cycle_id, org_id)
    if cycle is None:
        raise NotFound(f"cycle {cycle_id} not found", field="cycle_id")
    expected = expected_progress(cycle.start_date, cycle.end_date, as_of)
    org = replica.org(query, org_id)
    threshold = org.threshold if org is not None else DEFAULT_THRESHOLD
    directory = reads.directory(org_id)
    visible = [
        facts
        for facts in replica.objectives_of_cycle(query, cycle_id)
        if reads.can_see(principal, facts, directory)
    ]
    latest = _latest_points(reads, cycle_id, utc_text(as_of))
    key_results = {
        (kr.objective_id, kr.kr_id): kr for kr in replica.key_results_of_cycle(query, cycle_id)
    }
    report_objectives = []
    for facts in sorted(visible, key=lambda facts: facts.title):
        points = latest.get(facts.objective_id)
        if not points:
            continue  # nothing about it had happened yet on that date
        objective_point = points.get("")
        krs = []
        for kr_id, point in sorted(points.items()):
            if not kr_id or point["source"] == "kr_removed":
                continue
            kr = key_results.get((facts.objective_id, kr_id))
            krs.append(
                _gap(
                    {
                        "kr_id": kr_id,
                        "title": kr.title if kr else kr_id,
                        "unit": kr.unit if kr else None,
                        "unit_label": kr.unit_label if kr else None,
                        "start": kr.start if kr else None,
                        "target": point["target"],
                        "actual": point["value_after"],
                        "progress": point["progress_after"],
                        "weight": kr.weight if kr else None,
                    },
                    expected,
                    threshold,
                )
            )
        progress = (
            objective_point["progress_after"]
            if objective_point
            else weighted_progress((k["weight"] or 1.0, k["progress"]) for k in krs)
        )
        report_objectives.append(
            _gap(
                {
                    "objective_id": facts.objective_id,
                    "title": facts.title,
                    "level": facts.level,
                    "owner_id": facts.owner_id,
                    "department_id": _department_of(facts, directory),
                    "status": facts.status,
                    "weight": facts.weight,
                    "target": 1.0,
                    "progress": progress,
                    "key_results": krs,
                },
                expected,
                threshold,
            )
        )
    names = {key: department.name for key, department in directory.departments.items()}
    return {
        "cycle_id": cycle_id,
        "cycle_name": cycle.name,
        "as_of": as_of.isoformat(),
        "expected_progress": expected,
        "threshold": threshold,
        "departments": _departments(report_objectives, names, expected, threshold),
        "objectives": report_objectives,
    }


def _latest_points(reads: Reads, cycle_id: str, as_of: str) -> dict[str, dict[str, Any]]:
    """objective id -> kr id ('' = the objective) -> its last history point by as_of."""
    rows = reads.store.query(
        """SELECT h.* FROM progress_history h
        JOIN objectives o ON o.objective_id = h.objective_id
        WHERE o.cycle_id = :cycle_id AND h.at <= :as_of
        ORDER BY h.objective_id, h.kr_id, h.version""",
        {"cycle_id": cycle_id, "as_of": as_of},
    )
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest.setdefault(row["objective_id"], {})[row["kr_id"]] = dict(row)
    return latest


def _department_of(facts: ObjectiveFacts, directory: Directory) -> str | None:
    """The objective's department, else its owner's."""
    if facts.department_id:
        return facts.department_id
    member = directory.members.get(facts.owner_id)
    return member.department_id if member else None


def _gap(item: dict[str, Any], expected: float, threshold: float) -> dict[str, Any]:
    """Expected vs actual progress: gap < 0 is behind pace; `behind` uses the threshold."""
    progress = item["progress"]
    return {
        **item,
        "expected_progress": expected,
        "gap": round(progress - expected, 6),
        "behind": is_behind(progress, expected, threshold),
    }


def _departments(
    objectives: Iterable[dict[str, Any]],
    names: dict[str, str],
    expected: float,
    threshold: float,
) -> list[dict[str, Any]]:
    grouped: dict[str | None, list[dict[str, Any]]] = {}
    for objective in objectives:
        grouped.setdefault(objective["department_id"], []).append(objective)
    result = []
    for department_id, members in sorted(grouped.items(), key=lambda item: str(item[0])):
        progress = weighted_progress((o["weight"], o["progress"]) for o in members)
        result.append(
            _gap(
                {
                    "department_id": department_id,
                    "name": names.get(department_id or ""),
                    "objectives": len(members),
                    "progress": progress,
                },
                expected,
                threshold,
            )
        )
    return result
