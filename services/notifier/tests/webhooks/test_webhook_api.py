"""Webhooks' API: a member's webhook, the organisation's (admins only), and the deliveries
with their failures visible."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from okr_platform.clock import FakeClock

from .webhook_kit import (
    ADMIN,
    MEMBER,
    ORG,
    SECRET,
    START,
    STRANGER,
    FakeService,
    Receiver,
    api_client,
    notify,
    settings,
)


def test_a_member_sets_reads_and_removes_their_webhook(
    any_webhook_store: Any, webhook_clock: FakeClock
) -> None:
    client = api_client(FakeService(any_webhook_store, settings(), webhook_clock))
    body = {"url": "https://hooks.example.com/okr?x=1", "secret": SECRET}

    assert client.get("/webhooks/me", headers=MEMBER).status_code == 404
    created = client.put("/webhooks/me", json=body, headers=MEMBER)
    assert created.status_code == 200, created.text
    assert created.json() == {
        "scope": "member",
        "owner_id": "m1",
        "url": body["url"],
        "secret_hint": "…cret",
        "created_at": "2025-03-03T02:00:00Z",
        "updated_at": "2025-03-03T02:00:00Z",
    }
    webhook_clock.advance(timedelta(minutes=1))
    changed = client.put(
        "/webhooks/me", json={**body, "url": "http://127.0.0.1:8080/h"}, headers=MEMBER
    ).json()
    assert changed["url"] == "http://127.0.0.1:8080/h"
    assert changed["created_at"] == "2025-03-03T02:00:00Z"
    assert changed["updated_at"] == "2025-03-03T02:01:00Z"
    fetched = client.get("/webhooks/me", headers=MEMBER)
    assert fetched.json() == changed and SECRET not in fetched.text
    assert client.get("/webhooks/me", headers={"Authorization": "Bearer m2"}).status_code == 404

    assert client.delete("/webhooks/me", headers=MEMBER).status_code == 204
    assert client.delete("/webhooks/me", headers=MEMBER).status_code == 404
    assert client.get("/webhooks/me", headers=MEMBER).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x", "secret": SECRET}, "url"),
        ({"url": "https:///no-host", "secret": SECRET}, "url"),
        ({"url": "https://example.com:99999/", "secret": SECRET}, "url"),
        ({"url": "https://exa mple.com/", "secret": SECRET}, "url"),
        ({"url": "https://example.com/", "secret": "short"}, "secret"),
        ({"url": "https://example.com/"}, "secret"),
        ({"url": "https://example.com/", "secret": SECRET, "extra": 1}, "extra"),
    ],
)
def test_a_webhook_needs_an_http_url_and_a_long_secret(
    webhook_store: Any, body: dict[str, Any], field: str
) -> None:
    client = api_client(FakeService(webhook_store, settings(), FakeClock(START)))
    response = client.put("/webhooks/me", json=body, headers=MEMBER)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field


def test_only_admins_manage_the_org_webhook_and_see_its_deliveries(
    webhook_store: Any, webhook_receiver: Receiver, make_worker: Any
) -> None:
    service = FakeService(webhook_store, settings(), FakeClock(START))
    client = api_client(service)
    body = {"url": webhook_receiver.url, "secret": SECRET}

    assert client.put("/webhooks/org", json=body).status_code == 401
    refused = client.put("/webhooks/org", json=body, headers=MEMBER)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert client.get("/webhooks/org/deliveries", headers=MEMBER).status_code == 403
    assert client.put("/webhooks/me", json=body, headers=STRANGER).status_code == 404
    created = client.put("/webhooks/org", json=body, headers=ADMIN)
    assert (created.status_code, created.json()["owner_id"]) == (200, ORG)

    webhook_receiver.then(410)
    ids = [notify(webhook_store, "m1") for _ in range(5)]
    assert make_worker(webhook_store).run_once() == 5

    page = client.get("/webhooks/org/deliveries?limit=3", headers=ADMIN).json()
    assert [d["notification_id"] for d in page["items"]] == ids[:1:-1]  # newest first
    after = page["next_after"]
    rest = client.get(f"/webhooks/org/deliveries?limit=3&after={after}", headers=ADMIN).json()
    assert ([d["notification_id"] for d in rest["items"]], rest["next_after"]) == (ids[1::-1], None)
    failed = client.get("/webhooks/org/deliveries?status=failed", headers=ADMIN).json()["items"]
    assert [(d["notification_id"], d["last_status_code"]) for d in failed] == [(ids[0], 410)]
    assert client.get("/webhooks/me/deliveries", headers=MEMBER).json()["items"] == []
    bad_status = client.get("/webhooks/org/deliveries?status=lost", headers=ADMIN)
    assert (bad_status.status_code, bad_status.json()["field"]) == (422, "status")

    not_failed = client.post(f"/webhooks/org/deliveries/{ids[1]}/retry", headers=ADMIN)
    assert (not_failed.status_code, not_failed.json()["code"]) == (422, "delivery_not_failed")
    unknown = client.post("/webhooks/org/deliveries/999999/retry", headers=ADMIN)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "delivery_not_found")
    assert (
        client.post(f"/webhooks/org/deliveries/{ids[0]}/retry", headers=MEMBER).status_code == 403
    )
    retried = client.post(f"/webhooks/org/deliveries/{ids[0]}/retry", headers=ADMIN)
    assert retried.json()["status"] == "pending"
