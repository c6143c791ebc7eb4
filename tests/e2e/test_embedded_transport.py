"""The embedded default: no Kafka, no PostgreSQL. The same handler (the ledger) consumes the
goals service's events in process, positions taken from the notification log."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eventsourcing.persistence import OperationalError
from fastapi.testclient import TestClient
from okr_events import GOALS_SOURCE, GOALS_TOPIC
from okr_events.codec import decode, encode
from okr_events.consuming import EventProcessor, RawMessage, open_consumer_store
from okr_events.goals import CycleActivated
from okr_events.in_process import InProcessRunner
from okr_events.ledger import Ledger
from okr_goals.contracts import to_contract
from okr_goals.main import create_app
from okr_goals.service import GoalsService
from okr_testkit.goals import build_org, sqlite_settings

from conftest import wait_for


def test_in_process_runner_applies_each_event_once_and_resumes(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        org = build_org(client, settings)
        objective = org.active_objective()
        kr = objective["key_results"][0]
        for value in (10, 20):
            r = client.post(
                f"/objectives/{objective['id']}/key-results/{kr['id']}/check-ins",
                json={"current": value},
                headers=org.h("bailu"),
            )
            assert r.status_code == 201, r.text

    def run_ledger() -> tuple[InProcessRunner, GoalsService]:
        service = GoalsService(settings)
        store = open_consumer_store("ledger", sqlite_path=str(tmp_path / "ledger.sqlite3"))
        runner = InProcessRunner(
            Ledger(),
            store,
            service.app,
            to_contract=to_contract,
            topic=GOALS_TOPIC,
            source=GOALS_SOURCE,
        )
        runner.start_thread("ledger")
        return runner, service

    runner, service = run_ledger()
    total = service.app.recorder.max_notification_id()
    wait_for(runner.caught_up, 10, "the in-process ledger")
    rows = runner.store.query(
        "SELECT aggregate_id, aggregate_version, event_type FROM ledger_events"
    )
    assert len(rows) == total
    assert len({(r["aggregate_id"], r["aggregate_version"]) for r in rows}) == total
    checked_in = [r for r in rows if r["event_type"] == "okr.goals.KRProgressUpdated.v1"]
    assert len(checked_in) == 2
    runner.close()
    service.close()

    # A restart resumes from the stored position: nothing is applied twice.
    runner, service = run_ledger()
    wait_for(runner.caught_up, 10, "the restarted ledger")
    assert runner.processor.applied == 0
    assert len(runner.store.query("SELECT event_id FROM ledger_events")) == total
    runner.close()
    service.close()


class Refuses(Ledger):
    """A handler that cannot apply check-ins."""

    def handle(self, event, tx) -> None:  # type: ignore[no-untyped-def]
        if event.type == "okr.goals.KRProgressUpdated.v1":
            raise ValueError("no check-ins here")
        super().handle(event, tx)


def test_in_process_dead_letters_are_kept_and_the_log_moves_on(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        org = build_org(client, settings)
        objective = org.active_objective()
        kr = objective["key_results"][0]
        r = client.post(
            f"/objectives/{objective['id']}/key-results/{kr['id']}/check-ins",
            json={"current": 10},
            headers=org.h("bailu"),
        )
        assert r.status_code == 201, r.text
    service = GoalsService(settings)
    store = open_consumer_store("ledger", sqlite_path=str(tmp_path / "ledger.sqlite3"))
    runner = InProcessRunner(
        Refuses(),
        store,
        service.app,
        to_contract=to_contract,
        topic=GOALS_TOPIC,
        source=GOALS_SOURCE,
        max_retries=1,
        retry_backoff=0.001,
    )
    runner.start_thread("ledger")
    try:
        wait_for(runner.caught_up, 10, "the in-process ledger")
        [dead] = store.dead_letters()
        assert dead["error"] == "ValueError: no check-ins here"
        total = service.app.recorder.max_notification_id()
        assert len(store.query("SELECT event_id FROM ledger_events")) == total - 1
    finally:
        runner.close()
        service.close()


class DatabaseAway(Ledger):
    """A handler whose database keeps refusing (as when PostgreSQL restarts)."""

    calls = 0

    def handle(self, event, tx) -> None:  # type: ignore[no-untyped-def]
        DatabaseAway.calls += 1
        raise sqlite3.OperationalError("database is locked")


def test_a_database_outage_is_waited_out_never_dead_lettered(tmp_path: Path) -> None:
    store = open_consumer_store("ledger", sqlite_path=str(tmp_path / "ledger.sqlite3"))
    stop_after = 5
    processor = EventProcessor(
        DatabaseAway(),
        store,
        dead_letter=lambda *_: pytest.fail("a database outage must not dead-letter"),
        max_retries=1,
        retry_backoff=0.001,
        stopping=lambda: DatabaseAway.calls >= stop_after,
    )
    contract = CycleActivated(
        aggregate_id=uuid.uuid4(),
        aggregate_version=2,
        occurred_at=datetime.now(UTC),
        actor="admin",
    )
    message = encode(contract, topic=GOALS_TOPIC, source=GOALS_SOURCE)
    event = decode(
        topic=GOALS_TOPIC,
        partition=0,
        offset=0,
        key=message.key,
        value=message.value,
        headers=message.headers,
    )
    with pytest.raises(OperationalError):  # the store's translation of sqlite3's error
        processor.process(event, RawMessage(GOALS_TOPIC, 0, 0))
    # Retried well past max_retries, then given up only because the runner was stopping.
    assert DatabaseAway.calls == stop_after
    assert store.next_offset(GOALS_TOPIC, 0) is None  # not applied, not skipped
    assert store.dead_letters() == []
    store.datastore.close()


class CountsBatches(Ledger):
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def handle_batch(self, events, tx) -> None:  # type: ignore[no-untyped-def]
        self.sizes.append(len(events))
        super().handle_batch(events, tx)


def test_in_process_runner_applies_the_log_in_batches(tmp_path: Path) -> None:
    """What the subscription has already read is applied together (one transaction), up to
    batch_size; a lone event later is applied at once, alone."""
    settings = sqlite_settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        org = build_org(client, settings)
        objective = org.active_objective()
        kr = objective["key_results"][0]
        for value in range(1, 21):
            r = client.post(
                f"/objectives/{objective['id']}/key-results/{kr['id']}/check-ins",
                json={"current": value},
                headers=org.h("bailu"),
            )
            assert r.status_code == 201, r.text
    service = GoalsService(settings)
    store = open_consumer_store("ledger", sqlite_path=str(tmp_path / "ledger.sqlite3"))
    handler = CountsBatches()
    runner = InProcessRunner(
        handler,
        store,
        service.app,
        to_contract=to_contract,
        topic=GOALS_TOPIC,
        source=GOALS_SOURCE,
        batch_size=8,
    )
    runner.start_thread("ledger")
    try:
        total = service.app.recorder.max_notification_id() or 0
        wait_for(runner.caught_up, 10, "the in-process ledger")
        assert total > 20
        assert sum(handler.sizes) == runner.processor.applied == total
        assert max(handler.sizes) == 8  # batches formed, none above batch_size
        assert len(handler.sizes) < total / 2
    finally:
        runner.close()
        service.close()
