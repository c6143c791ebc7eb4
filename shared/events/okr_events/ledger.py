"""The event ledger: a consumer that keeps every published event, for auditors.

Each applied event becomes a row, and each aggregate a chain of SHA-256 digests over its
events in version order; an auditor compares the chain with the producer's own stream to
check that nothing was altered, lost or applied twice. It is also the suite's reference
consumer: the end-to-end tests and the benchmark measure the backbone through it.

Run it as its own process: ``python -m okr_events.ledger`` (settings prefix OKR_LEDGER_).
"""

from __future__ import annotations

import hashlib
import time

from .codec import InboundEvent
from .consuming import Tx

GENESIS = "0" * 64


class Ledger:
    name = "okr-ledger"
    create_statements = (
        """CREATE TABLE IF NOT EXISTS ledger_events (
            event_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
            "offset" INTEGER NOT NULL, aggregate_id TEXT NOT NULL,
            aggregate_version INTEGER NOT NULL, event_type TEXT NOT NULL,
            occurred_at TEXT NOT NULL, actor TEXT NOT NULL, payload TEXT NOT NULL,
            digest TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)""",
        """CREATE INDEX IF NOT EXISTS ledger_events_aggregate
            ON ledger_events (aggregate_id, aggregate_version)""",
        # `events` is incremented, not recomputed: applying an event twice would show.
        """CREATE TABLE IF NOT EXISTS ledger_streams (
            aggregate_id TEXT PRIMARY KEY, events INTEGER NOT NULL,
            last_version INTEGER NOT NULL, digest TEXT NOT NULL)""",
    )

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        contract = event.contract
        aggregate_id = str(contract.aggregate_id)
        payload = contract.model_dump_json()
        rows = tx.execute(
            "SELECT events, digest FROM ledger_streams WHERE aggregate_id = :aggregate_id",
            {"aggregate_id": aggregate_id},
        )
        previous = rows[0]["digest"] if rows else GENESIS
        digest = chain(previous, event.type, payload)
        tx.execute(
            """INSERT INTO ledger_events (event_id, topic, partition, "offset", aggregate_id,
                aggregate_version, event_type, occurred_at, actor, payload, digest, applied_at)
            VALUES (:event_id, :topic, :partition, :offset, :aggregate_id, :aggregate_version,
                :event_type, :occurred_at, :actor, :payload, :digest, :applied_at)""",
            {
                "event_id": event.event_id,
                "topic": event.topic,
                "partition": event.partition,
                "offset": event.offset,
                "aggregate_id": aggregate_id,
                "aggregate_version": contract.aggregate_version,
                "event_type": event.type,
                "occurred_at": contract.occurred_at.isoformat(),
                "actor": contract.actor,
                "payload": payload,
                "digest": digest,
                "applied_at": time.time(),
            },
        )
        tx.execute(
            """INSERT INTO ledger_streams (aggregate_id, events, last_version, digest)
            VALUES (:aggregate_id, 1, :version, :digest)
            ON CONFLICT (aggregate_id) DO UPDATE SET events = ledger_streams.events + 1,
                last_version = excluded.last_version, digest = excluded.digest""",
            {"aggregate_id": aggregate_id, "version": contract.aggregate_version, "digest": digest},
        )


def chain(previous: str, event_type: str, payload: str) -> str:
    """The digest after one more event: SHA-256 over the previous digest, type and payload."""
    return hashlib.sha256(f"{previous}\n{event_type}\n{payload}".encode()).hexdigest()


def stream_digest(events: list[tuple[str, str]]) -> str:
    """The digest of a whole stream of (CloudEvents type, payload JSON), from the start."""
    digest = GENESIS
    for event_type, payload in events:
        digest = chain(digest, event_type, payload)
    return digest
