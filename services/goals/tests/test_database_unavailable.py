"""PostgreSQL going away under the service (what a restart does: every connection dies, new
ones are refused for a while) is a 503 problem (`database_unavailable`) for the requests it
meets, never a 500; those requests drop the pools' broken connections, so the service answers
again shortly after PostgreSQL is back (docs/architecture.md#errors).

The service reaches the shared PostgreSQL through a TCP proxy of this test's own, which plays
the restart: it cuts every connection and refuses new ones until told the server is back."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from okr_goals.main import GoalsContext
from okr_platform.serving import serve_contexts
from okr_testkit.goals import build_org, postgres_settings

pytestmark = pytest.mark.postgres

#: How soon requests succeed again once PostgreSQL is back.
RECOVERY_SECONDS = 45


class RestartingProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; `down()` cuts and refuses, `up()` serves."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.serving = True
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.serving:
                client.close()  # the server is "restarting"
                continue
            server = socket.create_connection(self.target)
            with self.lock:
                self.open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def down(self) -> None:
        self.serving = False
        with self.lock:
            ends, self.open = self.open, set()
        for end in ends:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def up(self) -> None:
        self.serving = True

    def close(self) -> None:
        self.down()
        self.listener.close()


@pytest.fixture
def proxy(postgres_dsn: str) -> Iterator[RestartingProxy]:
    url = urlparse(postgres_dsn)
    proxy = RestartingProxy(url.hostname or "127.0.0.1", url.port or 5432)
    yield proxy
    proxy.close()


def test_a_database_restart_is_503_then_served_again(
    postgres_dsn: str, postgres_schema: str, proxy: RestartingProxy
) -> None:
    url = urlparse(postgres_dsn)
    dsn = postgres_dsn.replace(f"{url.hostname}:{url.port}", f"127.0.0.1:{proxy.port}")
    settings = postgres_settings(dsn, postgres_schema)
    context = GoalsContext(settings)
    with TestClient(serve_contexts("goals", [context], "okr-goals-test")) as client:
        org = build_org(client, settings)
        # The views' store waits 5 s for a connection, as the event store does with
        # POSTGRES_CONNECT_TIMEOUT (open_consumer_store does not take that setting yet).
        context._service().views.store.datastore.pool.timeout = 5.0  # type: ignore[attr-defined]
        objective = org.active_objective()
        path = f"/objectives/{objective['id']}/key-results/{objective['key_results'][0]['id']}"

        def check_in(current: int) -> int:
            response = client.post(
                f"{path}/check-ins", json={"current": current}, headers=org.h("bailu")
            )
            assert response.status_code in (201, 503), response.text
            if response.status_code == 503:
                assert response.json()["code"] in ("database_unavailable", "views_unavailable")
            return response.status_code

        def read() -> int:
            response = client.get("/objectives", headers=org.h("bailu"))
            assert response.status_code in (200, 503), response.text
            return response.status_code

        for current in range(1, 6):  # several pooled connections in use, then idle
            assert check_in(current) == 201

        proxy.down()
        assert check_in(10) == 503  # PostgreSQL is away: unavailable, not an internal error
        proxy.up()

        statuses: list[int] = []
        began = time.monotonic()
        for current in range(20, 60):
            statuses += [check_in(current), read()]
            if statuses[-4:] == [201, 200, 201, 200]:
                break
        assert statuses[-4:] == [201, 200, 201, 200], statuses  # served again, and stays so
        # The pools reconnect on their own schedule (psycopg_pool backs off between attempts).
        assert time.monotonic() - began < RECOVERY_SECONDS, statuses
