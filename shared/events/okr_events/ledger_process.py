"""The event ledger as its own process: `okr-ledger` (or `python -m okr_events.ledger_process`).

Consumes the topics in OKR_LEDGER_TOPICS with consumer group OKR_LEDGER_GROUP_ID into its own
PostgreSQL schema, and serves GET /health, /lag and /stats on OKR_LEDGER_HTTP_PORT.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from .consuming import open_consumer_store
from .goals import GOALS_TOPIC
from .kafka import KafkaSettings, ensure_topics
from .kafka_consumer import KafkaConsumerRunner
from .ledger import Ledger
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


def serve_status(runner: KafkaConsumerRunner, host: str, port: int) -> ThreadingHTTPServer:
    """A small operations endpoint: liveness, consumer lag, counters."""

    class Status(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            processor = runner.processor
            body: dict[str, Any]
            status = 200
            if self.path == "/health":
                healthy = runner.error is None
                status = 200 if healthy else 503
                body = {"status": "ok" if healthy else f"stopped: {runner.error}"}
            elif self.path == "/lag":
                body = runner.lag()
            elif self.path == "/stats":
                body = {
                    "applied": processor.applied,
                    "duplicates": processor.duplicates,
                    "dead_lettered": processor.dead_lettered,
                }
            else:
                status, body = 404, {"title": "not found", "status": 404}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: probes poll often
            pass

    server = ThreadingHTTPServer((host, port), Status)
    threading.Thread(target=server.serve_forever, name="ledger-status", daemon=True).start()
    return server


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = LedgerSettings()
    kafka = KafkaSettings()
    configure_tracing("okr-ledger")
    ensure_topics(kafka, settings.topics)
    store = open_consumer_store(
        "ledger", postgres_conninfo=settings.postgres_conninfo, schema=settings.postgres_schema
    )
    runner = KafkaConsumerRunner(
        Ledger(),
        store,
        topics=settings.topics,
        settings=kafka,
        group_id=settings.group_id,
        max_retries=settings.max_retries,
        batch_size=settings.batch_size,
    )
    server = serve_status(runner, settings.http_host, settings.http_port)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop())
    log.info("ledger consuming %s as %s", settings.topics, settings.group_id)
    # What is loaded now lives as long as the process: out of the cycle collector's way, so
    # its collections scan only the consumer's short-lived objects (cheaper per batch).
    gc.freeze()
    try:
        runner.run()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
