"""Webhooks and deliveries as records, as the API (webhook_api.py) reads and writes them: a
webhook shown without its secret (only the secret's last characters), a delivery with the
outcome of its attempts; a failed delivery can be queued again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .secrets_at_rest import SecretCipher, UndecryptableSecret
from .tables import WEBHOOK_KEY, Scope, Status

if TYPE_CHECKING:
    from okr_events.consuming import ConsumerStore


@dataclass(frozen=True)
class Webhook:
    """A webhook as the API shows it: never its secret, only the secret's last characters."""

    org_id: str
    scope: Scope
    owner_id: str
    url: str
    secret_hint: str
    created_at: str
    updated_at: str


def secret_hint(secret: str) -> str:
    return "…" + secret[-4:]


#: The hint of a secret no configured key decrypts (see secrets_at_rest.UNDECRYPTABLE).
UNREADABLE_HINT = "(cannot be decrypted: set the secret again)"

_WEBHOOK_COLUMNS = "org_id, scope, owner_id, url, created_at, updated_at"
_DELIVERY_COLUMNS = """notification_id, scope, owner_id, org_id, status, attempts,
    next_attempt_at, last_attempt_at, last_status_code, last_error, delivered_at, created_at"""


def save_webhook(
    store: ConsumerStore,
    org_id: str,
    scope: Scope,
    owner_id: str,
    url: str,
    secret: str,
    at: str,
    *,
    cipher: SecretCipher,
) -> Webhook:
    """Create or replace the webhook of a member or an organisation; the secret is stored
    encrypted with the cipher's first key."""
    rows = store.query(
        f"""INSERT INTO webhooks (org_id, scope, owner_id, url, secret, created_at, updated_at)
        VALUES (:org_id, :scope, :owner_id, :url, :secret, :at, :at)
        ON CONFLICT (org_id, scope, owner_id) DO UPDATE SET url = excluded.url,
            secret = excluded.secret, updated_at = excluded.updated_at
        RETURNING {_WEBHOOK_COLUMNS}""",
        {"org_id": org_id, "scope": scope, "owner_id": owner_id, "url": url,
         "secret": cipher.encrypt(secret), "at": at},
    )  # fmt: skip
    return Webhook(**dict(rows[0]), secret_hint=secret_hint(secret))


def get_webhook(
    store: ConsumerStore, org_id: str, scope: Scope, owner_id: str, *, cipher: SecretCipher
) -> Webhook | None:
    rows = store.query(
        f"SELECT {_WEBHOOK_COLUMNS}, secret FROM webhooks WHERE {WEBHOOK_KEY}",
        {"org_id": org_id, "scope": scope, "owner_id": owner_id},
    )
    if not rows:
        return None
    row = dict(rows[0])
    try:
        hint = secret_hint(cipher.reveal(row.pop("secret")).secret)
    except UndecryptableSecret:
        hint = UNREADABLE_HINT
    return Webhook(**row, secret_hint=hint)


def delete_webhook(store: ConsumerStore, org_id: str, scope: Scope, owner_id: str, at: str) -> bool:
    """Remove a webhook; its pending deliveries fail (visible as such). False if none."""
    key = {"org_id": org_id, "scope": scope, "owner_id": owner_id}
    with store.transaction() as tx:
        removed = tx.execute(f"DELETE FROM webhooks WHERE {WEBHOOK_KEY} RETURNING url", key)
        if removed:
            tx.execute(
                f"""UPDATE deliveries SET status = 'failed', next_attempt_at = NULL,
                    last_error = 'the webhook was removed', last_attempt_at = :at
                WHERE {WEBHOOK_KEY} AND status = 'pending'""",
                {**key, "at": at},
            )
    return bool(removed)


def list_deliveries(
    store: ConsumerStore,
    org_id: str,
    scope: Scope,
    owner_id: str,
    *,
    status: Status | None = None,
    limit: int = 50,
    after: int | None = None,
) -> list[dict[str, Any]]:
    """The deliveries of one webhook owner, newest notification first; ``after`` is the last
    notification id of the previous page (the next page holds older ones)."""
    conditions = [WEBHOOK_KEY]
    params: dict[str, Any] = {"org_id": org_id, "scope": scope, "owner_id": owner_id}
    if status is not None:
        conditions.append("status = :status")
        params["status"] = status
    if after is not None:
        conditions.append("notification_id < :after")
        params["after"] = after
    rows = store.query(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE {' AND '.join(conditions)} "
        f"ORDER BY notification_id DESC LIMIT {int(limit)}",
        params,
    )
    return [dict(row) for row in rows]


def get_delivery(
    store: ConsumerStore, org_id: str, scope: Scope, owner_id: str, notification_id: int
) -> dict[str, Any] | None:
    rows = store.query(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries "
        f"WHERE {WEBHOOK_KEY} AND notification_id = :notification_id",
        {"org_id": org_id, "scope": scope, "owner_id": owner_id,
         "notification_id": notification_id},
    )  # fmt: skip
    return dict(rows[0]) if rows else None


def requeue_delivery(
    store: ConsumerStore, org_id: str, scope: Scope, owner_id: str, notification_id: int, at: str
) -> dict[str, Any] | None:
    """Queue a failed delivery again, due now, with a fresh count of attempts. None if it is
    not (or no longer) failed."""
    rows = store.query(
        f"""UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = :at
        WHERE {WEBHOOK_KEY} AND notification_id = :notification_id AND status = 'failed'
        RETURNING {_DELIVERY_COLUMNS}""",
        {"org_id": org_id, "scope": scope, "owner_id": owner_id,
         "notification_id": notification_id, "at": at},
    )  # fmt: skip
    return dict(rows[0]) if rows else None
