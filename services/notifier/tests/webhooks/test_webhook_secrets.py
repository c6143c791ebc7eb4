"""Webhooks: the signing secrets encrypted at rest (rotation, rows stored in plain text before,
keys that no longer decrypt) and the keys' settings."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from okr_notifier.settings import NotifierSettings
from okr_notifier.webhooks.delivery_worker import DeliveryWorker
from okr_notifier.webhooks.records import UNREADABLE_HINT
from okr_notifier.webhooks.secrets_at_rest import (
    DEVELOPMENT_WEBHOOK_SECRET_KEY,
    UNDECRYPTABLE,
    Reencrypted,
    Revealed,
    SecretCipher,
    UndecryptableSecret,
    looks_encrypted,
    reencrypt_secrets,
    rewrite_secret,
    webhook_secret_keys,
)
from okr_notifier.webhooks.signing import verify
from okr_platform.clock import FakeClock, utc_text
from okr_platform.settings import DEVELOPMENT_JWT_SECRET, InsecureConfiguration
from okr_testkit.notifier import WEBHOOK_SECRET_KEY
from okr_testkit.suite import Suite

from .webhook_kit import (
    MEMBER,
    ORG,
    SECRET,
    START,
    FakeService,
    Received,
    Receiver,
    add_webhook,
    api_client,
    delivery,
    notify,
    settings,
)

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def stored_secret(store: Any, scope: str = "member", owner: str = "m1") -> str:
    """The secret column of a webhook, as a database dump would show it."""
    rows = store.query(
        "SELECT secret FROM webhooks WHERE org_id = :o AND scope = :s AND owner_id = :w",
        {"o": ORG, "s": scope, "w": ORG if scope == "org" else owner},
    )
    return str(rows[0]["secret"])


def decrypts_with(key: str, stored: str) -> str | None:
    try:
        return Fernet(key).decrypt(stored.encode()).decode()
    except InvalidToken:
        return None


def add_plain_webhook(store: Any, url: str, owner: str = "m1") -> None:
    """A webhook as stored before secrets were encrypted (or by a replica of that version)."""
    store.query(
        """INSERT INTO webhooks (org_id, scope, owner_id, url, secret, created_at, updated_at)
        VALUES (:o, 'member', :w, :url, :secret, :at, :at)""",
        {"o": ORG, "w": owner, "url": url, "secret": SECRET, "at": utc_text(START)},
    )


def signed_with(request: Received, secret: str) -> bool:
    headers = request.headers
    return verify(secret, headers["x-okr-timestamp"], request.body, headers["x-okr-signature"])


def test_a_put_stores_the_secret_encrypted_and_deliveries_are_signed_with_it(
    any_webhook_store: Any, webhook_receiver: Receiver, make_worker: Any, webhook_clock: FakeClock
) -> None:
    store = any_webhook_store
    client = api_client(FakeService(store, settings(webhook_secret_keys=[KEY_A]), webhook_clock))
    body = {"url": webhook_receiver.url, "secret": SECRET}
    assert client.put("/webhooks/me", json=body, headers=MEMBER).status_code == 200

    stored = stored_secret(store)
    assert SECRET not in stored and looks_encrypted(stored)
    assert decrypts_with(KEY_A, stored) == SECRET
    assert client.get("/webhooks/me", headers=MEMBER).json()["secret_hint"] == "…cret"

    notification_id = notify(store)
    worker = make_worker(store, webhook_secret_keys=[KEY_A])
    assert worker.run_once() == 1
    assert delivery(store, notification_id)["status"] == "delivered"
    [request] = webhook_receiver.requests
    assert signed_with(request, SECRET)
    assert worker.reencrypted == Reencrypted()  # nothing to migrate
    assert stored_secret(store) == stored


def test_rotation_the_old_key_still_decrypts_and_the_new_one_encrypts(
    any_webhook_store: Any, webhook_receiver: Receiver, make_worker: Any, webhook_clock: FakeClock
) -> None:
    store = any_webhook_store
    add_webhook(store, webhook_receiver, owner="m1", cipher=SecretCipher([KEY_A]))
    assert decrypts_with(KEY_A, stored_secret(store, owner="m1")) == SECRET
    first = notify(store, "m1")

    # Rotated: B first, A still listed. The start-up pass moves the secret to B ...
    worker = make_worker(store, webhook_secret_keys=[KEY_B, KEY_A])
    assert worker.run_once() == 1
    assert worker.reencrypted == Reencrypted(older_key=1)
    assert delivery(store, first)["status"] == "delivered"
    assert signed_with(webhook_receiver.requests[-1], SECRET)
    assert decrypts_with(KEY_A, stored_secret(store, owner="m1")) is None
    assert decrypts_with(KEY_B, stored_secret(store, owner="m1")) == SECRET

    # ... a secret stored under A after it (a replica not yet rotated) is moved at delivery ...
    add_webhook(store, webhook_receiver, owner="m2", cipher=SecretCipher([KEY_A]))
    second = notify(store, "m2")
    assert worker.run_once() == 1
    assert delivery(store, second)["status"] == "delivered"
    assert signed_with(webhook_receiver.requests[-1], SECRET)
    assert decrypts_with(KEY_B, stored_secret(store, owner="m2")) == SECRET

    # ... and a PUT encrypts with B.
    rotated = settings(webhook_secret_keys=f"{KEY_B},{KEY_A}")
    client = api_client(FakeService(store, rotated, webhook_clock))
    other = "another-secret-for-m1"
    body = {"url": webhook_receiver.url, "secret": other}
    assert client.put("/webhooks/me", json=body, headers=MEMBER).json()["secret_hint"] == "…r-m1"
    stored = stored_secret(store, owner="m1")
    assert decrypts_with(KEY_B, stored) == other and decrypts_with(KEY_A, stored) is None
    third = notify(store, "m1")
    assert worker.run_once() == 1
    assert delivery(store, third)["status"] == "delivered"
    assert signed_with(webhook_receiver.requests[-1], other)


def test_a_secret_no_configured_key_decrypts_fails_its_deliveries_for_good_visibly(
    any_webhook_store: Any, webhook_receiver: Receiver, make_worker: Any, webhook_clock: FakeClock
) -> None:
    store = any_webhook_store
    add_webhook(store, webhook_receiver, "member", cipher=SecretCipher([KEY_A]))
    add_webhook(store, webhook_receiver, "org", cipher=SecretCipher([KEY_A]))
    notification_id = notify(store)
    worker = make_worker(store, webhook_secret_keys=[KEY_B])  # A was rotated away

    assert worker.run_once() == 2  # nothing raised
    assert worker.reencrypted == Reencrypted(undecryptable=2)
    webhook_clock.advance(timedelta(hours=1))
    assert worker.run_once() == 0  # failed for good: no retry
    assert webhook_receiver.requests == [] and worker.failed == 2 and worker.error is None
    member, org = delivery(store, notification_id), delivery(store, notification_id, "org")
    assert (member["status"], member["attempts"], member["next_attempt_at"]) == ("failed", 1, None)
    assert (
        member["last_error"]
        == UNDECRYPTABLE
        == (
            "the webhook's secret cannot be decrypted with the configured "
            "NOTIFIER_WEBHOOK_SECRET_KEYS: set it again with PUT /webhooks/me"
        )
    )
    assert org["status"] == "failed"
    assert org["last_error"].endswith("set it again with PUT /webhooks/org")

    client = api_client(FakeService(store, worker.settings, webhook_clock))
    page = client.get("/webhooks/me/deliveries?status=failed", headers=MEMBER).json()
    assert [(d["notification_id"], d["last_error"]) for d in page["items"]] == [
        (notification_id, UNDECRYPTABLE)
    ]
    assert client.get("/webhooks/me", headers=MEMBER).json()["secret_hint"] == (UNREADABLE_HINT)

    # Set again (encrypted with B), the failed delivery can be retried and is delivered.
    body = {"url": webhook_receiver.url, "secret": SECRET}
    assert client.put("/webhooks/me", json=body, headers=MEMBER).json()["secret_hint"] == "…cret"
    retried = client.post(f"/webhooks/me/deliveries/{notification_id}/retry", headers=MEMBER)
    assert retried.status_code == 200, retried.text
    assert worker.run_once() == 1
    assert delivery(store, notification_id)["status"] == "delivered"
    assert signed_with(webhook_receiver.requests[-1], SECRET)


def test_a_secret_stored_in_plain_text_is_encrypted_at_start_up_and_still_delivered(
    any_webhook_store: Any, webhook_receiver: Receiver, make_worker: Any, webhook_clock: FakeClock
) -> None:
    store = any_webhook_store
    add_plain_webhook(store, webhook_receiver.url, "m1")
    assert stored_secret(store, owner="m1") == SECRET  # the legacy row
    client = api_client(FakeService(store, settings(webhook_secret_keys=[KEY_A]), webhook_clock))
    assert client.get("/webhooks/me", headers=MEMBER).json()["secret_hint"] == "…cret"

    worker = make_worker(store, webhook_secret_keys=[KEY_A])
    assert worker.run_once() == 0  # no delivery due: the start-up pass ran all the same
    assert worker.reencrypted == Reencrypted(plain=1)
    stored = stored_secret(store, owner="m1")
    assert SECRET not in stored and decrypts_with(KEY_A, stored) == SECRET
    assert reencrypt_secrets(store, worker.cipher) == Reencrypted()  # idempotent
    assert stored_secret(store, owner="m1") == stored

    first = notify(store, "m1")
    assert worker.run_once() == 1
    assert delivery(store, first)["status"] == "delivered"
    assert signed_with(webhook_receiver.requests[-1], SECRET)

    # Stored in plain text after the start-up pass (a replica of the previous version, during a
    # rolling update): encrypted when its delivery meets it.
    add_plain_webhook(store, webhook_receiver.url, "m2")
    second, third = notify(store, "m2"), notify(store, "m2")
    assert worker.run_once() == 2
    assert [delivery(store, n)["status"] for n in (second, third)] == ["delivered"] * 2
    assert all(signed_with(r, SECRET) for r in webhook_receiver.requests)
    assert decrypts_with(KEY_A, stored_secret(store, owner="m2")) == SECRET


def test_a_rewrite_never_overwrites_a_secret_put_meanwhile(webhook_store: Any) -> None:
    cipher = SecretCipher([KEY_A])
    add_plain_webhook(webhook_store, "http://127.0.0.1:9/h")
    key = {"org_id": ORG, "scope": "member", "owner_id": "m1"}
    put_meanwhile = cipher.encrypt("the-new-secret-0000")
    with webhook_store.transaction() as tx:
        assert rewrite_secret(tx, key, SECRET, put_meanwhile)
    with (
        webhook_store.transaction() as tx
    ):  # what a pass that read the plain row would write: refused
        assert not rewrite_secret(tx, key, SECRET, cipher.encrypt(SECRET))
    assert stored_secret(webhook_store) == put_meanwhile


@pytest.mark.parametrize(
    "value",
    [
        SECRET,
        "0123456789abcdef0123456789abcdef",
        KEY_A,  # someone's secret could be a Fernet key: not a token
        "gAAAAABn" + "A" * 92,  # a token's prefix and length, but not whole AES blocks
        Fernet(KEY_A).encrypt(b"x").decode()[:-4],
        Fernet(KEY_A).encrypt(b"x").decode() + " ",
    ],
)
def test_only_a_fernet_token_is_taken_for_an_encrypted_secret(value: str) -> None:
    assert not looks_encrypted(value)
    assert SecretCipher([KEY_A]).reveal(value) == Revealed(value, "plain")


def test_a_token_of_any_configured_key_is_encrypted() -> None:
    for secret in ("x", SECRET, "s" * 256, "秘密" * 10):
        for key in (KEY_A, KEY_B):
            assert looks_encrypted(Fernet(key).encrypt(secret.encode()).decode())
    cipher = SecretCipher([KEY_B, KEY_A])
    assert cipher.reveal(cipher.encrypt(SECRET)) == Revealed(SECRET, "current")
    older = SecretCipher([KEY_A]).encrypt(SECRET)
    assert cipher.reveal(older) == Revealed(SECRET, "older_key")
    with pytest.raises(UndecryptableSecret):
        SecretCipher([KEY_B]).reveal(older)


# ---- the keys' settings -------------------------------------------------------------------------


def test_without_keys_the_development_key_serves_the_embedded_default_only() -> None:
    embedded = NotifierSettings()
    assert webhook_secret_keys(embedded) == [DEVELOPMENT_WEBHOOK_SECRET_KEY]
    assert webhook_secret_keys(
        NotifierSettings(webhook_secret_keys=[DEVELOPMENT_WEBHOOK_SECRET_KEY])
    ) == [DEVELOPMENT_WEBHOOK_SECRET_KEY]
    assert webhook_secret_keys(NotifierSettings(webhook_secret_keys=[KEY_A])) == [KEY_A]

    production = {"persistence": "postgres", "jwt_secret": "x" * 40}
    expected = (
        "NOTIFIER_WEBHOOK_SECRET_KEYS must be set to one or more real Fernet keys "
        "(comma-separated, the first encrypts) when NOTIFIER_PERSISTENCE is not the embedded "
        "'sqlite' default; generate one with: python -c \"from cryptography.fernet import "
        'Fernet; print(Fernet.generate_key().decode())"'
    )
    development = DEVELOPMENT_WEBHOOK_SECRET_KEY
    for keys in ([], [development], [KEY_A, development]):
        refused = NotifierSettings(**production, webhook_secret_keys=keys)
        with pytest.raises(InsecureConfiguration) as caught:
            webhook_secret_keys(refused)
        assert str(caught.value) == expected
        with pytest.raises(InsecureConfiguration):  # the service refuses to start
            DeliveryWorker(None, refused, FakeClock(START))  # type: ignore[arg-type]
    assert webhook_secret_keys(
        NotifierSettings(**production, webhook_secret_keys=[KEY_B, KEY_A])
    ) == [KEY_B, KEY_A]


@pytest.mark.parametrize("persistence", ["sqlite", "postgres"])
def test_the_development_key_is_accepted_exactly_where_the_development_jwt_secret_is(
    persistence: str,
) -> None:
    def accepted(check: Any) -> bool:
        try:
            check()
        except InsecureConfiguration:
            return False
        return True

    unset = NotifierSettings(persistence=persistence)  # type: ignore[arg-type]
    development = NotifierSettings(
        persistence=persistence,  # type: ignore[arg-type]
        jwt_secret=DEVELOPMENT_JWT_SECRET,
        webhook_secret_keys=[DEVELOPMENT_WEBHOOK_SECRET_KEY],
    )
    for candidate in (unset, development):
        jwt = accepted(candidate.check_secure)
        assert accepted(lambda c=candidate: webhook_secret_keys(c)) is jwt
        assert jwt is (persistence == "sqlite")


def test_the_keys_are_read_comma_separated_and_a_malformed_one_is_refused_unechoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFIER_PERSISTENCE", "postgres")
    monkeypatch.setenv("NOTIFIER_WEBHOOK_SECRET_KEYS", f" {KEY_B} ,{KEY_A},")
    from_env = NotifierSettings()
    assert webhook_secret_keys(from_env) == [KEY_B, KEY_A]
    assert KEY_B not in repr(from_env) and KEY_B not in str(from_env.model_dump())
    monkeypatch.setenv("NOTIFIER_WEBHOOK_SECRET_KEYS", f'["{KEY_A}"]')
    assert webhook_secret_keys(NotifierSettings()) == [KEY_A]

    for value in (f"{KEY_A},not-a-fernet-key", f"[{KEY_A},not-a-fernet-key"):
        monkeypatch.setenv("NOTIFIER_WEBHOOK_SECRET_KEYS", value)
        with pytest.raises(InsecureConfiguration) as caught:
            webhook_secret_keys(NotifierSettings())
        assert "NOTIFIER_WEBHOOK_SECRET_KEYS: key 2 of 2 is not a Fernet key" in str(caught.value)
        assert "not-a-fernet-key" not in str(caught.value) and KEY_A not in str(caught.value)


def test_the_service_stores_the_secret_encrypted_with_its_configured_key(
    suite: Suite, webhook_receiver: Receiver
) -> None:
    r = suite.client.put(
        "/webhooks/me",
        json={"url": webhook_receiver.url, "secret": SECRET},
        headers=suite.h("mengbo"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["secret_hint"] == "…cret"
    [row] = suite.service.store.query("SELECT secret FROM webhooks")
    assert SECRET not in row["secret"]
    assert decrypts_with(WEBHOOK_SECRET_KEY, row["secret"]) == SECRET

    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"])
    suite.check_in("bailu", objective, current=1)
    # Due at the check-in's time, which is the goals service's real clock's: a day past both it
    # and the frozen clock (advancing the frozen clock alone stops short once today is a day
    # past the kit's start).
    suite.clock.set(max(suite.clock.now(), datetime.now(UTC)) + timedelta(days=1))
    deadline = time.monotonic() + 10
    while not webhook_receiver.requests and time.monotonic() < deadline:
        suite.service.delivery.wake()
        time.sleep(0.02)
    [request] = webhook_receiver.requests
    assert signed_with(request, SECRET)
