"""The delivery worker: sends the due deliveries and records every attempt's outcome on the
delivery (attempts, last status code, last error), which the API lists (webhook_api.py).

A failed attempt worth a retry is due again after an exponential backoff with jitter (or the
receiver's ``Retry-After``, at most `MAX_DELAY_SECONDS`); after ``webhook_max_attempts`` the
delivery fails for good, visibly, and can be queued again.

Two replicas: on PostgreSQL a replica claims due rows with ``FOR UPDATE SKIP LOCKED`` and, in
the same statement, counts the attempt and moves ``next_attempt_at`` past the time the attempt
may take (a lease), so the other replica neither waits for nor picks them; the outcome is
written only if the attempt still holds the row (same attempt number, still pending).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from okr_platform.clock import utc_text

from .secrets_at_rest import (
    Reencrypted,
    UndecryptableSecret,
    reencrypt_secrets,
    rewrite_secret,
    secret_cipher,
    undecryptable_error,
)
from .sending import Outcome, post_notification
from .ssrf_guard import guarded_client
from .tables import WEBHOOK_KEY, Status

if TYPE_CHECKING:
    from okr_events.consuming import ConsumerStore, Tx
    from okr_platform.clock import Clock

    from ..settings import NotifierSettings

log = logging.getLogger(__name__)

#: Deliveries claimed per transaction, and batches per `DeliveryWorker.run_once` at most.
BATCH_SIZE = 10
MAX_BATCHES = 10
#: Longest wait between attempts, whatever the backoff or the receiver's Retry-After says.
MAX_DELAY_SECONDS = 3600.0
JITTER = 0.1  # up to 10 % added to a backoff delay, so retries of many deliveries spread out
ERROR_LENGTH = 500  # characters of an error kept as the delivery's last error

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
                f"SELECT url, secret FROM webhooks WHERE {WEBHOOK_KEY}",
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
        return post_notification(
            self.client,
            url,
            secret,
            notification,
            attempt,
            allow_private_targets=self.settings.webhook_allow_private_targets,
            timeout_seconds=self.settings.webhook_timeout_seconds,
        )

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
