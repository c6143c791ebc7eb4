"""The event ledger as its own process: `okr-ledger` (or `python -m okr_events.ledger_process`).

Consumes the topics in OKR_LEDGER_TOPICS with consumer group OKR_LEDGER_GROUP_ID into its own
PostgreSQL schema, and serves GET /health (liveness), /ready (consuming, its database answers),
/lag and /stats on OKR_LEDGER_HTTP_PORT. PostgreSQL or Kafka away, at start or later, is waited
out (it resumes from its stored positions); a bad setting or a refusal that waiting cannot cure
ends it with one line on stderr and exit code 1.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from pydantic_settings import BaseSettings, SettingsConfigDict

from .consuming import open_consumer_store
from .goals import GOALS_TOPIC
from .kafka import KafkaSettings, ensure_topics
from .kafka_consumer import KafkaConsumerRunner
from .ledger import Ledger
from .outages import one_line, retry_through_outages, settings_or_exit
from .tracing import configure_tracing

log = logging.getLogger("okr_events.ledger")


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OKR_LEDGER_", extra="ignore")

    postgres_conninfo: str = "host=127.0.0.1 port=5432 dbname=okr user=okr password=okr"
    postgres_schema: str = "ledger"
    topics: list[str] = [GOALS_TOPIC]
    group_id: str = "okr-ledger"
    http_host: str = "127.0.0.1"
    http_port: int = 8090
    max_retries: int = 3
    batch_size: int = 500


class LedgerStatus:
    """What the status endpoint reports: the runner once it exists, else why not yet."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.runner: KafkaConsumerRunner | None = None
        self.starting: str | None = "starting"

    def health(self) -> tuple[int, dict[str, Any]]:
        """Liveness: 503 only when the consumer stopped for good (a restart will not help)."""
        runner = self.runner
        if runner is not None and runner.error is not None:
            return 503, {"status": f"stopped: {one_line(runner.error)}"}
        return 200, {"status": "ok"}

    def ready(self) -> tuple[int, dict[str, Any]]:
        """Readiness: consuming, and its database answers (a batch waits for it otherwise)."""
        runner = self.runner
        reason = None
        if runner is None:
            reason = self.starting or "starting"
        elif runner.error is not None:
            reason = f"stopped: {one_line(runner.error)}"
        elif runner.waiting is not None:
            reason = runner.waiting
        else:
            reason = database_down(self.conninfo)
        if reason is None:
            return 200, {"status": "ready"}
        return 503, {"status": "not ready", "reason": reason}


def database_down(conninfo: str, timeout: int = 2) -> str | None:
    """Why PostgreSQL does not answer within ``timeout`` s (a fresh connection, so a probe
    never waits behind the pool), or None when it does."""
    try:
        with psycopg.connect(conninfo, connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL unavailable: {one_line(error)}"
    return None


def serve_status(status: LedgerStatus, host: str, port: int) -> ThreadingHTTPServer:
    """A small operations endpoint: liveness, readiness, consumer lag, counters."""

    class Status(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            runner = status.runner
            body: dict[str, Any]
            code = 200
            if self.path == "/health":
                code, body = status.health()
            elif self.path == "/ready":
                code, body = status.ready()
            elif self.path == "/lag":
                body = runner.lag() if runner else {"total": None, "partitions": {}}
            elif self.path == "/stats":
                processor = runner.processor if runner else None
                body = {
                    "applied": processor.applied if processor else 0,
                    "duplicates": processor.duplicates if processor else 0,
                    "dead_lettered": processor.dead_lettered if processor else 0,
                    "restarts": runner.restarts if runner else 0,
                }
            else:
                code, body = 404, {"title": "not found", "status": 404}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: probes poll often
            pass

    server = ThreadingHTTPServer((host, port), Status)
    threading.Thread(target=server.serve_forever, name="ledger-status", daemon=True).start()
    return server


def build_runner(settings: LedgerSettings, kafka: KafkaSettings) -> KafkaConsumerRunner:
    """The topics, the store (its schema and tables) and the consumer: raises on an outage."""
    ensure_topics(kafka, settings.topics)
    store = open_consumer_store(
        "ledger", postgres_conninfo=settings.postgres_conninfo, schema=settings.postgres_schema
    )
    try:
        return KafkaConsumerRunner(
            Ledger(),
            store,
            topics=settings.topics,
            settings=kafka,
            group_id=settings.group_id,
            max_retries=settings.max_retries,
            batch_size=settings.batch_size,
        )
    except BaseException:
        store.datastore.close()  # type: ignore[attr-defined]
        raise


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = settings_or_exit(LedgerSettings, "okr-ledger")
    kafka = settings_or_exit(KafkaSettings, "okr-ledger")
    configure_tracing("okr-ledger")
    status = LedgerStatus(settings.postgres_conninfo)
    try:
        server = serve_status(status, settings.http_host, settings.http_port)
    except OSError as error:
        sys.exit(f"okr-ledger: cannot serve {settings.http_host}:{settings.http_port}: {error}")
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()
        if status.runner is not None:
            status.runner.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    try:
        status.starting = "waiting for PostgreSQL and Kafka"
        try:
            runner = retry_through_outages(
                lambda: build_runner(settings, kafka),
                what="ledger",
                stopping=stopping,
                log=log,
                on_outage=lambda reason: setattr(status, "starting", f"starting: {reason}"),
            )
        except Exception as error:  # not an outage: e.g. a setting the servers refuse
            sys.exit(f"okr-ledger: cannot start: {one_line(error)}")
        if runner is None:
            return
        status.runner = runner
        if stopping.is_set():
            runner.stop()
        log.info("ledger consuming %s as %s", settings.topics, settings.group_id)
        # What is loaded now lives as long as the process: out of the cycle collector's way, so
        # its collections scan only the consumer's short-lived objects (cheaper per batch).
        gc.freeze()
        try:
            runner.run()
        except Exception as error:  # logged by the runner; the process ends with one line
            sys.exit(f"okr-ledger: stopped: {one_line(error)}")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
