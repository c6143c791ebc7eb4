"""Webhooks: two replicas deliver each notification exactly once; the worker's thread delivers
when woken and stops promptly."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from okr_notifier.webhooks.delivery_worker import DeliveryWorker
from okr_platform.clock import FakeClock

from .webhook_kit import (
    Receiver,
    add_webhook,
    notify,
    open_store,
    settings,
)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_workers_deliver_each_notification_exactly_once(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Any,
    webhook_receiver: Receiver,
    make_worker: Any,
) -> None:
    # Two replicas: each its own store (connection pool) on the same database.
    first_store = open_store(kind, request, tmp_path, "replica-1")
    second_store = open_store(kind, request, tmp_path, "replica-2")
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
