"""Outgoing webhooks: work notifications delivered like DingTalk/Feishu ones.

A member may register one webhook for the notifications addressed to them (scope ``member``),
and an organisation admin one for every notification of the organisation (scope ``org``). The
HTTP API is webhook_api.py. Each module has one job; import a name from the module that owns it:

- `tables`: the ``webhooks`` and ``deliveries`` tables (DDL), the scopes and statuses.
- `delivery_queue`: a notification's deliveries queued in its own transaction
  (`enqueue_deliveries`), and the count of deliveries by status (`due_counts`).
- `signing`: the body and headers of a delivery, HMAC-SHA256 over ``"<timestamp>.<body>"``
  (`sign`, and `verify`, what a receiver checks).
- `records`: webhooks and deliveries as the API reads and writes them (save, get, delete a
  webhook; list, get, requeue a delivery).
- `secrets_at_rest`: which Fernet keys are acceptable (`webhook_secret_keys`), the cipher that
  encrypts the signing secrets (`SecretCipher`, `secret_cipher`) and the re-encryption of
  secrets stored in plain text or under an older key (`reencrypt_secrets`).
- `ssrf_guard`: the checks that keep the notifier from calling internal addresses, at
  registration (`check_target`) and in every connection (`GuardedBackend`, `guarded_client`).
- `sending`: one attempt, one POST, and what it came to (`Outcome`, `classify`).
- `delivery_worker`: `DeliveryWorker`, which claims due deliveries (safely in several replicas),
  sends them, and records each outcome with its retry (exponential backoff with jitter).
"""
