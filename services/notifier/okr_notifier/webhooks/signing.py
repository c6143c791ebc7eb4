"""What a delivery sends: a JSON body (the notification, its text in every language) signed
with HMAC-SHA256 over ``"<timestamp>.<body>"`` (`sign`; `verify` is what a receiver checks), and
an ``Idempotency-Key`` that stays the same across retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from ..domain.messages import LANGUAGES, render

USER_AGENT = "okr-notifier-webhooks/1"


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(secret: str, timestamp: int | str, body: str | bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``: the X-OKR-Signature value."""
    message = str(int(timestamp)).encode() + b"." + _bytes(body)
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: int | str,
    body: str | bytes,
    signature: str,
    tolerance_seconds: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver checks: the signature matches (constant-time compare) and the timestamp
    is within ``tolerance_seconds`` of ``now`` (unix seconds; default the current time), so a
    captured request cannot be replayed later."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body).encode(), signature.strip().encode())


def payload(notification: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body: the notification, with its text rendered in every language."""
    params = notification["params"]
    if isinstance(params, str):
        params = json.loads(params)
    return {
        "id": notification["id"],
        "org_id": notification["org_id"],
        "recipient_id": notification["recipient_id"],
        "objective_id": notification["objective_id"],
        "rule": notification["rule"],
        "message_key": notification["message_key"],
        "params": params,
        "link": notification["link"],
        "created_at": notification["created_at"],
        "text": {lang: render(notification["message_key"], params, lang) for lang in LANGUAGES},
    }


def encode_body(notification: Mapping[str, Any]) -> bytes:
    return json.dumps(
        payload(notification), ensure_ascii=False, separators=(",", ":"), sort_keys=True
    ).encode()


def request_headers(
    secret: str, notification_id: int, body: bytes, attempt: int, timestamp: int
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-OKR-Timestamp": str(timestamp),
        "X-OKR-Signature": sign(secret, timestamp, body),
        "Idempotency-Key": f"notification-{notification_id}",
        "X-OKR-Delivery-Attempt": str(attempt),
    }
