"""Stopping the embedded suite never dead-letters an event: an event the notifier was applying
when the process stopped stays unapplied and is applied after the next start
(docs/architecture.md#guarantees)."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest
from fastapi.testclient import TestClient
from okr_events import GOALS_SOURCE, GOALS_TOPIC
from okr_events.codec import InboundEvent, encode
from okr_events.consuming import (
    ConsumerStore,
    EventProcessor,
    RawMessage,
    open_consumer_store,
)
from okr_events.goals import CycleActivated
from okr_events.ledger import Ledger
from okr_events.messages import decode_batch
from okr_goals.service import GoalsService
from okr_goals.settings import GoalsSettings
from okr_notifier.service import open_store
from okr_notifier.settings import NotifierSettings
from okr_suite.main import create_app
from okr_testkit.goals import JWT_SECRET, auth, build_org
from okr_testkit.notifier import WEBHOOK_SECRET_KEY
from psycopg import sql

from conftest import wait_for

#: Stops right after a burst of writes: each one a chance for the race to show.
ROUNDS = 12


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def suite_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The suite's settings, from the environment as `make run` reads them: SQLite files under
    tmp_path, or the test's PostgreSQL schemas."""
    monkeypatch.setenv("GOALS_DATA_DIR", str(tmp_path / "goals"))
    monkeypatch.setenv("NOTIFIER_DATA_DIR", str(tmp_path / "notifier"))
    monkeypatch.setenv("NOTIFIER_SCHEDULER_ENABLED", "false")
    monkeypatch.setenv("GOALS_PERSISTENCE", request.param)
    monkeypatch.setenv("NOTIFIER_PERSISTENCE", request.param)
    if request.param == "sqlite":
        yield request.param
        return
    dsn = request.getfixturevalue("postgres_dsn")
    schema = request.getfixturevalue("postgres_schema")
    url = urlparse(dsn)
    for prefix in ("GOALS_", "NOTIFIER_"):
        monkeypatch.setenv(prefix + "POSTGRES_HOST", url.hostname or "127.0.0.1")
        monkeypatch.setenv(prefix + "POSTGRES_PORT", str(url.port or 5432))
        monkeypatch.setenv(prefix + "POSTGRES_DBNAME", url.path.lstrip("/"))
        monkeypatch.setenv(prefix + "POSTGRES_USER", url.username or "okr")
        monkeypatch.setenv(prefix + "POSTGRES_PASSWORD", url.password or "")
        monkeypatch.setenv(prefix + "JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("GOALS_POSTGRES_SCHEMA", schema)
    monkeypatch.setenv("NOTIFIER_POSTGRES_SCHEMA", f"{schema}_notifier")
    monkeypatch.setenv("NOTIFIER_WEBHOOK_SECRET_KEYS", WEBHOOK_SECRET_KEY)
    try:
        yield request.param
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(f"{schema}_notifier")
                )
            )


def notifier_store() -> ConsumerStore:
    """The notifier's store, opened as the notifier opens it."""
    return open_store(NotifierSettings())


def write_a_burst(client: TestClient, settings: GoalsSettings, round: int) -> None:
    """A department, a cycle and its activation (what the notifier applies)."""
    admin = auth(settings, "root", roles=["admin"])
    body = {"id": f"dept-{round}", "name": f"Department {round}"}
    assert client.post("/directory/departments", json=body, headers=admin).status_code == 201
    cycle = {
        "name": f"2027 Q{round % 4 + 1} #{round}",
        "kind": "quarter",
        "start_date": "2027-01-01",
        "end_date": "2027-03-31",
    }
    created = client.post("/cycles", json=cycle, headers=admin)
    assert created.status_code == 201, created.text
    activated = client.post(
        f"/cycles/{created.json()['id']}/transitions", json={"to": "active"}, headers=admin
    )
    assert activated.status_code in (200, 409), activated.text  # one active cycle at a time


def test_a_stop_right_after_writes_dead_letters_nothing(suite_env: str) -> None:
    settings = GoalsSettings()
    with TestClient(create_app()) as client:
        build_org(client, settings)  # and stop at once: the notifier is still applying
    for round in range(ROUNDS):
        with TestClient(create_app()) as client:
            write_a_burst(client, settings, round)  # and stop at once, again

    goals = GoalsService(settings)
    written = goals.app.recorder.max_notification_id()
    goals.close()
    notifier = notifier_store()
    try:
        assert notifier.dead_letters() == []
        with TestClient(create_app()):  # the next start applies what the stops interrupted
            wait_for(
                lambda: (notifier.next_offset(GOALS_TOPIC, 0) or 0) >= written,
                20,
                "the notifier to apply every goals event",
            )
        assert notifier.dead_letters() == []
    finally:
        notifier.datastore.close()  # type: ignore[attr-defined]


class StoreClosedUnderIt(Ledger):
    """A handler whose store was closed by a stop that did not wait for it (not an outage)."""

    calls = 0

    def handle(self, event, tx) -> None:  # type: ignore[no-untyped-def]
        StoreClosedUnderIt.calls += 1
        raise sqlite3.ProgrammingError("Cannot operate on a closed database.")


def cycle_activated() -> tuple[InboundEvent, RawMessage]:
    contract = CycleActivated(
        aggregate_id=uuid.uuid4(),
        aggregate_version=2,
        occurred_at=datetime.now(UTC),
        actor="admin",
    )
    message = encode(contract, topic=GOALS_TOPIC, source=GOALS_SOURCE)
    raw = RawMessage(GOALS_TOPIC, 0, 0, message.key, message.value, message.headers)
    [event] = decode_batch([raw])
    assert isinstance(event, InboundEvent)
    return event, raw


@pytest.mark.parametrize("batch", [False, True])
def test_an_event_failing_while_stopping_stays_unapplied(tmp_path: Path, batch: bool) -> None:
    """Asked to stop mid-retry, the processor gives the event up without dead-lettering it."""
    StoreClosedUnderIt.calls = 0
    store = open_consumer_store("ledger", sqlite_path=str(tmp_path / "ledger.sqlite3"))
    processor: EventProcessor[InboundEvent] = EventProcessor(
        StoreClosedUnderIt(),
        store,
        dead_letter=lambda *_: pytest.fail("a stop must not dead-letter"),
        max_retries=3,
        retry_backoff=0.001,
        stopping=lambda: StoreClosedUnderIt.calls >= 1,
    )
    first, first_raw = cycle_activated()
    second, second_raw = cycle_activated()
    second_raw = RawMessage(GOALS_TOPIC, 0, 1, second_raw.key, second_raw.value)
    second = dataclasses.replace(second, offset=1)
    try:
        with pytest.raises(Exception, match="closed database"):
            if batch:
                processor.process_batch([first, second], [first_raw, second_raw])
            else:
                processor.process(first, first_raw)
        assert StoreClosedUnderIt.calls == 1  # not retried either: the runner is stopping
        assert store.next_offset(GOALS_TOPIC, 0) is None  # not applied, not skipped
        assert store.dead_letters() == []
        assert processor.dead_lettered == 0
    finally:
        store.datastore.close()  # type: ignore[attr-defined]
