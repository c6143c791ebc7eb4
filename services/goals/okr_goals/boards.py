"""Goal board rows and the alignment tree, shaped from view rows (docs/domain.md#alignment,
docs/domain.md#boards).

Pure functions: they take objective summaries (from the views), the directory and the cycles,
and return what a front end renders. Task, hour and discussion columns belong to contexts that
arrive later (execution, reviews); they are present and null until then.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from okr_events.vocabulary import LEVEL_RANK
from okr_platform.progress import expected_progress, is_behind

from .domain.organisation import Organisation


def _number(value: float) -> str:
    return f"{value:g}"


def kr_display(kr: dict[str, Any]) -> str:
    """The seed board's progress text: 60位(60%), 12次(3.3%), 80%/80% (value/progress)."""
    percent = f"{kr['progress'] * 100:.1f}".rstrip("0").rstrip(".")
    current, target = _number(kr["current"]), _number(kr["target"])
    if kr["kind"] == "boolean":
        return f"{current}/1"
    if kr["unit"] == "percent":
        return f"{current}%/{percent}%"
    if kr["unit"] == "custom":
        return f"{current}{kr['unit_label']}({percent}%)"
    if kr["unit"] == "currency":
        return f"{current} {kr['unit_label']}({percent}%)"
    return f"{current}/{target}({percent}%)"


def pace(
    summary: dict[str, Any], cycle: dict[str, Any] | None, org: Organisation, now: datetime
) -> tuple[float | None, bool]:
    """Expected progress (elapsed share of the cycle) and whether the objective is behind."""
    if cycle is None:
        return None, False
    expected = expected_progress(
        date.fromisoformat(cycle["start_date"]), date.fromisoformat(cycle["end_date"]), now
    )
    behind = summary["status"] == "active" and is_behind(
        summary["progress"], expected, org.settings.progress_warning_threshold
    )
    return round(expected, 6), behind


def _people(org: Organisation, ids: list[str]) -> list[dict[str, str]]:
    return [{"id": m, "name": org.members[m].name if m in org.members else m} for m in ids]


def _department(org: Organisation, department_id: str | None) -> dict[str, str] | None:
    if department_id is None:
        return None
    dept = org.departments.get(department_id)
    return {"id": department_id, "name": dept.name if dept else department_id}


def board_rows(
    summaries: list[dict[str, Any]],
    cycles: dict[str, dict[str, Any]],
    org: Organisation,
    now: datetime,
) -> list[dict[str, Any]]:
    """One row per key result, as on the seed's board (an objective without KRs: one row)."""
    rows = []
    for summary in summaries:
        cycle = cycles.get(summary["cycle_id"])
        expected, behind = pace(summary, cycle, org, now)
        common = {
            "objective_id": summary["id"],
            "objective_version": summary["version"],
            "level": summary["level"],
            "department": _department(org, summary["department_id"]),
            "people": _people(org, summary["responsible_ids"]),
            "cycle": {
                "id": summary["cycle_id"],
                "name": cycle["name"] if cycle else None,
                "state": cycle["state"] if cycle else None,
            },
            "status": summary["status"],
            "objective": summary["title"],
            "objective_progress": summary["progress"],
            "expected_progress": expected,
            "behind_pace": behind,
            "objective_confidence": summary["confidence"],
        }
        later = {
            "tasks_done": None,
            "tasks_total": None,
            "tasks_overdue": None,
            "hours_total": None,
            "discussion_count": None,
        }
        krs = summary["key_results"] or [None]
        for kr in krs:
            row = dict(common)
            row["key_result"] = (
                None
                if kr is None
                else {
                    "id": kr["id"],
                    "title": kr["title"],
                    "progress": kr["progress"],
                    "display": kr_display(kr),
                    "current": kr["current"],
                    "target": kr["target"],
                    "start": kr["start"],
                    "unit": kr["unit"],
                    "unit_label": kr["unit_label"],
                    "confidence": kr["confidence"],
                    "risk": kr["risk"],
                }
            )
            row["confidence"] = kr["confidence"] if kr else summary["confidence"]
            row.update(later)
            rows.append(row)
    return rows


def alignment_tree(summaries: list[dict[str, Any]], org: Organisation) -> list[dict[str, Any]]:
    """Company -> department -> personal: each objective under every visible parent.

    An objective whose parents are all invisible to the caller (or that has none) is a root."""
    by_id = {s["id"]: s for s in summaries}
    children: dict[str, list[tuple[str, str | None]]] = {}
    roots = []
    for s in summaries:
        visible_parents = [p for p in s["parents"] if p["objective_id"] in by_id]
        if not visible_parents:
            roots.append(s["id"])
        for p in visible_parents:
            children.setdefault(p["objective_id"], []).append((s["id"], p["kr_id"]))

    def order(ids: list[str]) -> list[str]:
        return sorted(ids, key=lambda i: (LEVEL_RANK.get(by_id[i]["level"], 9), by_id[i]["title"]))

    def node(objective_id: str, via_kr: str | None, path: frozenset[str]) -> dict[str, Any]:
        s = by_id[objective_id]
        kids = [c for c in children.get(objective_id, []) if c[0] not in path]
        kid_ids = order([c[0] for c in kids])
        via = dict(kids)
        return {
            "id": s["id"],
            "title": s["title"],
            "level": s["level"],
            "status": s["status"],
            "progress": s["progress"],
            "confidence": s["confidence"],
            "owner": {"type": s["owner_type"], "id": s["owner_id"]},
            "department": _department(org, s["department_id"]),
            "people": _people(org, s["responsible_ids"]),
            "via_key_result_id": via_kr,
            "children": [node(k, via[k], path | {objective_id}) for k in kid_ids],
        }

    return [node(r, None, frozenset()) for r in order(roots)]
