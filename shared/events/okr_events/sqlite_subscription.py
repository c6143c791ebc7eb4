"""SQLite event store that can be subscribed to, for the embedded default.

The library's SQLite recorder has no subscriptions (PostgreSQL has LISTEN/NOTIFY). Projections
and, later, the in-process relay need one, so this recorder wakes subscribers in this process
the moment a transaction commits, and polls as well so writes by other processes (`make demo`
while `make run` serves) are picked up within POLL_INTERVAL.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, ListenNotifySubscription, StoredEvent
from eventsourcing.persistence import Subscription as LibrarySubscription
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteFactory

POLL_INTERVAL = 0.25  # seconds; only matters for writes made by another process

_listeners: dict[str, set[threading.Event]] = defaultdict(set)
_listeners_lock = threading.Lock()


def _wake(db_name: str) -> None:
    with _listeners_lock:
        for listener in _listeners.get(db_name, ()):
            listener.set()


class SubscribableSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super().insert_events(stored_events, **kwargs)
        _wake(self.datastore.pool.db_name)
        return notification_ids

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> LibrarySubscription[ApplicationRecorder]:
        return SQLiteSubscription(recorder=self, gt=gt, topics=topics)


class SQLiteSubscription(ListenNotifySubscription[SubscribableSQLiteApplicationRecorder]):
    def __init__(
        self,
        recorder: SubscribableSQLiteApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._db_name = recorder.datastore.pool.db_name
        with _listeners_lock:
            _listeners[self._db_name].add(self._has_been_notified)
        self._poll_thread = threading.Thread(target=self._poll, daemon=True)
        self._poll_thread.start()

    def _poll(self) -> None:
        while not self._has_been_stopped:
            self._has_been_notified.set()
            threading.Event().wait(POLL_INTERVAL)

    def stop(self) -> None:
        super().stop()
        with _listeners_lock:
            _listeners[self._db_name].discard(self._has_been_notified)


class SubscribableSQLiteFactory(SQLiteFactory):
    application_recorder_class = SubscribableSQLiteApplicationRecorder
