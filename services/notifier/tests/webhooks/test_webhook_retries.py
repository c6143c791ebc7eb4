"""Webhooks: retries with exponential backoff and jitter under the same idempotency key,
Retry-After honoured, permanent failures, and a failed delivery queued again."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from okr_notifier.webhooks.delivery_worker import DeliveryWorker
from okr_notifier.webhooks.records import save_webhook
from okr_platform.clock import FakeClock, utc_text

from .webhook_kit import (
    CIPHER,
    MEMBER,
    ORG,
    SECRET,
    START,
    FakeService,
    Receiver,
    add_webhook,
    api_client,
    delivery,
    notify,
    settings,
)


def test_a_failing_receiver_is_retried_with_backoff_under_the_same_idempotency_key(
    any_webhook_store: Any, webhook_receiver: Receiver, make_worker: Any, webhook_clock: FakeClock
) -> None:
    store = any_webhook_store
    add_webhook(store, webhook_receiver)
    webhook_receiver.then(500, times=2)
    notification_id = notify(store)
    worker = make_worker(store, webhook_max_attempts=5, webhook_backoff_seconds=2.0)

    assert worker.run_once() == 1
    row = delivery(store, notification_id)
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("pending", 1, 500)
    assert row["last_error"] == "HTTP 500 Internal Server Error: nope"
    assert row["next_attempt_at"] == utc_text(START + timedelta(seconds=2))  # backoff * 2**0

    assert worker.run_once() == 0  # not due yet
    webhook_clock.advance(timedelta(seconds=2))
    assert worker.run_once() == 1
    row = delivery(store, notification_id)
    assert row["attempts"] == 2
    assert row["next_attempt_at"] == utc_text(START + timedelta(seconds=2 + 4))  # backoff * 2**1

    webhook_clock.advance(timedelta(seconds=4))
    assert worker.run_once() == 1
    row = delivery(store, notification_id)
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 3, 200)
    assert row["last_error"] is None

    assert webhook_receiver.keys() == [f"notification-{notification_id}"] * 3
    attempts = [r.headers["x-okr-delivery-attempt"] for r in webhook_receiver.requests]
    assert attempts == ["1", "2", "3"]
    assert len({r.body for r in webhook_receiver.requests}) == 1  # the same body each time


def test_backoff_has_a_small_jitter(webhook_store: Any, webhook_clock: FakeClock) -> None:
    worker = DeliveryWorker(webhook_store, settings(webhook_backoff_seconds=2.0), webhook_clock)
    try:
        delays = {worker.retry_delay(3) for _ in range(20)}
        assert all(8.0 <= d <= 8.8 for d in delays) and len(delays) > 1
        assert worker.retry_delay(3, retry_after=30) == 30
    finally:
        worker.close()


def test_429_and_503_honour_retry_after_and_408_is_retried(
    webhook_store: Any, webhook_receiver: Receiver, make_worker: Any
) -> None:
    add_webhook(webhook_store, webhook_receiver)
    webhook_receiver.then(429, {"Retry-After": "30"}).then(503, {"Retry-After": "7"}).then(408)
    first, second, third = notify(webhook_store), notify(webhook_store), notify(webhook_store)

    assert make_worker(webhook_store).run_once() == 3

    rows = [delivery(webhook_store, n) for n in (first, second, third)]
    assert [(r["status"], r["last_status_code"]) for r in rows] == [
        ("pending", 429),
        ("pending", 503),
        ("pending", 408),
    ]
    assert rows[0]["next_attempt_at"] == utc_text(START + timedelta(seconds=30))
    assert rows[1]["next_attempt_at"] == utc_text(START + timedelta(seconds=7))
    assert rows[2]["next_attempt_at"] == utc_text(START + timedelta(seconds=2))


def test_a_4xx_answer_fails_at_once(
    webhook_store: Any, webhook_receiver: Receiver, make_worker: Any, webhook_clock: FakeClock
) -> None:
    add_webhook(webhook_store, webhook_receiver)
    webhook_receiver.then(400)
    notification_id = notify(webhook_store)
    worker = make_worker(webhook_store)

    assert worker.run_once() == 1
    webhook_clock.advance(timedelta(hours=1))
    assert worker.run_once() == 0

    row = delivery(webhook_store, notification_id)
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("failed", 1, 400)
    assert row["last_error"] == "HTTP 400 Bad Request: nope"
    assert row["next_attempt_at"] is None and len(webhook_receiver.requests) == 1


def test_timeouts_and_refused_connections_are_retried(
    webhook_store: Any, webhook_receiver: Receiver, make_worker: Any
) -> None:
    add_webhook(webhook_store, webhook_receiver, owner="m1")
    save_webhook(
        webhook_store, ORG, "member", "m2", "http://127.0.0.1:9/closed", SECRET, "x", cipher=CIPHER
    )
    webhook_receiver.then("hang")
    hung, refused = notify(webhook_store, "m1"), notify(webhook_store, "m2")

    started = time.monotonic()
    assert make_worker(webhook_store, webhook_timeout_seconds=0.2).run_once() == 2
    assert time.monotonic() - started < 2

    hung_row, refused_row = delivery(webhook_store, hung), delivery(webhook_store, refused)
    assert (hung_row["status"], hung_row["last_status_code"]) == ("pending", None)
    assert hung_row["last_error"].startswith("timed out after 0.2 s")
    assert refused_row["status"] == "pending"
    assert refused_row["last_error"].startswith("ConnectError")


def test_after_the_last_attempt_the_delivery_fails_visibly_and_can_be_retried(
    any_webhook_store: Any,
    webhook_receiver: Receiver,
    make_worker: Any,
    webhook_clock: FakeClock,
) -> None:
    store = any_webhook_store
    add_webhook(store, webhook_receiver)
    webhook_receiver.then(502, times=3)
    notification_id = notify(store)
    worker = make_worker(store, webhook_max_attempts=3)

    for _ in range(3):
        assert worker.run_once() == 1
        webhook_clock.advance(timedelta(minutes=5))
    assert worker.run_once() == 0

    row = delivery(store, notification_id)
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("failed", 3, 502)
    assert row["last_error"] == "gave up after 3 attempts; last: HTTP 502 Bad Gateway: nope"

    service = FakeService(store, worker.settings, webhook_clock)
    client = api_client(service)
    page = client.get("/webhooks/me/deliveries?status=failed", headers=MEMBER).json()
    assert [(d["notification_id"], d["status"], d["attempts"]) for d in page["items"]] == [
        (notification_id, "failed", 3)
    ]
    assert page["items"][0]["last_status_code"] == 502
    assert page["items"][0]["last_error"].startswith("gave up after 3 attempts")

    retried = client.post(f"/webhooks/me/deliveries/{notification_id}/retry", headers=MEMBER)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    assert service.woken == 1
    assert worker.run_once() == 1
    assert delivery(store, notification_id)["status"] == "delivered"
    assert webhook_receiver.keys() == [f"notification-{notification_id}"] * 4


def test_removing_a_webhook_fails_its_pending_deliveries(
    webhook_store: Any, webhook_receiver: Receiver, make_worker: Any
) -> None:
    add_webhook(webhook_store, webhook_receiver)
    notification_id = notify(webhook_store)
    client = api_client(FakeService(webhook_store, settings(), FakeClock(START)))

    assert client.delete("/webhooks/me", headers=MEMBER).status_code == 204
    assert make_worker(webhook_store).run_once() == 0
    row = delivery(webhook_store, notification_id)
    assert (row["status"], row["last_error"]) == ("failed", "the webhook was removed")
    assert webhook_receiver.requests == []
