"""The notifier kit: settings on SQLite or PostgreSQL, with the goals test kit's
JWT secret so one token works for both contexts, a key for the webhooks' secrets (PostgreSQL
refuses to start without one), and webhooks allowed to call private addresses (the tests'
webhook receivers listen on 127.0.0.1; pass webhook_allow_private_targets=False to test the
SSRF guard)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from okr_notifier.settings import NotifierSettings

from .goals import JWT_SECRET

#: NOTIFIER_WEBHOOK_SECRET_KEYS of the kit: base64 of b"okr-notifier-test-webhook-key-01".
WEBHOOK_SECRET_KEY = "b2tyLW5vdGlmaWVyLXRlc3Qtd2ViaG9vay1rZXktMDE="


_WEBHOOKS: dict[str, object] = {
    "webhook_allow_private_targets": True,
    "webhook_secret_keys": [WEBHOOK_SECRET_KEY],
}


def sqlite_settings(tmp_path: Path, **overrides: object) -> NotifierSettings:
    return NotifierSettings(
        persistence="sqlite",
        data_dir=tmp_path / "notifier",
        jwt_secret=JWT_SECRET,
        scheduler_enabled=False,
        **(_WEBHOOKS | overrides),  # type: ignore[arg-type]
    )


def postgres_settings(dsn: str, schema: str, **overrides: object) -> NotifierSettings:
    url = urlparse(dsn)
    return NotifierSettings(
        persistence="postgres",
        postgres_host=url.hostname or "127.0.0.1",
        postgres_port=url.port or 5432,
        postgres_dbname=url.path.lstrip("/"),
        postgres_user=url.username or "okr",
        postgres_password=url.password or "",
        postgres_schema=schema,
        postgres_pool_size=3,
        jwt_secret=JWT_SECRET,
        scheduler_enabled=False,
        **(_WEBHOOKS | overrides),  # type: ignore[arg-type]
    )
