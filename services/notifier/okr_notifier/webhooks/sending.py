"""One attempt at a delivery: one POST of the signed notification, and what it came to
(`Outcome`). A 2xx is delivered; a 4xx other than 408/429 is permanent, as is a refusal of the
SSRF guard; anything else (5xx, 408, 429, a timeout, a refused connection) is worth a retry,
after the ``Retry-After`` a 429 or 503 asks for."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from .signing import encode_body, request_headers
from .ssrf_guard import UnsafeTarget, check_url_form


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: delivered, worth a retry (after ``retry_after`` seconds when
    the receiver said so, else the backoff), or failed for good."""

    result: Literal["delivered", "retry", "failed"]
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


def classify(status_code: int) -> Literal["delivered", "retry", "failed"]:
    """2xx delivered; 4xx other than 408/429 is permanent; anything else is worth a retry."""
    if 200 <= status_code < 300:
        return "delivered"
    if 400 <= status_code < 500 and status_code not in (408, 429):
        return "failed"
    return "retry"


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def post_notification(
    client: httpx.Client,
    url: str,
    secret: str,
    notification: Mapping[str, Any],
    attempt: int,
    *,
    allow_private_targets: bool,
    timeout_seconds: float,
) -> Outcome:
    """POST one notification to a webhook; never raises."""
    body = encode_body(notification)
    headers = request_headers(secret, notification["id"], body, attempt, int(time.time()))
    try:
        # The form again (the setting may have changed since registration); the addresses
        # are checked in the connection (GuardedBackend), which raises UnsafeTarget.
        check_url_form(url, allow_private_targets=allow_private_targets)
        with client.stream("POST", url, content=body, headers=headers) as response:
            code = response.status_code
            result = classify(code)
            if result == "delivered":
                return Outcome("delivered", code)
            snippet = b""
            for chunk in response.iter_bytes():
                snippet += chunk
                if len(snippet) >= 200:
                    break
            text = snippet[:200].decode(errors="replace").strip()
            error = f"HTTP {code} {response.reason_phrase}" + (f": {text}" if text else "")
            retry_after = None
            if code in (429, 503):
                retry_after = retry_after_seconds(
                    response.headers.get("Retry-After"), datetime.now(UTC)
                )
            return Outcome(result, code, error, retry_after)
    except UnsafeTarget as error:  # permanent, like a 4xx: retrying would not help
        return Outcome("failed", error=f"refused by the SSRF guard: {error.reason}")
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
        return Outcome("failed", error=f"{type(error).__name__}: {error}")
    except httpx.TimeoutException as error:
        return Outcome(
            "retry", error=f"timed out after {timeout_seconds:g} s ({type(error).__name__})"
        )
    except Exception as error:  # connection refused, reset, DNS, TLS ...: worth a retry
        return Outcome("retry", error=f"{type(error).__name__}: {error}")
