"""The read-your-writes wait of the consumer runtime (`ConsumerStore.wait_for_position`), on
SQLite and PostgreSQL: a commit in this process wakes the waiter at once (a condition, not a
poll), a position applied through another store on the same database (another process) is
seen when the waiter re-reads it, and a wait ends on its timeout or as soon as it gives up."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from batch_events import decoded, numbered
from okr_events.consuming import ConsumerStore, Tx, open_consumer_store

TOPIC = "t"


def apply(store: ConsumerStore, count: int) -> None:
    """Apply `count` events at offsets 0.. of partition 0 (position `count` afterwards)."""
    aggregate = uuid.uuid4()
    events = [decoded(raw) for raw in numbered((aggregate, v) for v in range(1, count + 1))]

    def write(fresh: object, tx: Tx) -> None:
        tx.execute("SELECT 1")

    store.apply_batch(events, write)


def waiter(store: ConsumerStore, position: int, timeout: float) -> tuple[threading.Thread, list]:
    """A thread waiting for `position`; its result and when it returned, in the list."""
    result: list[tuple[bool, float]] = []

    def wait() -> None:
        ok = store.wait_for_position(TOPIC, 0, position, timeout)
        result.append((ok, time.monotonic()))

    thread = threading.Thread(target=wait)
    thread.start()
    return thread, result


def test_a_commit_in_this_process_wakes_the_waiter_at_once(store: ConsumerStore) -> None:
    store.setup([])
    store._watch.recheck = 60.0  # only the commit's notification can wake it in time
    thread, result = waiter(store, 3, timeout=30.0)
    time.sleep(0.2)  # waiting by now
    assert not result
    apply(store, 3)
    committed = time.monotonic()
    thread.join(10)
    [(ok, returned)] = result
    assert ok
    assert returned - committed < 1.0


def test_a_wait_times_out_or_gives_up(store: ConsumerStore) -> None:
    store.setup([])
    apply(store, 2)
    assert store.wait_for_position(TOPIC, 0, 2, timeout=0.0)  # already there
    began = time.monotonic()
    assert not store.wait_for_position(TOPIC, 0, 3, timeout=0.3)
    assert time.monotonic() - began >= 0.3
    began = time.monotonic()
    assert not store.wait_for_position(TOPIC, 0, 3, timeout=30.0, give_up=lambda: True)
    assert time.monotonic() - began < 1.0


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ConsumerStore, ConsumerStore]]:
    """Two stores on one database, as two processes would open it."""
    if request.param == "sqlite":
        path = str(tmp_path / "shared.sqlite3")
        opened = [open_consumer_store("ledger", sqlite_path=path) for _ in range(2)]
    else:
        schema = request.getfixturevalue("postgres_schema")
        conninfo = psycopg.conninfo.make_conninfo(request.getfixturevalue("postgres_dsn"))
        opened = [
            open_consumer_store("ledger", postgres_conninfo=conninfo, schema=schema)
            for _ in range(2)
        ]
    yield opened[0], opened[1]
    for each in opened:
        each.datastore.close()  # type: ignore[attr-defined]


def test_a_position_applied_by_another_process_is_seen_on_a_re_read(
    two_stores: tuple[ConsumerStore, ConsumerStore],
) -> None:
    here, elsewhere = two_stores
    here.setup([])
    thread, result = waiter(here, 4, timeout=10.0)
    time.sleep(0.1)
    apply(elsewhere, 4)  # no commit in `here`: nothing notifies its condition
    thread.join(15)
    [(ok, _)] = result
    assert ok
