"""The projection applied in big batches (as a rebuild does: writes pending in the batch, rules
off) gives exactly the tables it gives one event at a time (as the live consumer does: rules
on), on SQLite and PostgreSQL, for a history that mixes every kind of objective change with
check-ins, within and across batches."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from okr_events.consumer_store import open_consumer_store
from okr_events.consuming import ConsumerStore
from okr_notifier import schema
from okr_notifier.projection import NotifierProjection
from okr_notifier.rebuild import snapshot
from okr_testkit.goals_history import RandomHistory, inbound
from psycopg import sql


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[Any, Any, str]]:
    """Two empty notifier stores of one dialect."""
    if request.param == "sqlite":
        yield (
            open_consumer_store("single", sqlite_path=str(tmp_path / "single.sqlite3")),
            open_consumer_store("batch", sqlite_path=str(tmp_path / "batch.sqlite3")),
            "sqlite",
        )
        return
    dsn = request.getfixturevalue("postgres_dsn")
    names = [f"t_batch_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    opened = [open_consumer_store(n, postgres_conninfo=dsn, schema=n) for n in names]
    try:
        yield opened[0], opened[1], "postgres"
    finally:
        for store in opened:
            store.datastore.close()  # type: ignore[attr-defined]
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.mark.parametrize("batch_size", [7, 5000])
def test_batches_give_the_tables_single_events_give(
    stores: tuple[ConsumerStore, ConsumerStore, schema.Dialect], batch_size: int
) -> None:
    single, batched, dialect = stores
    events = inbound(RandomHistory(seed=batch_size).contracts())
    kinds = {type(event.contract).__name__ for event in events}
    assert {"KeyResultRemoved", "KeyResultEdited", "KeyResultTargetChanged"} <= kinds

    live = NotifierProjection(dialect)  # rules on, as the live consumer
    single.setup(live.create_statements)
    for event in events:
        assert single.apply_batch([event], lambda fresh, tx: live.handle(fresh[0], tx)) == 1

    rebuilding = NotifierProjection(dialect, rules_enabled=False)
    batched.setup(rebuilding.create_statements)
    for start in range(0, len(events), batch_size):
        chunk = events[start : start + batch_size]
        assert batched.apply_batch(chunk, rebuilding.handle_batch) == len(chunk)

    expected = snapshot(single)
    assert len(expected["progress_history"]) > len(events) // 2
    assert snapshot(batched) == expected
