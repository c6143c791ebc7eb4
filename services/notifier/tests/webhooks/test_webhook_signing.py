"""Webhooks: a delivery's signature, its body and headers, and the deliveries a notification
queues."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from okr_notifier.webhooks.delivery_queue import enqueue_deliveries
from okr_notifier.webhooks.signing import sign, verify
from okr_platform.clock import utc_text

from .webhook_kit import (
    ORG,
    SECRET,
    START,
    Receiver,
    add_webhook,
    delivery,
    notify,
)


def test_a_signature_verifies_only_with_its_secret_body_and_a_recent_timestamp() -> None:
    body = b'{"id":1}'
    now = 1_700_000_000
    signature = sign(SECRET, now, body)
    assert signature == (
        "sha256=" + hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    )
    assert verify(SECRET, str(now), body, signature, now=now + 10)
    assert not verify("another-secret-0000", now, body, signature, now=now)
    assert not verify(SECRET, now, b'{"id":2}', signature, now=now)
    assert not verify(SECRET, now - 301, body, sign(SECRET, now - 301, body), now=now)  # replay
    assert not verify(SECRET, "yesterday", body, signature, now=now)


def test_a_notification_is_posted_signed_with_its_text_in_both_languages(
    any_webhook_store: Any, webhook_receiver: Receiver, make_worker: Any
) -> None:
    store = any_webhook_store
    add_webhook(store, webhook_receiver)
    notification_id = notify(store)

    assert make_worker(store).run_once() == 1

    [request] = webhook_receiver.requests
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == f"notification-{notification_id}"
    assert headers["x-okr-delivery-attempt"] == "1"
    timestamp = headers["x-okr-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert headers["x-okr-signature"] == "sha256=" + expected.hexdigest()
    assert verify(SECRET, timestamp, request.body, headers["x-okr-signature"])
    body = request.json
    assert body["id"] == notification_id
    assert body["recipient_id"] == "m1"
    assert body["params"]["objective_title"] == "Grow revenue"
    assert body["text"]["en"] == "“Grow revenue” is behind pace: 20% done, 50% expected."
    assert body["text"]["zh"] == "目标「Grow revenue」进度落后：已完成 20%，应完成 50%。"

    row = delivery(store, notification_id)
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 1, 200)
    assert row["delivered_at"] == utc_text(START) and row["next_attempt_at"] is None
    assert make_worker(store).run_once() == 0  # nothing is sent twice


def test_member_and_org_webhooks_each_get_a_delivery_queued_once(
    webhook_store: Any, webhook_receiver: Receiver
) -> None:
    add_webhook(webhook_store, webhook_receiver, "member", "m1")
    add_webhook(webhook_store, webhook_receiver, "org")
    to_m1 = notify(webhook_store, "m1")
    to_m2 = notify(webhook_store, "m2")  # m2 has no webhook of their own
    with webhook_store.transaction() as tx:
        enqueue_deliveries(tx, to_m1, ORG, "m1", utc_text(START))  # again: no effect
    rows = webhook_store.query(
        "SELECT notification_id, scope, owner_id FROM deliveries ORDER BY notification_id, scope"
    )
    assert [tuple(dict(r).values()) for r in rows] == [
        (to_m1, "member", "m1"),
        (to_m1, "org", ORG),
        (to_m2, "org", ORG),
    ]
