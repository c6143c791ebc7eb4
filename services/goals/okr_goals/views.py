"""Read models (DESIGN: views.py): the goal board, cycles list and activity log.

They are projections with tracking (the library's `Projection` and tracking recorders): each
event's changes and its notification id are written in one transaction, so a restart resumes
exactly where it stopped and never applies an event twice. The projection folds an objective's
events with the aggregate's own methods, so the view's progress is the domain's progress.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import ApplicationSubscription, Projection
from eventsourcing.sqlite import SQLiteTrackingRecorder
from okr_events.tracing import TRACE_CONTEXT_KEY
from okr_events.vocabulary import LEVEL_RANK
from psycopg.sql import SQL

from .domain.cycle import Cycle
from .domain.objective import Objective
from .summaries import cycle_summary, objective_summary

log = logging.getLogger(__name__)

# One SQL text for both databases: written with :name parameters (SQLite); PostgreSQL gets
# them rewritten to %(name)s. Documents are JSON text so both stores read them the same way.
CREATE_STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS view_objectives (
        objective_id TEXT PRIMARY KEY, org_id TEXT NOT NULL, cycle_id TEXT NOT NULL,
        department_id TEXT, owner_id TEXT NOT NULL, status TEXT NOT NULL, level TEXT NOT NULL,
        version INTEGER NOT NULL, doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS view_objectives_org_cycle ON view_objectives (org_id, cycle_id)",
    """CREATE TABLE IF NOT EXISTS view_cycles (
        cycle_id TEXT PRIMARY KEY, org_id TEXT NOT NULL, start_date TEXT NOT NULL,
        doc TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS view_cycles_org ON view_cycles (org_id)",
    """CREATE TABLE IF NOT EXISTS view_activity (
        objective_id TEXT NOT NULL, version INTEGER NOT NULL, at TEXT NOT NULL,
        actor TEXT NOT NULL, action TEXT NOT NULL, params TEXT NOT NULL,
        PRIMARY KEY (objective_id, version))""",
]
UPSERT_OBJECTIVE = """
    INSERT INTO view_objectives
        (objective_id, org_id, cycle_id, department_id, owner_id, status, level, version, doc)
    VALUES (:objective_id, :org_id, :cycle_id, :department_id, :owner_id, :status, :level,
            :version, :doc)
    ON CONFLICT (objective_id) DO UPDATE SET cycle_id = excluded.cycle_id,
        department_id = excluded.department_id, owner_id = excluded.owner_id,
        status = excluded.status, level = excluded.level, version = excluded.version,
        doc = excluded.doc"""
INSERT_ACTIVITY = """
    INSERT INTO view_activity (objective_id, version, at, actor, action, params)
    VALUES (:objective_id, :version, :at, :actor, :action, :params)
    ON CONFLICT (objective_id, version) DO NOTHING"""
UPSERT_CYCLE = """
    INSERT INTO view_cycles (cycle_id, org_id, start_date, doc)
    VALUES (:cycle_id, :org_id, :start_date, :doc)
    ON CONFLICT (cycle_id) DO UPDATE SET doc = excluded.doc, start_date = excluded.start_date"""


class GoalViews(TrackingRecorder):
    """Queries and writes of the goals read models; subclasses bind a database."""

    def _transaction(self, commit: bool) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _sql(self, statement: str) -> Any:
        return statement

    def _track(self, cursor: Any, tracking: Tracking) -> None:
        raise NotImplementedError

    # ---- read-your-writes --------------------------------------------------------------------

    def _init_positions(self) -> None:
        self._positions: dict[str, int] = {}
        self._advanced = threading.Condition()

    def _advance(self, tracking: Tracking) -> None:
        with self._advanced:
            self._positions[tracking.application_name] = tracking.notification_id
            self._advanced.notify_all()

    def wait_until(self, application_name: str, position: int | None, timeout: float) -> bool:
        """Block until the views have processed `position`; False on timeout."""
        if position is None:
            return True
        with self._advanced:
            known = self._positions.get(application_name)
            if known is None:
                known = self.max_tracking_id(application_name) or 0
                self._positions[application_name] = max(
                    known, self._positions.get(application_name, 0)
                )
            return self._advanced.wait_for(
                lambda: self._positions.get(application_name, 0) >= position, timeout=timeout
            )

    # ---- writes ------------------------------------------------------------------------------

    def record_objective(
        self, row: dict[str, Any], activity: dict[str, Any], tracking: Tracking
    ) -> None:
        with self._transaction(commit=True) as cursor:
            cursor.execute(self._sql(UPSERT_OBJECTIVE), row)
            cursor.execute(self._sql(INSERT_ACTIVITY), activity)
            self._track(cursor, tracking)
        self._advance(tracking)

    def record_cycle(self, row: dict[str, Any], tracking: Tracking) -> None:
        with self._transaction(commit=True) as cursor:
            cursor.execute(self._sql(UPSERT_CYCLE), row)
            self._track(cursor, tracking)
        self._advance(tracking)

    def skip(self, tracking: Tracking) -> None:
        """Record that an event with nothing to show here was seen."""
        self.insert_tracking(tracking)
        self._advance(tracking)

    # ---- queries -----------------------------------------------------------------------------

    def _select(self, statement: str, params: dict[str, Any]) -> list[Any]:
        with self._transaction(commit=False) as cursor:
            cursor.execute(self._sql(statement), params)
            return list(cursor.fetchall())

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
        rows = self._select(
            "SELECT doc FROM view_objectives WHERE "
            + " AND ".join(clauses)
            + " ORDER BY objective_id",
            params,
        )
        docs = [json.loads(row["doc"]) for row in rows]
        docs.sort(key=lambda d: (LEVEL_RANK.get(d["level"], 9), d["created_on"]))
        return docs

    def cycles(self, org_id: str) -> list[dict[str, Any]]:
        rows = self._select(
            "SELECT doc FROM view_cycles WHERE org_id = :org_id ORDER BY start_date, cycle_id",
            {"org_id": org_id},
        )
        return [json.loads(row["doc"]) for row in rows]

    def activity(self, objective_id: str) -> list[dict[str, Any]]:
        rows = self._select(
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


class SQLiteGoalViews(SQLiteTrackingRecorder, GoalViews):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_positions()

    def construct_create_table_statements(self) -> list[str]:
        return super().construct_create_table_statements() + CREATE_STATEMENTS

    def _transaction(self, commit: bool) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=commit)

    def _track(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)


_PARAM = re.compile(r"(?<!:):(\w+)")


class PostgresGoalViews(PostgresTrackingRecorder, GoalViews):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_positions()
        # Tables live in the service's schema, beside its events.
        for statement in CREATE_STATEMENTS:
            self.sql_create_statements.append(SQL(self._sql(statement)))  # type: ignore[arg-type]

    def _sql(self, statement: str) -> Any:
        statement = statement.replace("view_", f"{self.datastore.schema}.view_")
        statement = statement.replace(
            f"INDEX IF NOT EXISTS {self.datastore.schema}.view_", "INDEX IF NOT EXISTS view_"
        )
        return _PARAM.sub(r"%(\1)s", statement)

    def _transaction(self, commit: bool) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=commit)

    def _track(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)


# ---- the projection ----------------------------------------------------------------------------

ACTIONS = {
    "ObjectiveCreated": "objective.created",
    "ObjectiveEdited": "objective.edited",
    "KeyResultAdded": "key_result.added",
    "KeyResultEdited": "key_result.edited",
    "KeyResultTargetChanged": "key_result.target_changed",
    "KeyResultRemoved": "key_result.removed",
    "KRProgressUpdated": "key_result.checked_in",
    "ObjectiveAligned": "objective.aligned",
    "ObjectiveUnaligned": "objective.unaligned",
    "ObjectiveSubmittedForApproval": "objective.submitted",
    "ObjectiveActivated": "objective.activated",
    "ObjectiveApproved": "objective.approved",
    "ObjectiveRejected": "objective.rejected",
    "ObjectiveScoringStarted": "objective.scoring_started",
    "ObjectiveScored": "objective.scored",
    "ObjectiveClosed": "objective.closed",
    "ObjectiveCancelled": "objective.cancelled",
}


def event_payload(event: Any) -> dict[str, Any]:
    """An event's own attributes, JSON-ready (ids and dates as strings).

    The stored trace context is operational metadata, not history: left out."""
    skip = {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        TRACE_CONTEXT_KEY,
    }
    return {k: _jsonable(v) for k, v in event.__dict__.items() if k not in skip and k != "actor"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class GoalViewsProjection(Projection[GoalViews]):
    name = "goals_views"

    def __init__(self, view: GoalViews, app: Application[uuid.UUID]) -> None:
        super().__init__(view)
        self._app = app
        # The objectives being folded, most recently used last; a miss reloads from the store.
        self._objectives: OrderedDict[uuid.UUID, Objective] = OrderedDict()
        self._max_cached = 2_000

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if isinstance(domain_event, Objective.Event):
            self._objective_event(domain_event, tracking)
        elif isinstance(domain_event, Cycle.Event):
            cycle: Cycle = self._app.repository.get(
                domain_event.originator_id, version=domain_event.originator_version
            )
            summary = cycle_summary(cycle)
            row = {
                "cycle_id": summary["id"],
                "org_id": summary["org_id"],
                "start_date": summary["start_date"],
                "doc": json.dumps(summary, ensure_ascii=False),
            }
            self.view.record_cycle(row, tracking)
        else:
            self.view.skip(tracking)

    def _fold(self, event: Objective.Event) -> Objective:
        cached = self._objectives.pop(event.originator_id, None)
        if cached is not None and cached.version == event.originator_version - 1:
            objective = event.mutate(cached)
        elif event.originator_version == 1:
            objective = event.mutate(None)
        else:
            objective = self._app.repository.get(
                event.originator_id, version=event.originator_version
            )
        assert isinstance(objective, Objective)
        self._objectives[event.originator_id] = objective
        if len(self._objectives) > self._max_cached:
            self._objectives.popitem(last=False)
        return objective

    def _objective_event(self, event: Any, tracking: Tracking) -> None:
        objective = self._fold(event)
        summary = objective_summary(objective)
        row = {
            "objective_id": summary["id"],
            "org_id": summary["org_id"],
            "cycle_id": summary["cycle_id"],
            "department_id": summary["department_id"],
            "owner_id": summary["owner_id"],
            "status": summary["status"],
            "level": summary["level"],
            "version": summary["version"],
            "doc": json.dumps(summary, ensure_ascii=False),
        }
        name = type(event).__name__
        activity = {
            "objective_id": summary["id"],
            "version": event.originator_version,
            "at": event.timestamp.isoformat(),
            "actor": event.actor,
            "action": ACTIONS.get(name, name),
            "params": json.dumps(event_payload(event), ensure_ascii=False),
        }
        self.view.record_objective(row, activity, tracking)


class ViewsRunner:
    """Feeds the application's notification log to the projection in a background thread.

    Like the library's ProjectionRunner, but it shares the application (the projection folds
    with its repository) and surfaces a failure to /ready instead of dying silently."""

    def __init__(self, app: Application[uuid.UUID], view: GoalViews) -> None:
        self.app = app
        self.view = view
        self.projection = GoalViewsProjection(view, app)
        self.error: BaseException | None = None
        self._subscription = ApplicationSubscription(
            app=app, gt=view.max_tracking_id(app.name), topics=GoalViewsProjection.topics
        )
        self._thread = threading.Thread(target=self._run, name="goals-views", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._subscription:
                for domain_event, tracking in self._subscription:
                    self.projection.process_event(domain_event, tracking)
        except BaseException as error:  # a projection bug must be loud, not silent
            self.error = error
            log.exception("goals views stopped")

    @property
    def healthy(self) -> bool:
        return self.error is None and self._thread.is_alive()

    def stop(self) -> None:
        self._subscription.stop()
        self._thread.join(timeout=5)
