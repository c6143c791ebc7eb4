"""The webhooks' signing secrets at rest.

The ``secret`` column holds a Fernet token (AES-128-CBC and HMAC-SHA256, `SecretCipher`) under
the first of ``NOTIFIER_WEBHOOK_SECRET_KEYS``; every key of the list decrypts, so keys rotate
(`webhook_secret_keys` says which keys are acceptable: the development key on the embedded
default only). A value that does not have a Fernet token's form is a secret stored in plain
text before secrets were encrypted: it is still used, and `reencrypt_secrets` (the worker's
first round, and again for a row met at delivery) encrypts it, as it re-encrypts a token of an
older key under the first one. A token no configured key decrypts fails its deliveries for good
with `UNDECRYPTABLE` as the last error: the owner sets the secret again."""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from okr_platform.settings import InsecureConfiguration

from .tables import WEBHOOK_KEY, Scope

if TYPE_CHECKING:
    from okr_events.consuming import ConsumerStore, Tx

    from ..settings import NotifierSettings

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
    f"UPDATE webhooks SET secret = :new WHERE {WEBHOOK_KEY} AND secret = :old RETURNING owner_id"
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
