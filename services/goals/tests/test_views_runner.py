"""The views' runner (okr_events.in_process.ReadModelRunner) as the service runs it.

A query waits for the views to apply what it saw, and answers 503 at once when their runner
has stopped; on PostgreSQL the runner survives its connections being dropped (what a restart
of the server does), resumes from its stored position, and /ready says 503 while it cannot
reach the database and 200 again once it follows the log."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from fastapi.testclient import TestClient
from okr_goals.main import GoalsContext
from okr_goals.service import GoalsService
from okr_goals.settings import GoalsSettings
from okr_platform.serving import serve_contexts
from okr_testkit.goals import Org, build_org, postgres_settings


@contextmanager
def served(settings: GoalsSettings) -> Iterator[tuple[Org, GoalsService]]:
    """The goals context served over HTTP, its small organisation, and its service."""
    context = GoalsContext(settings)
    with TestClient(serve_contexts("goals", [context], "okr-goals-test")) as client:
        yield build_org(client, settings), context._service()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_query_answers_503_at_once_when_the_views_have_stopped(settings: GoalsSettings) -> None:
    with served(settings) as (org, service):
        org.objective()
        assert org.client.get("/ready").status_code == 200
        service.runner.stop()
        wait_for(lambda: not service.runner.healthy, 5, "the runner to stop")
        assert org.client.get("/ready").status_code == 503

        org.objective(title="写入但未投影")  # writes do not wait for the views
        began = time.monotonic()
        r = org.client.get("/objectives", headers=org.h("bailu"))
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "views_unavailable"
        # Given up as soon as the runner was seen gone, not after the read timeout.
        assert time.monotonic() - began < settings.read_consistency_timeout / 2


def test_every_write_is_visible_to_the_next_query(settings: GoalsSettings) -> None:
    with served(settings) as (org, service):
        o = org.active_objective()
        kr = o["key_results"][0]["id"]
        for current in range(1, 16):
            r = org.client.post(
                f"/objectives/{o['id']}/key-results/{kr}/check-ins",
                json={"current": current},
                headers=org.h("bailu"),
            )
            assert r.status_code == 201, r.text
            [listed] = org.client.get("/objectives", headers=org.h("bailu")).json()
            assert listed["key_results"][0]["current"] == current
        assert service.runner.reconnects == 0


# ---- PostgreSQL: the connections dropped under the runner --------------------------------------


def terminate_backends(dsn: str, application_name: str) -> int:
    """Kill this test's connections only (they alone carry its unique application_name)."""
    with psycopg.connect(dsn, autocommit=True, application_name="okr-test-terminator") as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return len(rows)


def replace_dead_connections(service: GoalsService) -> None:
    """What POSTGRES_PRE_PING would do per checkout: the request path's pools (the event
    store's and the views') drop connections the server closed, so the requests after the
    "restart" meet live ones; the runner itself copes without this."""
    service.app.recorder.datastore.pool.check()  # type: ignore[attr-defined]
    service.views.store.datastore.pool.check()  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_the_views_resume_after_the_database_drops_their_connections(
    postgres_dsn: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    application_name = f"okr-test-views-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("PGAPPNAME", application_name)  # every connection this test opens
    settings = postgres_settings(postgres_dsn, postgres_schema)
    with served(settings) as (org, service):
        o = org.active_objective()
        runner = service.runner
        store = service.views.store

        # The database is "down": the connections die and reconnecting fails for now.
        down = True
        next_offset = store.next_offset

        def unreachable(topic: str, partition: int) -> Any:
            if down:
                raise OperationalError("the database is restarting (test)")
            return next_offset(topic, partition)

        monkeypatch.setattr(store, "next_offset", unreachable)
        assert terminate_backends(postgres_dsn, application_name) >= 1
        wait_for(lambda: runner.outage is not None, 10, "the runner to notice")
        assert org.client.get("/ready").status_code == 503
        time.sleep(0.3)  # a few reconnection attempts, all failing
        assert not runner.healthy and runner.error is None

        # It is "up" again: the runner reconnects by itself and /ready follows.
        down = False
        wait_for(lambda: runner.healthy, 10, "the runner to reconnect")
        assert runner.reconnects >= 1
        assert org.client.get("/ready").status_code == 200

        # It resumed from its stored position: a new write is applied once, and read.
        replace_dead_connections(service)
        kr = o["key_results"][0]["id"]
        r = org.client.post(
            f"/objectives/{o['id']}/key-results/{kr}/check-ins",
            json={"current": 42},
            headers=org.h("bailu"),
        )
        assert r.status_code == 201, r.text
        [listed] = org.client.get("/objectives", headers=org.h("bailu")).json()
        assert listed["key_results"][0]["current"] == 42
        activity = org.client.get(f"/objectives/{o['id']}/activity", headers=org.h("bailu"))
        versions = [a["version"] for a in activity.json()]
        assert versions == list(range(1, len(versions) + 1))  # nothing applied twice or skipped
        last = service.app.recorder.max_notification_id()
        assert store.next_offset(service.app.name, 0) == last
