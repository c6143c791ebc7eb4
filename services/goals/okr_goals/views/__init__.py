"""The goals read side (docs/read-models.md): schema, projection, queries.

The views are a read model of goals' own notification log on the consumer runtime of
okr_events: a `ReadModelRunner` follows the log and applies it through `GoalViewsProjection`
to a `ConsumerStore` (its own SQLite file when embedded, the service's PostgreSQL schema
otherwise); `GoalViews` reads them and waits for them to catch up with a request."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.utils import Environment
from okr_events.consuming import (
    ConsumerStore,
    PostgresConsumerStore,
    SQLiteConsumerStore,
    position_name,
)
from okr_events.in_process import ReadModelRunner

from ..settings import GoalsSettings
from .projection import GoalViewsProjection, event_payload
from .queries import GoalViews

__all__ = ["GoalViews", "GoalViewsProjection", "event_payload", "open_views"]


def open_views(settings: GoalsSettings, app: Application[Any]) -> GoalViews:
    """The views of ``app``'s log, their runner started (thread "goals-views")."""
    store = open_views_store(settings)
    _adopt_library_position(store, app.name)
    runner = ReadModelRunner(GoalViewsProjection(app.repository), store, app, topic=app.name)
    runner.start_thread("goals-views")
    return GoalViews(store, runner)


def open_views_store(settings: GoalsSettings) -> ConsumerStore:
    """Views live beside the events: their own SQLite file, or the same PostgreSQL schema
    (tables ``view_*``, positions in ``goals_views_tracking``)."""
    env = Environment(GoalViewsProjection.name, settings.views_env())
    cls = SQLiteConsumerStore if settings.embedded else PostgresConsumerStore
    store = InfrastructureFactory.construct(env).tracking_recorder(cls)
    assert isinstance(store, ConsumerStore)
    return store


def _adopt_library_position(store: ConsumerStore, log_name: str) -> None:
    """Views built before they moved onto the consumer runtime tracked the log under the
    application's name ("goals"); resume from there instead of projecting the log again."""
    if store.next_offset(log_name, 0) is None:
        legacy = store.max_tracking_id(log_name)
        if legacy:
            store.insert_tracking(Tracking(position_name(log_name, 0), legacy))
