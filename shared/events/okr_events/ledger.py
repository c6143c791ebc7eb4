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
from collections.abc import Sequence
from typing import Any

from .codec import InboundEvent
from .consumer_store import Tx, chunks, in_clause

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
        self.handle_batch([event], tx)

    def handle_batch(self, events: Sequence[InboundEvent], tx: Tx) -> None:
        """The events in order: the chains are extended in memory from the stored heads (one
        query per 500 aggregates), then every row is written with one executemany."""
        heads = _chain_heads(tx, sorted({str(e.aggregate_id) for e in events}))
        rows: list[dict[str, Any]] = []
        streams: dict[str, dict[str, Any]] = {}
        applied_at = time.time()
        for event in events:
            contract = event.contract
            aggregate_id = str(contract.aggregate_id)
            payload = contract.model_dump_json()
            digest = heads[aggregate_id] = chain(
                heads.get(aggregate_id, GENESIS), event.type, payload
            )
            rows.append(
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
                    "applied_at": applied_at,
                }
            )
            stream = streams.setdefault(aggregate_id, {"aggregate_id": aggregate_id, "events": 0})
            stream["events"] += 1
            stream["version"] = contract.aggregate_version
            stream["digest"] = digest
        tx.executemany(INSERT_EVENT, rows)
        tx.executemany(UPSERT_STREAM, list(streams.values()))


INSERT_EVENT = """INSERT INTO ledger_events (event_id, topic, partition, "offset", aggregate_id,
        aggregate_version, event_type, occurred_at, actor, payload, digest, applied_at)
    VALUES (:event_id, :topic, :partition, :offset, :aggregate_id, :aggregate_version,
        :event_type, :occurred_at, :actor, :payload, :digest, :applied_at)"""
UPSERT_STREAM = """INSERT INTO ledger_streams (aggregate_id, events, last_version, digest)
    VALUES (:aggregate_id, :events, :version, :digest)
    ON CONFLICT (aggregate_id) DO UPDATE SET events = ledger_streams.events + excluded.events,
        last_version = excluded.last_version, digest = excluded.digest"""


def _chain_heads(tx: Tx, aggregate_ids: Sequence[str]) -> dict[str, str]:
    """The last digest of each aggregate's chain, for those that have one."""
    heads: dict[str, str] = {}
    for chunk in chunks(aggregate_ids):
        clause, params = in_clause(chunk, "a")
        for row in tx.execute(
            f"SELECT aggregate_id, digest FROM ledger_streams WHERE aggregate_id IN {clause}",
            params,
        ):
            heads[row["aggregate_id"]] = row["digest"]
    return heads


def chain(previous: str, event_type: str, payload: str) -> str:
    """The digest after one more event: SHA-256 over the previous digest, type and payload."""
    return hashlib.sha256(f"{previous}\n{event_type}\n{payload}".encode()).hexdigest()


def stream_digest(events: list[tuple[str, str]]) -> str:
    """The digest of a whole stream of (CloudEvents type, payload JSON), from the start."""
    digest = GENESIS
    for event_type, payload in events:
        digest = chain(digest, event_type, payload)
    return digest
