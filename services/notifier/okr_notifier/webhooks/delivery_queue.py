"""The delivery queue: when a notification is stored, `enqueue_deliveries` queues one delivery
per webhook that applies, in the same transaction (so a notification and its deliveries commit
together, and a redelivered event queues nothing twice). `DeliveryWorker` (delivery_worker.py)
empties it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .tables import STATUSES

if TYPE_CHECKING:
    from okr_events.consuming import ConsumerStore, Tx


def enqueue_deliveries(
    tx: Tx, notification_id: int, org_id: str, recipient_id: str, created_at: str
) -> None:
    """Queue the notification for the recipient's and the organisation's webhooks."""
    tx.execute(
        """INSERT INTO deliveries (notification_id, scope, owner_id, org_id, status, attempts,
            next_attempt_at, created_at)
        SELECT :notification_id, w.scope, w.owner_id, w.org_id, 'pending', 0,
            :created_at, :created_at
        FROM webhooks w
        WHERE w.org_id = :org_id AND ((w.scope = 'member' AND w.owner_id = :recipient_id)
            OR (w.scope = 'org' AND w.owner_id = :org_id))
        ON CONFLICT (notification_id, scope) DO NOTHING""",
        {
            "notification_id": notification_id,
            "org_id": org_id,
            "recipient_id": recipient_id,
            "created_at": created_at,
        },
    )


def due_counts(store: ConsumerStore) -> dict[str, int]:
    """How many deliveries are in each status (for health checks and metrics)."""
    rows = store.query("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status")
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    counts.update({row["status"]: int(row["n"]) for row in rows})
    return counts
