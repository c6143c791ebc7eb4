"""Outgoing webhooks: signing and retries against a local HTTP receiver, two replicas on
PostgreSQL delivering each notification once, the API that shows failures, the SSRF guard, and
the signing secrets encrypted at rest (rotation, rows stored in plain text before, keys that
no longer decrypt, the keys' settings).

The clock is frozen: a retry becomes due when the test advances the clock, never by sleeping.
The local receiver listens on 127.0.0.1, so `settings()` allows private targets; the guard's
tests turn that off and fake DNS (`dns`): no test resolves a name on the network."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from fastapi import FastAPI
from fastapi.testclient import TestClient
from okr_notifier import schema, webhooks
from okr_notifier.settings import NotifierSettings
from okr_notifier.webhook_api import build_webhook_router
from okr_notifier.webhooks import (
    WEBHOOK_STATEMENTS,
    DeliveryWorker,
    SecretCipher,
    UnsafeTarget,
    enqueue_deliveries,
    guarded_client,
    save_webhook,
    secret_cipher,
    sign,
    utc_text,
    verify,
)
from okr_platform.auth import AuthenticationError
from okr_platform.clock import FakeClock
from okr_platform.errors import NotFound
from okr_platform.principal import Principal
from okr_platform.problems import install_problem_handlers
from okr_platform.settings import DEVELOPMENT_JWT_SECRET, InsecureConfiguration
from okr_testkit.notifier import WEBHOOK_SECRET_KEY
from okr_testkit.suite import Suite

try:
    from okr_events.consuming import open_consumer_store
except ImportError:  # while the store is being moved to its own module
    from okr_events.consumer_store import open_consumer_store  # type: ignore[no-redef]

ORG = "org-1"
SECRET = "s3cret-s3cret-s3cret"
START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


# ---- a local receiver ---------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every request; answers the queued behaviours first, then 200."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    behaviours: list[tuple[Any, ...]] = field(default_factory=list)
    delay: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def then(self, *behaviour: Any, times: int = 1) -> Receiver:
        """Queue ``times`` answers: (500,), (429, {"Retry-After": "30"}), ("hang",) ..."""
        self.behaviours.extend([behaviour] * times)
        return self

    def keys(self) -> list[str]:
        return [r.headers["idempotency-key"] for r in self.requests]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                behaviour = receiver.behaviours.pop(0) if receiver.behaviours else (200,)
            if receiver.delay:
                time.sleep(receiver.delay)
            if behaviour[0] == "hang":
                receiver.release.wait(5)  # past the client's timeout
                return
            status, headers = behaviour[0], (behaviour[1] if len(behaviour) > 1 else {})
            payload = b"nope" if status >= 300 else b"ok"
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    server.block_on_close = False  # type: ignore[attr-defined]
    receiver.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, args=(0.01,), name="webhook-receiver", daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---- stores, settings, a worker -----------------------------------------------------------------


def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Any, name: str = "notifier") -> Any:
    if kind == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        pg_schema = request.getfixturevalue("postgres_schema")
        store = open_consumer_store(name, postgres_conninfo=dsn, schema=pg_schema)
    else:
        store = open_consumer_store(name, sqlite_path=str(tmp_path / "n.sqlite3"))
    store.setup([*schema.statements(kind), *WEBHOOK_STATEMENTS])  # type: ignore[arg-type]
    request.addfinalizer(store.datastore.close)
    return store


@pytest.fixture
def webhook_store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    return _open("sqlite", request, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_webhook_store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    return _open(request.param, request, tmp_path)


@pytest.fixture
def webhook_clock() -> FakeClock:
    return FakeClock(START)


def settings(**overrides: Any) -> NotifierSettings:
    values: dict[str, Any] = {
        "webhook_max_attempts": 3,
        "webhook_backoff_seconds": 2.0,
        "webhook_timeout_seconds": 0.3,
        "webhook_poll_seconds": 0.05,
        "webhook_allow_private_targets": True,  # the receiver is on 127.0.0.1
    }
    return NotifierSettings(**(values | overrides))


#: The embedded default's cipher (the development key), as `settings()` has no keys.
CIPHER = secret_cipher(settings())


@pytest.fixture
def make_worker(webhook_clock: FakeClock) -> Iterator[Any]:
    workers: list[DeliveryWorker] = []

    def make(store: Any, **overrides: Any) -> DeliveryWorker:
        worker = DeliveryWorker(store, settings(**overrides), webhook_clock, jitter=lambda: 0.0)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.close()


def add_webhook(
    store: Any,
    receiver: Receiver,
    scope: str = "member",
    owner: str = "m1",
    cipher: SecretCipher = CIPHER,
) -> None:
    owner_id = ORG if scope == "org" else owner
    at = utc_text(START)
    save_webhook(store, ORG, scope, owner_id, receiver.url, SECRET, at, cipher=cipher)  # type: ignore[arg-type]


def notify(store: Any, recipient: str = "m1", at: datetime = START) -> int:
    """Store a notification and queue its deliveries, as the projection does."""
    with store._tx() as tx:
        rows = tx.execute(
            """INSERT INTO notifications (org_id, recipient_id, objective_id, rule, dedupe_key,
                message_key, params, link, created_at, raised_at)
            VALUES (:org_id, :recipient_id, 'obj-1', 'progress_warning', :dedupe_key,
                'progress_warning', :params, '/objectives/obj-1', :created_at, :created_at)
            RETURNING id""",
            {
                "org_id": ORG,
                "recipient_id": recipient,
                "dedupe_key": uuid.uuid4().hex,
                "params": json.dumps(
                    {"objective_title": "Grow revenue", "progress": 0.2, "expected": 0.5}
                ),
                "created_at": utc_text(at),
            },
        )
        notification_id = rows[0]["id"]
        enqueue_deliveries(tx, notification_id, ORG, recipient, utc_text(at))
    return notification_id


def delivery(store: Any, notification_id: int, scope: str = "member") -> dict[str, Any]:
    rows = store.query(
        "SELECT * FROM deliveries WHERE notification_id = :n AND scope = :s",
        {"n": notification_id, "s": scope},
    )
    return dict(rows[0])


# ---- signing ------------------------------------------------------------------------------------


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


# ---- delivering ---------------------------------------------------------------------------------


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
    with webhook_store._tx() as tx:
        enqueue_deliveries(tx, to_m1, ORG, "m1", utc_text(START))  # again: no effect
    rows = webhook_store.query(
        "SELECT notification_id, scope, owner_id FROM deliveries ORDER BY notification_id, scope"
    )
    assert [tuple(dict(r).values()) for r in rows] == [
        (to_m1, "member", "m1"),
        (to_m1, "org", ORG),
        (to_m2, "org", ORG),
    ]


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


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_workers_deliver_each_notification_exactly_once(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Any,
    webhook_receiver: Receiver,
    make_worker: Any,
) -> None:
    # Two replicas: each its own store (connection pool) on the same database.
    first_store = _open(kind, request, tmp_path, "replica-1")
    second_store = _open(kind, request, tmp_path, "replica-2")
    add_webhook(first_store, webhook_receiver, "org")
    ids = [notify(first_store, f"m{i % 5}") for i in range(40)]
    webhook_receiver.delay = 0.003  # let the two rounds overlap
    workers = [make_worker(first_store), make_worker(second_store)]
    attempted: list[int] = []
    barrier = threading.Barrier(2)

    def round_of(worker: DeliveryWorker) -> None:
        barrier.wait()
        attempted.append(worker.run_once())

    threads = [threading.Thread(target=round_of, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sum(attempted) == len(ids)
    assert sorted(webhook_receiver.keys()) == sorted(f"notification-{n}" for n in ids)
    statuses = first_store.query("SELECT status, attempts FROM deliveries")
    assert {(r["status"], r["attempts"]) for r in statuses} == {("delivered", 1)}
    if kind == "postgres":
        assert all(attempted), "both replicas took a share"


def test_the_worker_thread_delivers_when_woken_and_stops_promptly(
    webhook_store: Any, webhook_receiver: Receiver, webhook_clock: FakeClock
) -> None:
    add_webhook(webhook_store, webhook_receiver)
    worker = DeliveryWorker(webhook_store, settings(webhook_poll_seconds=30), webhook_clock)
    worker.start_thread("test-webhooks")
    try:
        time.sleep(0.05)  # the first round found nothing; the next is 30 s away unless woken
        notify(webhook_store)
        worker.wake()
        deadline = time.monotonic() + 3
        while not webhook_receiver.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(webhook_receiver.requests) == 1
    finally:
        started = time.monotonic()
        worker.close()
        assert time.monotonic() - started < 1
    assert worker.error is None


# ---- the API ------------------------------------------------------------------------------------

MEMBER = {"Authorization": "Bearer m1"}
ADMIN = {"Authorization": "Bearer boss:admin"}
STRANGER = {"Authorization": "Bearer x@other-org"}


class FakeService:
    """What the router needs; the principal is read from 'Bearer member[:role,role][@org]'."""

    def __init__(self, store: Any, settings: NotifierSettings, clock: FakeClock) -> None:
        self.store, self.settings, self.clock = store, settings, clock
        self.woken = 0

    def principal(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthenticationError("send Authorization: Bearer <token>")
        claims, _, org = authorization.removeprefix("Bearer ").partition("@")
        member, _, roles = claims.partition(":")
        return Principal(member, org or "acme", frozenset(filter(None, roles.split(","))))

    def org_id(self, principal: Principal) -> str:
        if principal.org != "acme":
            raise NotFound("no such organisation")
        return ORG

    def wake_webhooks(self) -> None:
        self.woken += 1


def api_client(service: FakeService) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(build_webhook_router(lambda: service))
    return TestClient(app)


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


# ---- the SSRF guard -----------------------------------------------------------------------------

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


@dataclass
class FakeDNS:
    """Names resolve to what ``names`` says; anything else only in its numeric forms
    (127.0.0.1, 2130706433, [::1] ...: never a lookup on the network)."""

    names: dict[str, list[str]]
    lookups: list[str] = field(default_factory=list)

    def resolve(self, host: str, port: int) -> list[Any]:
        self.lookups.append(host)
        if host in self.names:
            return [ipaddress.ip_address(a) for a in self.names[host]]
        infos = socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST)
        return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS(
        {
            "hooks.example.com": [PUBLIC_V4, PUBLIC_V6],
            "xn--bcher-kva.example": [PUBLIC_V4],  # bücher.example, as IDNA
            "localhost": ["127.0.0.1", "::1"],
            "metadata.example.com": ["169.254.169.254"],
            "intranet.example.com": ["10.1.2.3"],
            "mixed.example.com": [PUBLIC_V4, "192.168.1.10"],
        }
    )
    monkeypatch.setattr(webhooks, "resolve_host", fake.resolve)
    return fake


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
    assert webhooks.resolve_host("2130706433", 443) == loopback
    assert webhooks.resolve_host("0x7f.1", 443) == loopback
    assert webhooks.resolve_host("::1", 443) == [ipaddress.ip_address("::1")]


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
    real_kind = webhooks.forbidden_kind
    monkeypatch.setattr(
        webhooks, "forbidden_kind", lambda a: None if str(a) == "127.0.0.1" else real_kind(a)
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


# ---- signing secrets at rest --------------------------------------------------------------------

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def stored_secret(store: Any, scope: str = "member", owner: str = "m1") -> str:
    """The secret column of a webhook, as a database dump would show it."""
    rows = store.query(
        "SELECT secret FROM webhooks WHERE org_id = :o AND scope = :s AND owner_id = :w",
        {"o": ORG, "s": scope, "w": ORG if scope == "org" else owner},
    )
    return str(rows[0]["secret"])


def decrypts_with(key: str, stored: str) -> str | None:
    try:
        return Fernet(key).decrypt(stored.encode()).decode()
    except InvalidToken:
        return None


def add_plain_webhook(store: Any, url: str, owner: str = "m1") -> None:
    """A webhook as stored before secrets were encrypted (or by a replica of that version)."""
    store.query(
        """INSERT INTO webhooks (org_id, scope, owner_id, url, secret, created_at, updated_at)
        VALUES (:o, 'member', :w, :url, :secret, :at, :at)""",
        {"o": ORG, "w": owner, "url": url, "secret": SECRET, "at": utc_text(START)},
    )


def signed_with(request: Received, secret: str) -> bool:
    headers = request.headers
    return verify(secret, headers["x-okr-timestamp"], request.body, headers["x-okr-signature"])


def test_a_put_stores_the_secret_encrypted_and_deliveries_are_signed_with_it(
    any_webhook_store: Any, webhook_receiver: Receiver, make_worker: Any, webhook_clock: FakeClock
) -> None:
    store = any_webhook_store
    client = api_client(FakeService(store, settings(webhook_secret_keys=[KEY_A]), webhook_clock))
    body = {"url": webhook_receiver.url, "secret": SECRET}
    assert client.put("/webhooks/me", json=body, headers=MEMBER).status_code == 200

    stored = stored_secret(store)
    assert SECRET not in stored and webhooks.looks_encrypted(stored)
    assert decrypts_with(KEY_A, stored) == SECRET
    assert client.get("/webhooks/me", headers=MEMBER).json()["secret_hint"] == "…cret"

    notification_id = notify(store)
    worker = make_worker(store, webhook_secret_keys=[KEY_A])
    assert worker.run_once() == 1
    assert delivery(store, notification_id)["status"] == "delivered"
    [request] = webhook_receiver.requests
    assert signed_with(request, SECRET)
    assert worker.reencrypted == webhooks.Reencrypted()  # nothing to migrate
    assert stored_secret(store) == stored


def test_rotation_the_old_key_still_decrypts_and_the_new_one_encrypts(
    any_webhook_store: Any, webhook_receiver: Receiver, make_worker: Any, webhook_clock: FakeClock
) -> None:
    store = any_webhook_store
    add_webhook(store, webhook_receiver, owner="m1", cipher=SecretCipher([KEY_A]))
    assert decrypts_with(KEY_A, stored_secret(store, owner="m1")) == SECRET
    first = notify(store, "m1")

    # Rotated: B first, A still listed. The start-up pass moves the secret to B ...
    worker = make_worker(store, webhook_secret_keys=[KEY_B, KEY_A])
    assert worker.run_once() == 1
    assert worker.reencrypted == webhooks.Reencrypted(older_key=1)
    assert delivery(store, first)["status"] == "delivered"
    assert signed_with(webhook_receiver.requests[-1], SECRET)
    assert decrypts_with(KEY_A, stored_secret(store, owner="m1")) is None
    assert decrypts_with(KEY_B, stored_secret(store, owner="m1")) == SECRET

    # ... a secret stored under A after it (a replica not yet rotated) is moved at delivery ...
    add_webhook(store, webhook_receiver, owner="m2", cipher=SecretCipher([KEY_A]))
    second = notify(store, "m2")
    assert worker.run_once() == 1
    assert delivery(store, second)["status"] == "delivered"
    assert signed_with(webhook_receiver.requests[-1], SECRET)
    assert decrypts_with(KEY_B, stored_secret(store, owner="m2")) == SECRET

    # ... and a PUT encrypts with B.
    rotated = settings(webhook_secret_keys=f"{KEY_B},{KEY_A}")
    client = api_client(FakeService(store, rotated, webhook_clock))
    other = "another-secret-for-m1"
    body = {"url": webhook_receiver.url, "secret": other}
    assert client.put("/webhooks/me", json=body, headers=MEMBER).json()["secret_hint"] == "…r-m1"
    stored = stored_secret(store, owner="m1")
    assert decrypts_with(KEY_B, stored) == other and decrypts_with(KEY_A, stored) is None
    third = notify(store, "m1")
    assert worker.run_once() == 1
    assert delivery(store, third)["status"] == "delivered"
    assert signed_with(webhook_receiver.requests[-1], other)


def test_a_secret_no_configured_key_decrypts_fails_its_deliveries_for_good_visibly(
    any_webhook_store: Any, webhook_receiver: Receiver, make_worker: Any, webhook_clock: FakeClock
) -> None:
    store = any_webhook_store
    add_webhook(store, webhook_receiver, "member", cipher=SecretCipher([KEY_A]))
    add_webhook(store, webhook_receiver, "org", cipher=SecretCipher([KEY_A]))
    notification_id = notify(store)
    worker = make_worker(store, webhook_secret_keys=[KEY_B])  # A was rotated away

    assert worker.run_once() == 2  # nothing raised
    assert worker.reencrypted == webhooks.Reencrypted(undecryptable=2)
    webhook_clock.advance(timedelta(hours=1))
    assert worker.run_once() == 0  # failed for good: no retry
    assert webhook_receiver.requests == [] and worker.failed == 2 and worker.error is None
    member, org = delivery(store, notification_id), delivery(store, notification_id, "org")
    assert (member["status"], member["attempts"], member["next_attempt_at"]) == ("failed", 1, None)
    assert (
        member["last_error"]
        == webhooks.UNDECRYPTABLE
        == (
            "the webhook's secret cannot be decrypted with the configured "
            "NOTIFIER_WEBHOOK_SECRET_KEYS: set it again with PUT /webhooks/me"
        )
    )
    assert org["status"] == "failed"
    assert org["last_error"].endswith("set it again with PUT /webhooks/org")

    client = api_client(FakeService(store, worker.settings, webhook_clock))
    page = client.get("/webhooks/me/deliveries?status=failed", headers=MEMBER).json()
    assert [(d["notification_id"], d["last_error"]) for d in page["items"]] == [
        (notification_id, webhooks.UNDECRYPTABLE)
    ]
    assert client.get("/webhooks/me", headers=MEMBER).json()["secret_hint"] == (
        webhooks.UNREADABLE_HINT
    )

    # Set again (encrypted with B), the failed delivery can be retried and is delivered.
    body = {"url": webhook_receiver.url, "secret": SECRET}
    assert client.put("/webhooks/me", json=body, headers=MEMBER).json()["secret_hint"] == "…cret"
    retried = client.post(f"/webhooks/me/deliveries/{notification_id}/retry", headers=MEMBER)
    assert retried.status_code == 200, retried.text
    assert worker.run_once() == 1
    assert delivery(store, notification_id)["status"] == "delivered"
    assert signed_with(webhook_receiver.requests[-1], SECRET)


def test_a_secret_stored_in_plain_text_is_encrypted_at_start_up_and_still_delivered(
    any_webhook_store: Any, webhook_receiver: Receiver, make_worker: Any, webhook_clock: FakeClock
) -> None:
    store = any_webhook_store
    add_plain_webhook(store, webhook_receiver.url, "m1")
    assert stored_secret(store, owner="m1") == SECRET  # the legacy row
    client = api_client(FakeService(store, settings(webhook_secret_keys=[KEY_A]), webhook_clock))
    assert client.get("/webhooks/me", headers=MEMBER).json()["secret_hint"] == "…cret"

    worker = make_worker(store, webhook_secret_keys=[KEY_A])
    assert worker.run_once() == 0  # no delivery due: the start-up pass ran all the same
    assert worker.reencrypted == webhooks.Reencrypted(plain=1)
    stored = stored_secret(store, owner="m1")
    assert SECRET not in stored and decrypts_with(KEY_A, stored) == SECRET
    assert webhooks.reencrypt_secrets(store, worker.cipher) == webhooks.Reencrypted()  # idempotent
    assert stored_secret(store, owner="m1") == stored

    first = notify(store, "m1")
    assert worker.run_once() == 1
    assert delivery(store, first)["status"] == "delivered"
    assert signed_with(webhook_receiver.requests[-1], SECRET)

    # Stored in plain text after the start-up pass (a replica of the previous version, during a
    # rolling update): encrypted when its delivery meets it.
    add_plain_webhook(store, webhook_receiver.url, "m2")
    second, third = notify(store, "m2"), notify(store, "m2")
    assert worker.run_once() == 2
    assert [delivery(store, n)["status"] for n in (second, third)] == ["delivered"] * 2
    assert all(signed_with(r, SECRET) for r in webhook_receiver.requests)
    assert decrypts_with(KEY_A, stored_secret(store, owner="m2")) == SECRET


def test_a_rewrite_never_overwrites_a_secret_put_meanwhile(webhook_store: Any) -> None:
    cipher = SecretCipher([KEY_A])
    add_plain_webhook(webhook_store, "http://127.0.0.1:9/h")
    key = {"org_id": ORG, "scope": "member", "owner_id": "m1"}
    put_meanwhile = cipher.encrypt("the-new-secret-0000")
    with webhook_store._tx() as tx:
        assert webhooks.rewrite_secret(tx, key, SECRET, put_meanwhile)
    with webhook_store._tx() as tx:  # what a pass that read the plain row would write: refused
        assert not webhooks.rewrite_secret(tx, key, SECRET, cipher.encrypt(SECRET))
    assert stored_secret(webhook_store) == put_meanwhile


@pytest.mark.parametrize(
    "value",
    [
        SECRET,
        "0123456789abcdef0123456789abcdef",
        KEY_A,  # someone's secret could be a Fernet key: not a token
        "gAAAAABn" + "A" * 92,  # a token's prefix and length, but not whole AES blocks
        Fernet(KEY_A).encrypt(b"x").decode()[:-4],
        Fernet(KEY_A).encrypt(b"x").decode() + " ",
    ],
)
def test_only_a_fernet_token_is_taken_for_an_encrypted_secret(value: str) -> None:
    assert not webhooks.looks_encrypted(value)
    assert SecretCipher([KEY_A]).reveal(value) == webhooks.Revealed(value, "plain")


def test_a_token_of_any_configured_key_is_encrypted() -> None:
    for secret in ("x", SECRET, "s" * 256, "秘密" * 10):
        for key in (KEY_A, KEY_B):
            assert webhooks.looks_encrypted(Fernet(key).encrypt(secret.encode()).decode())
    cipher = SecretCipher([KEY_B, KEY_A])
    assert cipher.reveal(cipher.encrypt(SECRET)) == webhooks.Revealed(SECRET, "current")
    older = SecretCipher([KEY_A]).encrypt(SECRET)
    assert cipher.reveal(older) == webhooks.Revealed(SECRET, "older_key")
    with pytest.raises(webhooks.UndecryptableSecret):
        SecretCipher([KEY_B]).reveal(older)


# ---- the keys' settings -------------------------------------------------------------------------


def test_without_keys_the_development_key_serves_the_embedded_default_only() -> None:
    embedded = NotifierSettings()
    assert webhooks.webhook_secret_keys(embedded) == [webhooks.DEVELOPMENT_WEBHOOK_SECRET_KEY]
    assert webhooks.webhook_secret_keys(
        NotifierSettings(webhook_secret_keys=[webhooks.DEVELOPMENT_WEBHOOK_SECRET_KEY])
    ) == [webhooks.DEVELOPMENT_WEBHOOK_SECRET_KEY]
    assert webhooks.webhook_secret_keys(NotifierSettings(webhook_secret_keys=[KEY_A])) == [KEY_A]

    production = {"persistence": "postgres", "jwt_secret": "x" * 40}
    expected = (
        "NOTIFIER_WEBHOOK_SECRET_KEYS must be set to one or more real Fernet keys "
        "(comma-separated, the first encrypts) when NOTIFIER_PERSISTENCE is not the embedded "
        "'sqlite' default; generate one with: python -c \"from cryptography.fernet import "
        'Fernet; print(Fernet.generate_key().decode())"'
    )
    development = webhooks.DEVELOPMENT_WEBHOOK_SECRET_KEY
    for keys in ([], [development], [KEY_A, development]):
        refused = NotifierSettings(**production, webhook_secret_keys=keys)
        with pytest.raises(InsecureConfiguration) as caught:
            webhooks.webhook_secret_keys(refused)
        assert str(caught.value) == expected
        with pytest.raises(InsecureConfiguration):  # the service refuses to start
            DeliveryWorker(None, refused, FakeClock(START))  # type: ignore[arg-type]
    assert webhooks.webhook_secret_keys(
        NotifierSettings(**production, webhook_secret_keys=[KEY_B, KEY_A])
    ) == [KEY_B, KEY_A]


@pytest.mark.parametrize("persistence", ["sqlite", "postgres"])
def test_the_development_key_is_accepted_exactly_where_the_development_jwt_secret_is(
    persistence: str,
) -> None:
    def accepted(check: Any) -> bool:
        try:
            check()
        except InsecureConfiguration:
            return False
        return True

    unset = NotifierSettings(persistence=persistence)  # type: ignore[arg-type]
    development = NotifierSettings(
        persistence=persistence,  # type: ignore[arg-type]
        jwt_secret=DEVELOPMENT_JWT_SECRET,
        webhook_secret_keys=[webhooks.DEVELOPMENT_WEBHOOK_SECRET_KEY],
    )
    for candidate in (unset, development):
        jwt = accepted(candidate.check_secure)
        assert accepted(lambda c=candidate: webhooks.webhook_secret_keys(c)) is jwt
        assert jwt is (persistence == "sqlite")


def test_the_keys_are_read_comma_separated_and_a_malformed_one_is_refused_unechoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFIER_PERSISTENCE", "postgres")
    monkeypatch.setenv("NOTIFIER_WEBHOOK_SECRET_KEYS", f" {KEY_B} ,{KEY_A},")
    from_env = NotifierSettings()
    assert webhooks.webhook_secret_keys(from_env) == [KEY_B, KEY_A]
    assert KEY_B not in repr(from_env) and KEY_B not in str(from_env.model_dump())
    monkeypatch.setenv("NOTIFIER_WEBHOOK_SECRET_KEYS", f'["{KEY_A}"]')
    assert webhooks.webhook_secret_keys(NotifierSettings()) == [KEY_A]

    for value in (f"{KEY_A},not-a-fernet-key", f"[{KEY_A},not-a-fernet-key"):
        monkeypatch.setenv("NOTIFIER_WEBHOOK_SECRET_KEYS", value)
        with pytest.raises(InsecureConfiguration) as caught:
            webhooks.webhook_secret_keys(NotifierSettings())
        assert "NOTIFIER_WEBHOOK_SECRET_KEYS: key 2 of 2 is not a Fernet key" in str(caught.value)
        assert "not-a-fernet-key" not in str(caught.value) and KEY_A not in str(caught.value)


def test_the_service_stores_the_secret_encrypted_with_its_configured_key(
    suite: Suite, webhook_receiver: Receiver
) -> None:
    r = suite.client.put(
        "/webhooks/me",
        json={"url": webhook_receiver.url, "secret": SECRET},
        headers=suite.h("mengbo"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["secret_hint"] == "…cret"
    [row] = suite.service.store.query("SELECT secret FROM webhooks")
    assert SECRET not in row["secret"]
    assert decrypts_with(WEBHOOK_SECRET_KEY, row["secret"]) == SECRET

    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"])
    suite.check_in("bailu", objective, current=1)
    suite.clock.advance(timedelta(days=1))  # due at the check-in's time, after the frozen clock's
    deadline = time.monotonic() + 10
    while not webhook_receiver.requests and time.monotonic() < deadline:
        suite.service.delivery.wake()
        time.sleep(0.02)
    [request] = webhook_receiver.requests
    assert signed_with(request, SECRET)
