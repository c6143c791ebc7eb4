"""Fixtures of the webhook tests: a local receiver, stores (SQLite, and PostgreSQL when it is
configured), the frozen clock, workers closed after the test, and the fake DNS."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from okr_notifier.webhooks import ssrf_guard
from okr_notifier.webhooks.delivery_worker import DeliveryWorker
from okr_platform.clock import FakeClock

from .webhook_kit import (
    PUBLIC_V4,
    PUBLIC_V6,
    START,
    FakeDNS,
    Receiver,
    open_store,
    receiver_handler,
    settings,
)


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver_handler(receiver))
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


@pytest.fixture
def webhook_store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    return open_store("sqlite", request, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_webhook_store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    return open_store(request.param, request, tmp_path)


@pytest.fixture
def webhook_clock() -> FakeClock:
    return FakeClock(START)


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
    monkeypatch.setattr(ssrf_guard, "resolve_host", fake.resolve)
    return fake
