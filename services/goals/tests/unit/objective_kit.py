"""Builders shared by the objective domain tests (test_domain_objective_*.py): a draft, a draft
with one key result, an objective driven to a status, its events' names, a replay."""

from __future__ import annotations

import uuid

from okr_goals.domain.objective import Objective

TITLE = "建立高效专业的客户支持团队"


def draft(**fields) -> Objective:
    values = {
        "org_id": uuid.uuid4(),
        "cycle_id": uuid.uuid4(),
        "title": TITLE,
        "owner_id": "bailu",
        "actor": "bailu",
    } | fields
    return Objective.draft(**values)


def with_kr(**kr) -> tuple[Objective, str]:
    objective = draft()
    fields = {"title": "获取100家客户的5星好评", "start": 0, "target": 100} | kr
    return objective, objective.add_key_result(actor="bailu", **fields)


def in_state(status: str) -> tuple[Objective, str]:
    """An objective with one metric KR (0 -> 100), driven to the given status."""
    objective, kr_id = with_kr()
    steps = {
        "draft": [],
        "pending_approval": [lambda o: o.submit(approval_required=True, actor="bailu")],
        "active": [lambda o: o.submit(approval_required=False, actor="bailu")],
    }
    steps["scoring"] = [*steps["active"], lambda o: o.start_scoring(actor="boss")]
    steps["scored"] = [*steps["scoring"], lambda o: o.mark_scored(70, actor="boss")]
    steps["closed"] = [*steps["scored"], lambda o: o.close(actor="boss")]
    steps["cancelled"] = [lambda o: o.cancel("方向调整", actor="bailu")]
    for step in steps[status]:
        step(objective)
    assert objective.status == status
    return objective, kr_id


def event_names(objective: Objective) -> list[str]:
    return [type(e).__name__ for e in objective.collect_events()]


def replay(objective: Objective) -> Objective:
    copy = None
    for e in objective.collect_events():
        copy = e.mutate(copy)
    assert copy is not None
    return copy


ALL_STATES = ("draft", "pending_approval", "active", "scoring", "scored", "closed", "cancelled")
