"""The webhooks' tables, and the words their rows use (scopes, statuses).

A webhook belongs to a member (scope ``member``) or to the organisation (scope ``org``); a
delivery is one notification sent to one webhook, with the outcome of its attempts."""

from __future__ import annotations

from typing import Literal

Scope = Literal["member", "org"]
Status = Literal["pending", "delivered", "failed"]
SCOPES: tuple[Scope, ...] = ("member", "org")
STATUSES: tuple[Status, ...] = ("pending", "delivered", "failed")

WEBHOOK_STATEMENTS: tuple[str, ...] = (
    # owner_id: the member's id (scope 'member') or the organisation's id (scope 'org').
    """CREATE TABLE IF NOT EXISTS webhooks (
        org_id TEXT NOT NULL, scope TEXT NOT NULL, owner_id TEXT NOT NULL,
        url TEXT NOT NULL, secret TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (org_id, scope, owner_id))""",
    # One delivery of a notification per webhook (a notification goes to at most one member
    # webhook, its recipient's, and one org webhook). next_attempt_at is NULL once final.
    """CREATE TABLE IF NOT EXISTS deliveries (
        notification_id BIGINT NOT NULL, scope TEXT NOT NULL, owner_id TEXT NOT NULL,
        org_id TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT, last_attempt_at TEXT, last_status_code INTEGER,
        last_error TEXT, delivered_at TEXT, created_at TEXT NOT NULL,
        PRIMARY KEY (notification_id, scope))""",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at)",
    """CREATE INDEX IF NOT EXISTS deliveries_owner
        ON deliveries (org_id, scope, owner_id, notification_id)""",
)

#: The condition that picks one owner's webhook (or its deliveries), by its key's parameters.
WEBHOOK_KEY = "org_id = :org_id AND scope = :scope AND owner_id = :owner_id"
