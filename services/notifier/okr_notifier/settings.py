"""Settings of the notifier service (prefix NOTIFIER_), each documented in
docs/settings.md#notifier."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

from okr_events import EXECUTION_TOPIC, GOALS_TOPIC
from okr_platform.settings import ServiceSettings
from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import NoDecode, SettingsConfigDict


def _key_list(value: Any) -> Any:
    """NOTIFIER_WEBHOOK_SECRET_KEYS as "key1,key2" (or a JSON list): a list of keys."""
    if not isinstance(value, str):
        return value
    parts: Any = value.split(",")
    if value.strip().startswith("["):
        # Never raise here (pydantic's error would show the keys): not JSON, each part fails
        # as "not a Fernet key" in webhooks.py, which does not echo it.
        with contextlib.suppress(ValueError):
            parts = json.loads(value)
    return [str(part).strip() for part in parts if str(part).strip()]


class NotifierSettings(ServiceSettings):
    """Its JWT settings (NOTIFIER_JWT_SECRET, _ALGORITHM, _PUBLIC_KEY, _JWKS_URL) and its storage
    (NOTIFIER_PERSISTENCE, _DATA_DIR, _POSTGRES_*; the follows' event store and the projection
    live there): ServiceSettings."""

    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    data_dir: Path = Path("data/notifier")
    postgres_schema: str = "notifier"
    postgres_pool_size: int = 4

    # What it consumes (OKR_KAFKA_* says where Kafka is), as its own consumer group. (A Field,
    # as ruff's RUF012 does not see a pydantic model through ServiceSettings; pydantic copies it.)
    topics: list[str] = Field(default=[GOALS_TOPIC, EXECUTION_TOPIC])
    group_id: str = "okr-notifier"
    consume: bool = True  # false: serve the API only (another process consumes)

    # The daily checks: how often the scheduler wakes up to run the checks that are due.
    scheduler_enabled: bool = True
    scheduler_tick_seconds: float = 30.0
    # Development only: the clock can be set through the API (PUT /admin/clock) and the CLI,
    # to see tomorrow's daily check today. Refused outside the embedded default unless set.
    fake_clock: bool = False

    # Outgoing webhooks (work notifications delivered like DingTalk/Feishu ones).
    webhook_max_attempts: int = 8
    webhook_backoff_seconds: float = 2.0  # first retry after this, doubling each time
    webhook_timeout_seconds: float = 5.0
    webhook_poll_seconds: float = 0.5
    # The SSRF guard off: webhooks may call http:// and private, loopback, link-local ...
    # addresses. Tests and the local stack only (their receivers listen on 127.0.0.1).
    webhook_allow_private_targets: bool = False
    # Fernet keys the webhooks' signing secrets are encrypted with at rest, comma-separated:
    # the first encrypts, every one decrypts (rotation: add the new key last, then move it
    # first; the worker re-encrypts at start-up; drop the old key after). Empty: the
    # development key, on the embedded default only, like the JWT secret (webhooks.py's
    # webhook_secret_keys refuses it elsewhere).
    webhook_secret_keys: Annotated[list[SecretStr], NoDecode, BeforeValidator(_key_list)] = Field(
        default=[]
    )

    def projection_sqlite_path(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return str(self.data_dir / "notifier.sqlite3")
