"""Storing the notifications the rules decide on, and the reads they are decided from (the
objective's followers; a member's name from the replica's directory)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from okr_events.consuming import Tx
from okr_events.notifier import ReminderSettings
from okr_platform.clock import utc_text
from okr_platform.directory import Directory

from .domain.rules import Notice
from .webhooks.delivery_queue import enqueue_deliveries


def store_notices(tx: Tx, notices: Sequence[Notice], created_at: str) -> int:
    """Insert notifications; one whose dedupe key exists is silently not inserted again."""
    stored = 0
    for notice in notices:
        rows = tx.execute(
            """INSERT INTO notifications (org_id, recipient_id, objective_id, rule,
                dedupe_key, message_key, params, link, created_at, raised_at)
            VALUES (:org_id, :recipient_id, :objective_id, :rule, :dedupe_key,
                :message_key, :params, :link, :created_at, :raised_at)
            ON CONFLICT (dedupe_key) DO NOTHING RETURNING id""",
            {
                "org_id": notice.org_id,
                "recipient_id": notice.recipient_id,
                "objective_id": notice.objective_id,
                "rule": notice.rule,
                "dedupe_key": notice.dedupe_key,
                "message_key": notice.message_key,
                "params": json.dumps(notice.params, ensure_ascii=False),
                "link": notice.link,
                "created_at": created_at,
                "raised_at": utc_text(datetime.now(UTC)),
            },
        )
        if rows:
            stored += 1
            enqueue_deliveries(tx, rows[0]["id"], notice.org_id, notice.recipient_id, created_at)
    return stored


def followers_of(tx: Tx, objective_id: str) -> list[tuple[str, ReminderSettings]]:
    rows = tx.execute(
        """SELECT follower_id, settings FROM follows
        WHERE objective_id = :objective_id AND active = 1 ORDER BY follower_id""",
        {"objective_id": objective_id},
    )
    return [
        (row["follower_id"], ReminderSettings.model_validate_json(row["settings"])) for row in rows
    ]


def member_name(directory: Directory, member_id: str) -> str:
    member = directory.members.get(member_id)
    return member.name if member else member_id
