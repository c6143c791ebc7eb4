"""The notifier end to end on real Kafka and PostgreSQL: a check-in over HTTP on goals is
published by the relay, consumed by the notifier's consumer group, and lands in a follower's
inbox and on their live stream; a rebuild from offset 0 gives the projections the live
consumer built."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from okr_notifier.application import FollowsApplication
from okr_notifier.main import NotifierContext
from okr_notifier.rebuild import rebuild, snapshot
from okr_notifier.service import NotifierService, open_store
from okr_platform.serving import serve_contexts
from okr_testkit.notifier import postgres_settings
from psycopg import sql

from conftest import Stack, wait_for


@pytest.fixture
def notifier(stack: Stack) -> Iterator[tuple[TestClient, NotifierService]]:
    suffix = uuid.uuid4().hex[:10]
    settings = postgres_settings(
        stack.dsn, f"e2e_notifier_{suffix}", topics=[stack.topic], group_id=f"notifier-{suffix}"
    )
    context = NotifierContext(settings, kafka=stack.kafka)
    client = TestClient(serve_contexts("notifier under test", [context], "okr-notifier"))
    client.__enter__()
    try:
        yield client, context._service()
    finally:
        client.__exit__(None, None, None)
        with psycopg.connect(stack.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(settings.postgres_schema)
                )
            )


def caught_up(stack: Stack, service: NotifierService) -> bool:
    """The relay has published every stored goals event (the topic may hold duplicates, never
    fewer) and the notifier has applied every message (positions = ends of the partitions).
    Without the first half the check passes while the relay is still behind."""
    stored = len(stack.stored_events())
    messages = stack.read_topic(timeout=2)
    if len(messages) < stored:
        return False
    ends: dict[int, int] = {}
    for message in messages:
        ends[message.partition()] = max(ends.get(message.partition(), 0), message.offset() + 1)
    return all((service.store.next_offset(stack.topic, p) or 0) >= end for p, end in ends.items())


def test_a_check_in_on_goals_reaches_the_followers_inbox_and_stream(stack: Stack, notifier):
    client, _ = notifier
    org = stack.org()
    stack.relay_thread()
    objective = org.active_objective("bailu")
    kr = objective["key_results"][0]["id"]
    follow_path = f"/objectives/{objective['id']}/follow"
    wait_for(
        lambda: client.put(follow_path, headers=org.h("mengbo")).status_code == 200,
        20,
        "the notifier to learn of the objective from Kafka",
    )

    def check_in(value: int) -> None:
        r = org.client.post(
            f"/objectives/{objective['id']}/key-results/{kr}/check-ins",
            json={"current": value, "confidence": 1},
            headers=org.h("bailu"),
        )
        assert r.status_code == 201, r.text

    check_in(30)
    inbox = wait_for(
        lambda: client.get("/notifications", headers=org.h("mengbo")).json()["items"],
        20,
        "the progress-updated notification",
    )
    assert [n["rule"] for n in inbox] == ["progress_updated"]
    assert inbox[0]["params"]["confidence_after"] == 1

    with client.stream("GET", "/notifications/stream", headers=org.h("mengbo")) as response:
        threading.Timer(0.3, check_in, args=(55,)).start()
        for line in response.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line.split(":", 1)[1])
                break
    assert event["rule"] == "progress_updated" and event["params"]["value_after"] == 55


def test_a_rebuild_from_offset_zero_equals_the_live_projections(stack: Stack, notifier):
    client, service = notifier
    org = stack.org()
    stack.relay_thread()
    objectives = [org.active_objective("bailu") for _ in range(3)]
    wait_for(lambda: caught_up(stack, service), 20, "the notifier to catch up")
    for objective in objectives:
        assert (
            client.put(f"/objectives/{objective['id']}/follow", headers=org.h("mengbo")).status_code
            == 200
        )
    for value in (10, 20, 35):
        for objective in objectives:
            r = org.client.post(
                f"/objectives/{objective['id']}/key-results/"
                f"{objective['key_results'][0]['id']}/check-ins",
                json={"current": value, "confidence": 2},
                headers=org.h("bailu"),
            )
            assert r.status_code == 201
    org.client.patch(
        f"/objectives/{objectives[0]['id']}", json={"title": "新标题"}, headers=org.h("bailu")
    )
    wait_for(lambda: caught_up(stack, service), 20, "the notifier to catch up")
    live = snapshot(service.store)
    notifications = service.reads.max_id()
    assert len(live["progress_history"]) == 3 * (1 + 3 * 2)
    settings = service.settings
    client.__exit__(None, None, None)  # the live notifier stops (the fixture's exit is a no-op)

    store = open_store(settings)
    follows = FollowsApplication(env=settings.event_store_env())
    try:
        result = rebuild(settings, store, follows, stack.kafka, batch_size=7)
        assert result.dead_lettered == 0 and result.events >= 3 * 6
        assert snapshot(store) == live
        assert store.query("SELECT MAX(id) AS n FROM notifications")[0]["n"] == notifications
    finally:
        follows.close()
        store.datastore.close()
