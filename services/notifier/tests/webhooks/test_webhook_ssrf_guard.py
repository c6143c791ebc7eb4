"""Webhooks: the SSRF guard, at registration and in the connection (DNS faked: no test resolves
a name on the network)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from okr_notifier.webhooks import ssrf_guard
from okr_notifier.webhooks.records import save_webhook
from okr_notifier.webhooks.ssrf_guard import UnsafeTarget, guarded_client
from okr_platform.clock import FakeClock

from .webhook_kit import (
    ADMIN,
    CIPHER,
    MEMBER,
    ORG,
    PUBLIC_V4,
    PUBLIC_V6,
    SECRET,
    START,
    FakeDNS,
    FakeService,
    Receiver,
    api_client,
    delivery,
    notify,
    settings,
)


def guarded(store: Any, clock: FakeClock | None = None) -> TestClient:
    """The API with the guard on (the default outside tests and the local stack)."""
    guard_on = settings(webhook_allow_private_targets=False)
    return api_client(FakeService(store, guard_on, clock or FakeClock(START)))


GOOD = {"url": "https://hooks.example.com/okr", "secret": SECRET}
INVALID, FORBIDDEN = "invalid_input", "webhook_target_forbidden"


@pytest.mark.parametrize(
    ("url", "code", "detail"),
    [
        ("http://hooks.example.com/okr", INVALID, "the URL must start with https://"),
        ("https://me:pw@hooks.example.com/", INVALID, "must not contain a user name"),
        ("https://me@hooks.example.com/", INVALID, "must not contain a user name"),
        ("https://nowhere.example.com/", INVALID, "nowhere.example.com does not resolve"),
        ("https://127.000.000.001/", INVALID, "the URL is malformed"),
        ("https://127.0.0.1:8443/", FORBIDDEN, "127.0.0.1 is not a public address (loopback)"),
        ("https://localhost/", FORBIDDEN, "localhost resolves to 127.0.0.1, not a public"),
        ("https://2130706433/", FORBIDDEN, "resolves to 127.0.0.1, not a public"),
        ("https://0x7f.1/", FORBIDDEN, "(loopback)"),
        ("https://[::1]/", FORBIDDEN, "::1 is not a public address (loopback)"),
        ("https://169.254.169.254/latest/meta-data/", FORBIDDEN, "(link-local)"),
        ("https://metadata.example.com/", FORBIDDEN, "resolves to 169.254.169.254"),
        ("https://10.0.0.1/", FORBIDDEN, "(private)"),
        ("https://172.16.5.4/", FORBIDDEN, "(private)"),
        ("https://192.168.1.1/", FORBIDDEN, "(private)"),
        ("https://intranet.example.com/", FORBIDDEN, "resolves to 10.1.2.3, not a public"),
        ("https://mixed.example.com/", FORBIDDEN, "resolves to 192.168.1.10"),
        ("https://0.0.0.0/", FORBIDDEN, "(unspecified)"),
        ("https://[::]/", FORBIDDEN, "(unspecified)"),
        ("https://224.0.0.251/", FORBIDDEN, "(multicast)"),
        ("https://[ff02::1]/", FORBIDDEN, "(multicast)"),
        ("https://240.0.0.1/", FORBIDDEN, "(reserved)"),
        ("https://100.64.0.1/", FORBIDDEN, "(non-global)"),
        ("https://[fe80::1]/", FORBIDDEN, "(link-local)"),
        ("https://[fc00::1]/", FORBIDDEN, "(private)"),
        ("https://[fec0::1]/", FORBIDDEN, "(site-local)"),
        ("https://[::ffff:127.0.0.1]/", FORBIDDEN, "(IPv4-mapped loopback)"),
        ("https://[::ffff:10.0.0.1]/", FORBIDDEN, "(IPv4-mapped private)"),
        ("https://[2002:a00:1::]/", FORBIDDEN, "(6to4 private)"),
        ("https://[64:ff9b::a9fe:a9fe]/", FORBIDDEN, "(NAT64 link-local)"),
    ],
)  # fmt: skip
def test_the_guard_refuses_internal_and_unsafe_urls_and_changes_nothing(
    webhook_store: Any, dns: FakeDNS, url: str, code: str, detail: str
) -> None:
    client = guarded(webhook_store)
    assert client.put("/webhooks/me", json=GOOD, headers=MEMBER).status_code == 200
    before = client.get("/webhooks/me", headers=MEMBER).json()

    response = client.put("/webhooks/me", json={"url": url, "secret": SECRET}, headers=MEMBER)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["field"], problem["code"], problem["status"]) == ("url", code, 422)
    assert problem["type"] == f"https://okr.example/problems/{code}"
    assert detail in problem["detail"], problem["detail"]
    assert client.get("/webhooks/me", headers=MEMBER).json() == before  # unchanged
    org = client.put("/webhooks/org", json={"url": url, "secret": SECRET}, headers=ADMIN)
    assert (org.status_code, org.json()["code"]) == (422, code)
    assert client.get("/webhooks/org", headers=ADMIN).status_code == 404  # nothing stored
    rows = webhook_store.query("SELECT scope, url FROM webhooks")
    assert [dict(row) for row in rows] == [{"scope": "member", "url": GOOD["url"]}]


@pytest.mark.parametrize(
    ("url", "looked_up"),
    [
        ("https://hooks.example.com/okr?x=1", "hooks.example.com"),
        ("https://hooks.example.com:8443/okr", "hooks.example.com"),
        ("https://bücher.example/h", "xn--bcher-kva.example"),
        (f"https://{PUBLIC_V4}/h", PUBLIC_V4),
        (f"https://[{PUBLIC_V6}]/h", PUBLIC_V6),
        ("https://[64:ff9b::5db8:d70e]/h", "64:ff9b::5db8:d70e"),  # NAT64 of a public address
    ],
)
def test_the_guard_accepts_an_https_url_of_public_addresses(
    webhook_store: Any, dns: FakeDNS, url: str, looked_up: str
) -> None:
    client = guarded(webhook_store)
    response = client.put("/webhooks/me", json={"url": url, "secret": SECRET}, headers=MEMBER)
    assert response.status_code == 200, response.text
    assert response.json()["url"] == url
    assert dns.lookups == [looked_up]


def test_allowing_private_targets_accepts_http_and_local_addresses_but_never_userinfo(
    webhook_store: Any, dns: FakeDNS
) -> None:
    client = api_client(FakeService(webhook_store, settings(), FakeClock(START)))
    for url in ("http://127.0.0.1:8080/h", "https://10.0.0.1/h", "http://receiver.internal/h"):
        response = client.put("/webhooks/me", json={"url": url, "secret": SECRET}, headers=MEMBER)
        assert response.status_code == 200, response.text
    assert dns.lookups == []  # no check, no lookup
    refused = client.put(
        "/webhooks/me", json={"url": "http://me:pw@127.0.0.1/h", "secret": SECRET}, headers=MEMBER
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "url")


def test_the_system_resolver_reads_numeric_hosts_as_the_connection_would() -> None:
    loopback = [ipaddress.ip_address("127.0.0.1")]
    assert ssrf_guard.resolve_host("2130706433", 443) == loopback
    assert ssrf_guard.resolve_host("0x7f.1", 443) == loopback
    assert ssrf_guard.resolve_host("::1", 443) == [ipaddress.ip_address("::1")]


def test_a_name_that_resolves_to_a_private_address_at_delivery_fails_at_once_visibly(
    webhook_store: Any,
    dns: FakeDNS,
    webhook_receiver: Receiver,
    make_worker: Any,
    webhook_clock: FakeClock,
) -> None:
    # DNS rebinding: public when registered, the notifier's own machine when delivered.
    dns.names["rebind.example.com"] = [PUBLIC_V4]
    client = guarded(webhook_store, webhook_clock)
    url = f"https://rebind.example.com:{webhook_receiver.port}/hook"
    assert client.put(
        "/webhooks/me", json={"url": url, "secret": SECRET}, headers=MEMBER
    ).is_success
    dns.names["rebind.example.com"] = ["127.0.0.1"]
    notification_id = notify(webhook_store)
    worker = make_worker(webhook_store, webhook_allow_private_targets=False)

    assert worker.run_once() == 1
    webhook_clock.advance(timedelta(hours=1))
    assert worker.run_once() == 0  # failed for good: no retry

    expected = (
        "refused by the SSRF guard: the URL's host rebind.example.com resolves to 127.0.0.1, "
        "not a public address (loopback)"
    )
    row = delivery(webhook_store, notification_id)
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("failed", 1, None)
    assert (row["last_error"], row["next_attempt_at"]) == (expected, None)
    assert webhook_receiver.requests == [] and worker.failed == 1
    page = client.get("/webhooks/me/deliveries?status=failed", headers=MEMBER).json()
    assert [(d["notification_id"], d["last_error"]) for d in page["items"]] == [
        (notification_id, expected)
    ]


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://127.0.0.1:{port}/hook", "the URL must start with https://"),
        ("https://127.0.0.1:{port}/hook", "127.0.0.1 is not a public address (loopback)"),
        ("https://localhost:{port}/hook", "resolves to 127.0.0.1, not a public address"),
    ],
)
def test_a_webhook_stored_while_private_targets_were_allowed_is_refused_once_they_are_not(
    webhook_store: Any,
    dns: FakeDNS,
    webhook_receiver: Receiver,
    make_worker: Any,
    url: str,
    error: str,
) -> None:
    url = url.format(port=webhook_receiver.port)
    save_webhook(webhook_store, ORG, "member", "m1", url, SECRET, "x", cipher=CIPHER)
    notification_id = notify(webhook_store)
    assert make_worker(webhook_store, webhook_allow_private_targets=False).run_once() == 1
    row = delivery(webhook_store, notification_id)
    assert row["status"] == "failed"
    assert row["last_error"].startswith("refused by the SSRF guard: ")
    assert error in row["last_error"]
    assert webhook_receiver.requests == []


def test_a_name_that_no_longer_resolves_is_retried_not_refused(
    webhook_store: Any, dns: FakeDNS, make_worker: Any
) -> None:
    url = "https://gone.example.com/h"
    save_webhook(webhook_store, ORG, "member", "m1", url, SECRET, "x", cipher=CIPHER)
    notification_id = notify(webhook_store)
    assert make_worker(webhook_store, webhook_allow_private_targets=False).run_once() == 1
    row = delivery(webhook_store, notification_id)
    assert row["status"] == "pending"
    assert row["last_error"].startswith("ConnectError: the host gone.example.com does not resolve")


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(
    dns: FakeDNS, webhook_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend 127.0.0.1 is public, so the guarded client reaches the local receiver through a
    # name only the fake DNS knows: the connection used the guard's answer, not a second lookup.
    real_kind = ssrf_guard.forbidden_kind
    monkeypatch.setattr(
        ssrf_guard, "forbidden_kind", lambda a: None if str(a) == "127.0.0.1" else real_kind(a)
    )
    dns.names["pinned.test"] = ["127.0.0.1"]
    url = f"http://pinned.test:{webhook_receiver.port}/hook"
    with guarded_client(settings(webhook_allow_private_targets=False)) as client:
        assert client.post(url, content=b"{}").status_code == 200
    assert dns.lookups == ["pinned.test"]
    [received] = webhook_receiver.requests
    assert received.headers["host"] == f"pinned.test:{webhook_receiver.port}"

    dns.names["pinned.test"] = ["127.0.0.1", "10.9.8.7"]  # one internal address is enough
    with (
        guarded_client(settings(webhook_allow_private_targets=False)) as client,
        pytest.raises(UnsafeTarget, match=r"resolves to 10\.9\.8\.7"),
    ):
        client.post(url, content=b"{}")
    assert len(webhook_receiver.requests) == 1
