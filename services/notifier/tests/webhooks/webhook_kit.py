"""The webhook tests' kit: a local HTTP receiver (`Receiver`; the `webhook_receiver` fixture
is in conftest.py), the settings and cipher the tests use, a webhook and a notification stored
as the API and the projection store them, the API on a fake service, and a fake DNS.

The clock is frozen: a retry becomes due when a test advances the clock, never by sleeping.
The local receiver listens on 127.0.0.1, so `settings()` allows private targets; the guard's
tests turn that off and fake DNS (`FakeDNS`, the `dns` fixture): no test resolves a name on
the network."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from okr_events.consumer_store import open_consumer_store
from okr_notifier import schema
from okr_notifier.settings import NotifierSettings
from okr_notifier.webhook_api import build_webhook_router
from okr_notifier.webhooks.delivery_queue import enqueue_deliveries
from okr_notifier.webhooks.records import save_webhook
from okr_notifier.webhooks.secrets_at_rest import SecretCipher, secret_cipher
from okr_notifier.webhooks.tables import WEBHOOK_STATEMENTS
from okr_platform.auth import AuthenticationError
from okr_platform.clock import FakeClock, utc_text
from okr_platform.errors import NotFound
from okr_platform.principal import Principal
from okr_platform.problems import install_problem_handlers

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


def receiver_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
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


# ---- stores, settings, a worker -----------------------------------------------------------------


def open_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Any, name: str = "notifier"
) -> Any:
    if kind == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        pg_schema = request.getfixturevalue("postgres_schema")
        store = open_consumer_store(name, postgres_conninfo=dsn, schema=pg_schema)
    else:
        store = open_consumer_store(name, sqlite_path=str(tmp_path / "n.sqlite3"))
    store.setup([*schema.statements(kind), *WEBHOOK_STATEMENTS])  # type: ignore[arg-type]
    request.addfinalizer(store.datastore.close)
    return store


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
    with store.transaction() as tx:
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


# ---- a fake DNS ---------------------------------------------------------------------------------


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
