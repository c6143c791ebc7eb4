"""Outgoing webhooks: work notifications delivered like DingTalk/Feishu ones.

A member may register one webhook for the notifications addressed to them (scope
``member``), and an organisation admin one for every notification of the organisation (scope
``org``). When a notification is stored, `enqueue_deliveries` queues one delivery per webhook
that applies, in the same transaction (so a notification and its deliveries commit together,
and a redelivered event queues nothing twice).

`DeliveryWorker` sends the due deliveries: a JSON body signed with HMAC-SHA256 over
``"<timestamp>.<body>"`` (`sign`, `verify`), an ``Idempotency-Key`` that stays the same across
retries, exponential backoff with jitter (``Retry-After`` honoured on 429/503), a permanent
failure on a 4xx other than 408/429. Every attempt's outcome is recorded on the delivery
(attempts, last status code, last error), which the API lists (webhook_api.py).

The SSRF guard: a member must not make the notifier call internal addresses (the cloud metadata
service, an admin port on 127.0.0.1, a cluster service on 10.x). `check_target` is run when a
webhook is registered: https only, no user name or password in the URL, and every address the
host resolves to must be public (`forbidden_kind`). At delivery, `GuardedBackend` resolves the
host again, checks every address and connects to a checked one, in the connection itself (no
second lookup an attacker's DNS could answer differently: "DNS rebinding"); a refused delivery
fails at once, with the reason as its last error. ``NOTIFIER_WEBHOOK_ALLOW_PRIVATE_TARGETS``
turns the address checks off (and allows http://) for tests and the local stack, whose
receivers listen on 127.0.0.1.

Signing secrets at rest: the ``secret`` column holds a Fernet token (AES-128-CBC and
HMAC-SHA256, `SecretCipher`) under the first of ``NOTIFIER_WEBHOOK_SECRET_KEYS``; every key of
the list decrypts, so keys rotate (`webhook_secret_keys` says which keys are acceptable: the
development key on the embedded default only). A value that does not have a Fernet token's
form is a secret stored in plain text before secrets were encrypted: it is still used, and
`reencrypt_secrets` (the worker's first round, and again for a row met at delivery) encrypts
it, as it re-encrypts a token of an older key under the first one. A token no configured key
decrypts fails its deliveries for good with `UNDECRYPTABLE` as the last error: the owner sets
the secret again.

Two replicas: on PostgreSQL a replica claims due rows with ``FOR UPDATE SKIP LOCKED`` and, in
the same statement, counts the attempt and moves ``next_attempt_at`` past the time the attempt
may take (a lease), so the other replica neither waits for nor picks them; the outcome is
written only if the attempt still holds the row (same attempt number, still pending).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal

import httpcore
import httpx
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from okr_platform.settings import InsecureConfiguration

from .domain.messages import LANGUAGES, render

if TYPE_CHECKING:
    from okr_events.consuming import ConsumerStore, Tx
    from okr_platform.clock import Clock

    from .settings import NotifierSettings

log = logging.getLogger(__name__)

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

#: Deliveries claimed per transaction, and batches per `DeliveryWorker.run_once` at most.
BATCH_SIZE = 10
MAX_BATCHES = 10
#: Longest wait between attempts, whatever the backoff or the receiver's Retry-After says.
MAX_DELAY_SECONDS = 3600.0
JITTER = 0.1  # up to 10 % added to a backoff delay, so retries of many deliveries spread out
ERROR_LENGTH = 500
USER_AGENT = "okr-notifier-webhooks/1"


def utc_text(moment: datetime) -> str:
    """The stored time format (as projection.utc_text: fixed width, sorts as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- queueing (inside the notification's transaction) ------------------------------------------


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


# ---- signing ------------------------------------------------------------------------------------


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


# ---- webhooks and deliveries as records (used by the API) ---------------------------------------


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


#: The hint of a secret no configured key decrypts (see UNDECRYPTABLE).
UNREADABLE_HINT = "(cannot be decrypted: set the secret again)"

_WEBHOOK_KEY = "org_id = :org_id AND scope = :scope AND owner_id = :owner_id"
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
        f"SELECT {_WEBHOOK_COLUMNS}, secret FROM webhooks WHERE {_WEBHOOK_KEY}",
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
        removed = tx.execute(f"DELETE FROM webhooks WHERE {_WEBHOOK_KEY} RETURNING url", key)
        if removed:
            tx.execute(
                f"""UPDATE deliveries SET status = 'failed', next_attempt_at = NULL,
                    last_error = 'the webhook was removed', last_attempt_at = :at
                WHERE {_WEBHOOK_KEY} AND status = 'pending'""",
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
    conditions = [_WEBHOOK_KEY]
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
        f"WHERE {_WEBHOOK_KEY} AND notification_id = :notification_id",
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
        WHERE {_WEBHOOK_KEY} AND notification_id = :notification_id AND status = 'failed'
        RETURNING {_DELIVERY_COLUMNS}""",
        {"org_id": org_id, "scope": scope, "owner_id": owner_id,
         "notification_id": notification_id, "at": at},
    )  # fmt: skip
    return dict(rows[0]) if rows else None


# ---- signing secrets at rest --------------------------------------------------------------------

#: Valid only on the embedded default, like okr_platform.settings.DEVELOPMENT_JWT_SECRET: it is in
#: the source, so it protects nothing. Base64 of b"okr-embedded-dev-webhook-key-000".
DEVELOPMENT_WEBHOOK_SECRET_KEY = "b2tyLWVtYmVkZGVkLWRldi13ZWJob29rLWtleS0wMDA="
GENERATE_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


def undecryptable_error(scope: Scope) -> str:
    """The last error of a delivery whose webhook's secret no configured key decrypts."""
    path = "/webhooks/me" if scope == "member" else "/webhooks/org"
    return (
        "the webhook's secret cannot be decrypted with the configured "
        f"NOTIFIER_WEBHOOK_SECRET_KEYS: set it again with PUT {path}"
    )


#: The member webhook's (the text the README and the tests quote).
UNDECRYPTABLE = undecryptable_error("member")


class UndecryptableSecret(Exception):
    """A stored secret that no configured key decrypts (its key was rotated away)."""


def webhook_secret_keys(settings: NotifierSettings) -> list[str]:
    """The Fernet keys of NOTIFIER_WEBHOOK_SECRET_KEYS, first the one that encrypts.

    The development key is used when none is set, and accepted, exactly where the development
    JWT secret is (`JWTSettings.hs256_secret`): on the embedded default. Elsewhere a real key is
    required and the development key refused: InsecureConfiguration, at start-up (the
    `DeliveryWorker` is built with the service). A malformed key is refused everywhere, without
    echoing it."""
    variable = settings._variable("webhook_secret_keys")
    keys = [key.get_secret_value().strip() for key in settings.webhook_secret_keys]
    keys = [key for key in keys if key]
    if settings.embedded:
        keys = keys or [DEVELOPMENT_WEBHOOK_SECRET_KEY]
    elif not keys or DEVELOPMENT_WEBHOOK_SECRET_KEY in keys:
        raise InsecureConfiguration(
            f"{variable} must be set to one or more real Fernet keys (comma-separated, the "
            f"first encrypts) when {settings._variable('persistence')} is not the embedded "
            f"'sqlite' default; generate one with: {GENERATE_KEY}"
        )
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (TypeError, ValueError):
            raise InsecureConfiguration(
                f"{variable}: key {position} of {len(keys)} is not a Fernet key (32 url-safe "
                f"base64-encoded bytes); generate one with: {GENERATE_KEY}"
            ) from None
    return keys


_TOKEN_FORM = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def looks_encrypted(stored: str) -> bool:
    """Whether a stored secret has a Fernet token's form: url-safe base64 of version 0x80, a
    timestamp (8 bytes), an IV (16), whole AES blocks (16 each, at least one) and an HMAC (32).
    Anything else was stored in plain text, before secrets were encrypted."""
    if len(stored) % 4 or not _TOKEN_FORM.fullmatch(stored):
        return False
    try:
        raw = base64.urlsafe_b64decode(stored)
    except ValueError:  # binascii.Error
        return False
    return len(raw) >= 73 and raw[0] == 0x80 and (len(raw) - 57) % 16 == 0


@dataclass(frozen=True)
class Revealed:
    """A stored secret, decrypted; ``stored_as`` says whether to encrypt it again: "plain"
    (stored before secrets were encrypted) or "older_key" (not the first key's)."""

    secret: str
    stored_as: Literal["current", "older_key", "plain"]

    @property
    def stale(self) -> bool:
        return self.stored_as != "current"


class SecretCipher:
    """Fernet under the first key, MultiFernet over all of them (rotation)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self._first = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, secret: str) -> str:
        return self._all.encrypt(secret.encode()).decode()  # MultiFernet: the first key

    def reveal(self, stored: str) -> Revealed:
        """The secret of a stored value; raises UndecryptableSecret if no key decrypts it."""
        if not looks_encrypted(stored):
            return Revealed(stored, "plain")
        token = stored.encode()
        try:
            return Revealed(self._first.decrypt(token).decode(), "current")
        except InvalidToken:
            pass
        try:
            return Revealed(self._all.decrypt(token).decode(), "older_key")
        except InvalidToken:
            raise UndecryptableSecret("no configured key decrypts the secret") from None


@functools.lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> SecretCipher:
    return SecretCipher(keys)


def secret_cipher(settings: NotifierSettings) -> SecretCipher:
    """The cipher of the settings' keys (see webhook_secret_keys: may refuse them)."""
    return _cipher(tuple(webhook_secret_keys(settings)))


_REWRITE = (
    f"UPDATE webhooks SET secret = :new WHERE {_WEBHOOK_KEY} AND secret = :old RETURNING owner_id"
)


def rewrite_secret(tx: Tx, key: Mapping[str, str], old: str, new: str) -> bool:
    """Store ``new`` (a token of the first key) in place of ``old``, unless the row changed
    meanwhile (a PUT wins: compare and set). True if rewritten."""
    return bool(tx.execute(_REWRITE, {**key, "old": old, "new": new}))


@dataclass
class Reencrypted:
    """What `reencrypt_secrets` did: secrets encrypted that were plain text, tokens of an older
    key moved to the first, and tokens no key decrypts (left as they are)."""

    plain: int = 0
    older_key: int = 0
    undecryptable: int = 0


def reencrypt_secrets(store: ConsumerStore, cipher: SecretCipher) -> Reencrypted:
    """The migration of stored secrets: each one stored in plain text (before this was
    encrypted) or under an older key is encrypted with the first key. Idempotent; safe in
    several replicas at once (compare and set, rows in key order); a secret no key decrypts is
    left for its owner to set again (its deliveries fail with UNDECRYPTABLE)."""
    done = Reencrypted()
    with store.transaction() as tx:
        rows = tx.execute(
            "SELECT org_id, scope, owner_id, secret FROM webhooks ORDER BY org_id, scope, owner_id"
        )
        for row in rows:
            key = {"org_id": row["org_id"], "scope": row["scope"], "owner_id": row["owner_id"]}
            try:
                revealed = cipher.reveal(row["secret"])
            except UndecryptableSecret:
                done.undecryptable += 1
                continue
            new = cipher.encrypt(revealed.secret) if revealed.stale else None
            if new is not None and rewrite_secret(tx, key, row["secret"], new):
                setattr(done, revealed.stored_as, getattr(done, revealed.stored_as) + 1)
    return done


# ---- the SSRF guard -----------------------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: RFC 6052's well-known NAT64 prefix: an IPv6-only network's DNS64 maps every IPv4 address
#: into it, so what counts is the embedded IPv4 address.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
DEFAULT_PORTS = {"https": 443, "http": 80}
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's defaults


class UnsafeTarget(Exception):
    """A webhook URL the notifier refuses to call; ``code`` is the problem code at registration
    (``invalid_input`` for the URL's form, ``webhook_target_forbidden`` for its addresses)."""

    def __init__(self, reason: str, code: str = "invalid_input") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def resolve_host(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (the system resolver, as a plain connection would
    use), without duplicates, in the resolver's order. Raises OSError when it does not resolve.
    The one place the guard resolves names: tests replace it to fake DNS."""
    addresses: list[Address] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def forbidden_kind(address: Address) -> str | None:
    """Why the notifier must not connect to ``address`` ("loopback", "private", "IPv4-mapped
    link-local" ...), or None when it is a public (globally routable unicast) address."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that IPv4 address: judge that one.
        nat64 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None
        for label, embedded in (
            ("IPv4-mapped", address.ipv4_mapped),
            ("6to4", address.sixtofour),
            ("NAT64", nat64),
        ):
            if embedded is not None:
                kind = forbidden_kind(embedded)
                return f"{label} {kind}" if kind else None
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("private", address.is_private),
        ("non-global", not address.is_global),  # e.g. 100.64.0.0/10, carrier-grade NAT
    )
    return next((kind for kind, matches in checks if matches), None)


def check_addresses(host: str, addresses: Iterable[Address]) -> None:
    """Raise UnsafeTarget unless every address is public (one internal address is enough to
    refuse: the connection might pick it)."""
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    for address in addresses:
        kind = forbidden_kind(address)
        if kind is None:
            continue
        where = "is" if literal == address else f"resolves to {address},"
        raise UnsafeTarget(
            f"the URL's host {host} {where} not a public address ({kind})",
            code="webhook_target_forbidden",
        )


def check_url_form(url: str, *, allow_private_targets: bool) -> httpx.URL:
    """The guard's checks of the URL itself: https (http too when private targets are
    allowed), no user name or password. Returns the URL as httpx parses it (as it sends it)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise UnsafeTarget(f"the URL is malformed: {error}") from None
    if parsed.userinfo:
        raise UnsafeTarget("the URL must not contain a user name or password")
    allowed = ("https", "http") if allow_private_targets else ("https",)
    if parsed.scheme not in allowed:
        raise UnsafeTarget(
            "the URL must start with https://"
            if not allow_private_targets
            else "the URL must start with http:// or https://"
        )
    if not parsed.raw_host:
        raise UnsafeTarget("the URL must name a host")
    return parsed


def check_target(url: str, *, allow_private_targets: bool) -> None:
    """Registration's check (webhook_api): the URL's form, then, unless private targets are
    allowed, that its host resolves and only to public addresses. Raises UnsafeTarget."""
    parsed = check_url_form(url, allow_private_targets=allow_private_targets)
    if allow_private_targets:
        return
    host = parsed.raw_host.decode("ascii")  # IDNA-encoded, as the connection resolves it
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    try:
        addresses = resolve_host(host, port)
    except (OSError, UnicodeError) as error:
        raise UnsafeTarget(f"the URL's host {parsed.host} does not resolve ({error})") from None
    if not addresses:
        raise UnsafeTarget(f"the URL's host {parsed.host} does not resolve")
    check_addresses(parsed.host, addresses)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend with the guard in ``connect_tcp``: it resolves the host
    (`resolve_host`), refuses (UnsafeTarget) if any address is not public, and connects to a
    checked address. httpcore still knows the connection by the URL's host, so the Host header,
    TLS SNI and certificate checks, and connection reuse are those of the name, unchanged.
    With private targets allowed it connects as httpcore does."""

    def __init__(self, *, allow_private_targets: bool = False) -> None:
        self.allow_private_targets = allow_private_targets

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self.allow_private_targets:
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = resolve_host(host, port)
        except (OSError, UnicodeError) as error:  # DNS may be back on the next attempt
            raise httpcore.ConnectError(f"the host {host} does not resolve ({error})") from None
        if not addresses:
            raise httpcore.ConnectError(f"the host {host} does not resolve")
        check_addresses(host, addresses)
        last_error: httpcore.ConnectError | None = None
        for address in addresses:  # each in turn, as socket.create_connection would
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as refused:
                last_error = refused
        assert last_error is not None
        raise last_error


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a connection pool whose network backend is a `GuardedBackend`.

    httpx 0.28.1 has no parameter for a network backend (encode/httpx#3749 proposes one), so
    this replaces the transport's pool, ``_pool``, with one built the same way plus the backend:
    the attribute `HTTPTransport.handle_request` sends through. No proxy: the guard needs the
    direct connection (HTTP(S)_PROXY are not used for webhooks)."""

    def __init__(self, *, allow_private_targets: bool = False) -> None:
        super().__init__(limits=LIMITS)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("httpx.HTTPTransport changed: the webhook guard cannot attach")
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # verified, SSL_CERT_FILE/DIR honoured
            max_connections=LIMITS.max_connections,
            max_keepalive_connections=LIMITS.max_keepalive_connections,
            keepalive_expiry=LIMITS.keepalive_expiry,
            network_backend=GuardedBackend(allow_private_targets=allow_private_targets),
        )


def guarded_client(settings: NotifierSettings) -> httpx.Client:
    """The delivery worker's HTTP client: no redirects (a 3xx is an answer, not a hop to an
    unchecked address), no proxies or .netrc from the environment, the guard in every
    connection."""
    return httpx.Client(
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        transport=GuardedTransport(allow_private_targets=settings.webhook_allow_private_targets),
    )


# ---- delivering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: delivered, worth a retry (after ``retry_after`` seconds when
    the receiver said so, else the backoff), or failed for good."""

    result: Literal["delivered", "retry", "failed"]
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


_CLAIM = """UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = :lease_until,
        last_attempt_at = :now
    WHERE (notification_id, scope) IN (
        SELECT notification_id, scope FROM deliveries
        WHERE status = 'pending' AND next_attempt_at <= :now
        ORDER BY next_attempt_at, notification_id
        LIMIT :limit{lock})
    RETURNING notification_id, scope, owner_id, org_id, attempts"""
_LOCK = {"postgres": " FOR UPDATE SKIP LOCKED", "sqlite": ""}

_RECORD = """UPDATE deliveries SET status = :status, next_attempt_at = :next_attempt_at,
        last_status_code = :status_code, last_error = :error, delivered_at = :delivered_at
    WHERE notification_id = :notification_id AND scope = :scope AND status = 'pending'
        AND attempts = :attempt"""


def _retry_after(value: str | None, now: datetime) -> float | None:
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


def classify(status_code: int) -> Literal["delivered", "retry", "failed"]:
    """2xx delivered; 4xx other than 408/429 is permanent; anything else is worth a retry."""
    if 200 <= status_code < 300:
        return "delivered"
    if 400 <= status_code < 500 and status_code not in (408, 429):
        return "failed"
    return "retry"


class DeliveryWorker:
    """Sends due webhook deliveries; safe to run in several replicas on PostgreSQL.

    ``run_once()`` does one round; ``start_thread(name)`` runs rounds in a thread, every
    ``webhook_poll_seconds`` or sooner when ``wake()`` is called (the projection does when it
    stores notifications); ``stop()`` ends the loop promptly, ``close()`` also waits for it and
    closes the HTTP client. The store belongs to the caller: ``close()`` leaves it open.

    Built with the service, it refuses keys unfit for the configuration (`secret_cipher`:
    InsecureConfiguration). Its first round runs `reencrypt_secrets` (until it succeeds once);
    a secret met in plain text or under an older key at delivery is re-encrypted too.
    """

    def __init__(
        self,
        store: ConsumerStore,
        settings: NotifierSettings,
        clock: Clock,
        *,
        client: httpx.Client | None = None,
        batch_size: int = BATCH_SIZE,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.batch_size = batch_size
        self.jitter = jitter
        self.cipher = secret_cipher(settings)
        self.client = client or guarded_client(settings)
        self.error: BaseException | None = None
        self.reencrypted: Reencrypted | None = None  # the start-up pass, once it ran
        self.delivered = 0
        self.failed = 0
        self.retried = 0
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- one round ----------------------------------------------------------------------------

    def run_once(self) -> int:
        """Attempt the due deliveries (each at most once); returns how many were attempted."""
        if self.reencrypted is None:
            self._reencrypt()
        attempted = 0
        for _ in range(MAX_BATCHES):
            claimed = self._claim()
            for delivery in claimed:
                if self._stopping.is_set():
                    break  # the rest are retried when their lease ends
                self._attempt(delivery)
                attempted += 1
            if len(claimed) < self.batch_size or self._stopping.is_set():
                break
        return attempted

    def _reencrypt(self) -> None:
        """The start-up pass over stored secrets; a failure is logged and the pass retried next
        round, while deliveries go on (they re-encrypt what they meet)."""
        try:
            self.reencrypted = done = reencrypt_secrets(self.store, self.cipher)
        except Exception:
            log.exception("re-encrypting the webhooks' secrets failed; retried next round")
            return
        if done.plain or done.older_key:
            log.info(
                "webhook secrets encrypted with the first NOTIFIER_WEBHOOK_SECRET_KEYS key: %s "
                "stored in plain text, %s under an older key",
                done.plain,
                done.older_key,
            )
        if done.undecryptable:
            log.warning(
                "%s webhook secret(s) cannot be decrypted with NOTIFIER_WEBHOOK_SECRET_KEYS: "
                "their deliveries fail until their owners set them again",
                done.undecryptable,
            )

    @property
    def lease_seconds(self) -> float:
        """How long a claimed batch stays invisible to other replicas: time enough for every
        delivery of the batch to time out, twice."""
        return max(30.0, 2 * self.batch_size * (self.settings.webhook_timeout_seconds + 1))

    def _claim(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        with self.store.transaction() as tx:
            claimed = tx.execute(
                _CLAIM.format(lock=_LOCK[tx.dialect]),
                {
                    "now": utc_text(now),
                    "lease_until": utc_text(now + timedelta(seconds=self.lease_seconds)),
                    "limit": self.batch_size,
                },
            )
            if not claimed:
                return []
            return self._details(tx, [dict(row) for row in claimed])

    def _details(self, tx: Tx, claimed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The notification and the webhook of each claimed delivery (in claim order)."""
        ids = sorted({row["notification_id"] for row in claimed})
        params = {f"n{i}": value for i, value in enumerate(ids)}
        notifications = {
            row["id"]: dict(row)
            for row in tx.execute(
                "SELECT id, org_id, recipient_id, objective_id, rule, message_key, params, "
                "link, created_at FROM notifications WHERE id IN "
                f"({', '.join(':' + key for key in params)})",
                params,
            )
        }
        owners = {(row["org_id"], row["scope"], row["owner_id"]) for row in claimed}
        webhooks: dict[tuple[str, str, str], dict[str, Any]] = {}
        for org_id, scope, owner_id in owners:
            rows = tx.execute(
                f"SELECT url, secret FROM webhooks WHERE {_WEBHOOK_KEY}",
                {"org_id": org_id, "scope": scope, "owner_id": owner_id},
            )
            if rows:
                webhooks[(org_id, scope, owner_id)] = dict(rows[0])
        return [
            {
                **row,
                "notification": notifications.get(row["notification_id"]),
                "webhook": webhooks.get((row["org_id"], row["scope"], row["owner_id"])),
            }
            for row in claimed
        ]

    def _attempt(self, delivery: dict[str, Any]) -> None:
        attempt = delivery["attempts"]
        notification, webhook = delivery["notification"], delivery["webhook"]
        if webhook is None:
            outcome = Outcome("failed", error="no webhook is configured any more")
        elif notification is None:
            outcome = Outcome("failed", error="the notification no longer exists")
        elif attempt > self.settings.webhook_max_attempts:
            # Claimed before by a replica that died during its attempt, the last one allowed.
            outcome = Outcome("failed", error="gave up: the last attempt did not finish")
        else:
            secret = self._secret(delivery, webhook)
            if secret is None:  # retrying cannot help until the owner sets it again
                outcome = Outcome("failed", error=undecryptable_error(delivery["scope"]))
            else:
                outcome = self.send(webhook["url"], secret, notification, attempt)
        self._record(delivery, outcome)

    def _secret(self, delivery: Mapping[str, Any], webhook: dict[str, Any]) -> str | None:
        """The webhook's secret, decrypted (None if no key can); one stored in plain text or
        under an older key is encrypted with the first key on the way (the start-up pass may
        not have seen it: a replica of a version before encryption stored it since)."""
        stored = webhook["secret"]
        try:
            revealed = self.cipher.reveal(stored)
        except UndecryptableSecret:
            return None
        if revealed.stale:
            key = {name: delivery[name] for name in ("org_id", "scope", "owner_id")}
            new = self.cipher.encrypt(revealed.secret)
            try:
                with self.store.transaction() as tx:
                    if rewrite_secret(tx, key, stored, new):
                        log.info("webhook secret of %(scope)s %(owner_id)s re-encrypted", key)
            except Exception:  # the delivery matters more; its next delivery tries again
                log.exception("re-encrypting the secret of %(scope)s %(owner_id)s failed", key)
            webhook["secret"] = new  # the batch's other deliveries to it: nothing to do
        return revealed.secret

    def send(self, url: str, secret: str, notification: Mapping[str, Any], attempt: int) -> Outcome:
        """POST one notification to a webhook; never raises."""
        body = encode_body(notification)
        headers = request_headers(secret, notification["id"], body, attempt, int(time.time()))
        try:
            # The form again (the setting may have changed since registration); the addresses
            # are checked in the connection (GuardedBackend), which raises UnsafeTarget.
            check_url_form(url, allow_private_targets=self.settings.webhook_allow_private_targets)
            with self.client.stream("POST", url, content=body, headers=headers) as response:
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
                    retry_after = _retry_after(
                        response.headers.get("Retry-After"), datetime.now(UTC)
                    )
                return Outcome(result, code, error, retry_after)
        except UnsafeTarget as error:  # permanent, like a 4xx: retrying would not help
            return Outcome("failed", error=f"refused by the SSRF guard: {error.reason}")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
            return Outcome("failed", error=f"{type(error).__name__}: {error}")
        except httpx.TimeoutException as error:
            timeout = self.settings.webhook_timeout_seconds
            return Outcome("retry", error=f"timed out after {timeout:g} s ({type(error).__name__})")
        except Exception as error:  # connection refused, reset, DNS, TLS ...: worth a retry
            return Outcome("retry", error=f"{type(error).__name__}: {error}")

    def retry_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before the next attempt after ``attempt`` failed."""
        if retry_after is not None:
            return min(retry_after, MAX_DELAY_SECONDS)
        delay = self.settings.webhook_backoff_seconds * 2 ** (attempt - 1)
        delay = min(delay, MAX_DELAY_SECONDS)
        return delay + delay * JITTER * self.jitter()

    def _record(self, delivery: dict[str, Any], outcome: Outcome) -> None:
        now = self.clock.now()
        attempt = delivery["attempts"]
        status: Status = "pending"
        next_attempt_at: str | None = None
        delivered_at: str | None = None
        if outcome.result == "delivered":
            status, delivered_at = "delivered", utc_text(now)
            self.delivered += 1
        elif outcome.result == "retry" and attempt < self.settings.webhook_max_attempts:
            delay = max(self.retry_delay(attempt, outcome.retry_after), 0.001)
            next_attempt_at = utc_text(now + timedelta(seconds=delay))
            self.retried += 1
        else:
            status = "failed"
            self.failed += 1
        error = outcome.error
        if status == "failed" and outcome.result == "retry":
            error = f"gave up after {attempt} attempts; last: {error}"
        log_level = logging.INFO if status != "failed" else logging.WARNING
        log.log(
            log_level,
            "webhook delivery of notification %s (%s %s) attempt %s: %s %s",
            delivery["notification_id"],
            delivery["scope"],
            delivery["owner_id"],
            attempt,
            status,
            error or outcome.status_code,
        )
        with self.store.transaction() as tx:
            tx.execute(
                _RECORD,
                {
                    "status": status,
                    "next_attempt_at": next_attempt_at,
                    "status_code": outcome.status_code,
                    "error": error[:ERROR_LENGTH] if error else None,
                    "delivered_at": delivered_at,
                    "notification_id": delivery["notification_id"],
                    "scope": delivery["scope"],
                    "attempt": attempt,
                },
            )

    # ---- lifecycle ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Run a round now rather than at the next poll (new notifications were stored)."""
        self._woken.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            self._woken.clear()
            try:
                self.run_once()
                self.error = None
            except Exception as error:  # the database away: keep trying at the poll interval
                self.error = error
                log.exception("webhook delivery round failed")
            self._woken.wait(self.settings.webhook_poll_seconds)

    def start_thread(self, name: str = "okr-notifier-webhooks") -> threading.Thread:
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name=name, daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stopping.set()
        self._woken.set()

    def close(self, timeout: float = 10.0) -> None:
        """Stop, wait for the loop to end (an attempt in flight ends within the HTTP timeout),
        then close the HTTP client. The store stays open (it is the caller's)."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self.client.close()


def due_counts(store: ConsumerStore) -> dict[str, int]:
    """How many deliveries are in each status (for health checks and metrics)."""
    rows = store.query("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status")
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    counts.update({row["status"]: int(row["n"]) for row in rows})
    return counts
