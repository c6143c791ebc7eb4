"""`okr-notifier rebuild`: drop the projections and replay every topic from offset 0.

The projections (schema.PROJECTION_TABLES) are derived from events only, so they can always
be rebuilt: after a bug fix in a projection, or to check that the live state is what the
history says (the e2e test compares them). The rules stay silent during a rebuild: replaying
history must not tell anyone again, and the notifications themselves are kept.

Stop the notifier first: the rebuild refuses while its consumer group has live members."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from okr_events import NOTIFIER_SOURCE, NOTIFIER_TOPIC
from okr_events.consuming import ConsumerStore
from okr_events.in_process import InProcessRunner
from okr_events.kafka import KafkaSettings
from okr_events.mapping import contract_mapper
from okr_events.replay import ReplayResult, replay

from . import schema
from .application import FollowsApplication
from .projection import NotifierProjection
from .settings import NotifierSettings

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class NotifierRunning(RuntimeError):
    """The live notifier still consumes: a rebuild under it would race with it."""


def check_group_idle(kafka: KafkaSettings, group_id: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(kafka.common())
    future = admin.describe_consumer_groups([group_id])[group_id]
    description = future.result(timeout=10)
    if description.members:
        raise NotifierRunning(
            f"consumer group {group_id!r} has {len(description.members)} live member(s): "
            "stop the notifier before rebuilding"
        )


def drop_projections(store: ConsumerStore) -> None:
    """Forget the projections, the applied versions and every stored position."""
    table = store.tracking_table_name  # type: ignore[attr-defined]
    with store._tx() as tx:
        for statement in schema.drop_projections():
            tx.execute(statement)
        tx.execute("DELETE FROM consumer_applied_versions")
        tx.execute(f"DELETE FROM {table}")


def rebuild(
    settings: NotifierSettings,
    store: ConsumerStore,
    follows: FollowsApplication,
    kafka: KafkaSettings,
    *,
    progress: Progress | None = None,
    batch_size: int = 5000,
) -> ReplayResult:
    """Drop, then replay the notifier's own follow events and every consumed topic."""
    dialect: schema.Dialect = "sqlite" if settings.embedded else "postgres"
    store.setup(schema.statements(dialect))  # a first rebuild on an empty store
    drop_projections(store)
    projection = NotifierProjection(dialect, rules_enabled=False)
    own = InProcessRunner(
        projection,
        store,
        follows,
        to_contract=contract_mapper("okr.notifier."),
        topic=NOTIFIER_TOPIC,
        source=NOTIFIER_SOURCE,
    )
    own.start_thread("rebuild-follows")
    try:
        while not own.caught_up():
            if own.error is not None:
                raise own.error
            time.sleep(0.01)
    finally:
        own.stop()
        if own._thread is not None:
            own._thread.join(10)
    return replay(
        projection, store, settings.topics, kafka, batch_size=batch_size, progress=progress
    )


def snapshot(store: ConsumerStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows, sorted: equal snapshots mean equal projections."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for table in schema.PROJECTION_TABLES:
        rows = store.query(f"SELECT * FROM {table}")
        tables[table] = sorted(
            tuple(json.dumps(value, sort_keys=True, default=str) for value in dict(row).values())
            for row in rows
        )
    return tables
