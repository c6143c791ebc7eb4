"""What the goals application reads from its views: boards' objectives, cycles, activity.

Reads go through the views' store (okr_events' ConsumerStore); `wait_until` is the runtime's
read-your-writes wait on the runner that feeds them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from okr_events.consuming import ConsumerStore
from okr_events.in_process import ReadModelRunner
from okr_events.vocabulary import LEVEL_RANK


class GoalViews:
    def __init__(self, store: ConsumerStore, runner: ReadModelRunner) -> None:
        self.store = store
        self.runner = runner

    def wait_until(self, position: int | None, timeout: float) -> bool:
        """Block until the views have applied goals' log up to `position`; False on timeout
        (or at once if their runner has stopped)."""
        return self.runner.wait_until_applied(position, timeout)

    def objectives(
        self,
        org_id: str,
        *,
        cycle_id: str | None = None,
        department_ids: Iterable[str] | None = None,
        status: str | None = None,
        level: str | None = None,
    ) -> list[dict[str, Any]]:
        clauses = ["org_id = :org_id"]
        params: dict[str, Any] = {"org_id": org_id}
        for name, value in (("cycle_id", cycle_id), ("status", status), ("level", level)):
            if value is not None:
                clauses.append(f"{name} = :{name}")
                params[name] = value
        if department_ids is not None:
            names = []
            for index, department_id in enumerate(department_ids):
                params[f"d{index}"] = department_id
                names.append(f":d{index}")
            clauses.append(f"department_id IN ({', '.join(names) or 'NULL'})")
        rows = self.store.query(
            "SELECT doc FROM view_objectives WHERE "
            + " AND ".join(clauses)
            + " ORDER BY objective_id",
            params,
        )
        docs = [json.loads(row["doc"]) for row in rows]
        docs.sort(key=lambda d: (LEVEL_RANK.get(d["level"], 9), d["created_on"]))
        return docs

    def cycles(self, org_id: str) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT doc FROM view_cycles WHERE org_id = :org_id ORDER BY start_date, cycle_id",
            {"org_id": org_id},
        )
        return [json.loads(row["doc"]) for row in rows]

    def activity(self, objective_id: str) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT version, at, actor, action, params FROM view_activity "
            "WHERE objective_id = :objective_id ORDER BY version",
            {"objective_id": objective_id},
        )
        return [
            {
                "version": row["version"],
                "at": row["at"],
                "actor": row["actor"],
                "action": row["action"],
                "params": json.loads(row["params"]),
            }
            for row in rows
        ]
