"""`StoppableRunner`: a consumer runner whose loop runs in a thread of its own (used by
services and tests); `close` stops it, waits for the loop, then closes its store."""

from __future__ import annotations

import contextlib
import threading

from .consumer_store import ConsumerStore

__all__ = ["StoppableRunner"]


class StoppableRunner:
    """A runner whose loop runs in a thread of its own (used by services and tests)."""

    def run(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    _thread: threading.Thread | None = None
    store: ConsumerStore

    def start_thread(self, name: str) -> threading.Thread:
        self._thread = threading.Thread(target=self._run_in_thread, name=name, daemon=True)
        self._thread.start()
        return self._thread

    def _run_in_thread(self) -> None:
        # run() has logged the error and kept it in `error` for health checks and tests.
        with contextlib.suppress(Exception):
            self.run()

    def close(self, timeout: float = 10.0) -> None:
        """Stop, wait for the loop to end, then close the store's connections."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self.store.datastore.close()  # type: ignore[attr-defined]
