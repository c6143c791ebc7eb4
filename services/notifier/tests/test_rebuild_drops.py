"""A rebuild's drop forgets the replica of goals' facts too (okr_platform.replica's tables are
among the notifier's projections), with the applied versions and positions, so the replay
that follows rebuilds it from offset 0."""

from __future__ import annotations

from pathlib import Path

import pytest
from okr_events.consumer_store import open_consumer_store
from okr_events.consuming import ConsumerStore
from okr_notifier import schema
from okr_notifier.projection import NotifierProjection
from okr_notifier.rebuild import drop_projections
from okr_platform.replica import REPLICA_TABLES
from okr_testkit.goals_history import RandomHistory, inbound


@pytest.mark.postgres
def test_the_drop_takes_the_replicas_tables_and_the_replay_fills_them_again(
    postgres_dsn: str, postgres_schema: str
) -> None:
    assert set(REPLICA_TABLES) <= set(schema.PROJECTION_TABLES)
    store = open_consumer_store("drop", postgres_conninfo=postgres_dsn, schema=postgres_schema)
    try:
        _drop_and_replay(store, postgres_schema)
    finally:
        store.datastore.close()  # type: ignore[attr-defined]


def test_the_drop_works_on_sqlite_too(tmp_path: Path) -> None:
    store = open_consumer_store("drop", sqlite_path=str(tmp_path / "notifier.sqlite3"))
    try:
        _drop_and_replay(store, None)
    finally:
        store.datastore.close()  # type: ignore[attr-defined]


def _tables(store: ConsumerStore, schema_name: str | None) -> set[str]:
    if schema_name is None:  # SQLite
        rows = store.query("SELECT name AS table_name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = store.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :schema",
            {"schema": schema_name},
        )
    return {row["table_name"] for row in rows}


def _drop_and_replay(store: ConsumerStore, schema_name: str | None) -> None:
    projection = NotifierProjection(
        "sqlite" if schema_name is None else "postgres", rules_enabled=False
    )
    store.setup(projection.create_statements)
    events = inbound(RandomHistory(seed=1, objectives=2, steps=20).contracts())
    assert store.apply_batch(events, projection.handle_batch) == len(events)
    counts = {t: store.query(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in REPLICA_TABLES}
    assert counts["objectives"] == 2 and counts["key_results"] >= 2

    drop_projections(store)
    tables = _tables(store, schema_name)
    assert "consumer_applied_versions" in tables
    assert not tables & set(schema.PROJECTION_TABLES)
    assert store.query("SELECT * FROM consumer_applied_versions") == []

    store.setup(projection.create_statements)  # as the rebuild's replay does
    assert store.apply_batch(events, projection.handle_batch) == len(events)
    assert {
        t: store.query(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in REPLICA_TABLES
    } == counts
