"""Settings of the goals service (prefix GOALS_). Every setting is documented in the README."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from okr_events import GOALS_TOPIC
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Documented in the README: valid only on the embedded default (SQLite). Anything else must be
# configured with a real secret or refuses to start.
DEVELOPMENT_JWT_SECRET = "okr-embedded-development-secret-do-not-use-in-production"


class InsecureConfiguration(RuntimeError):
    """Raised at start-up when a non-embedded configuration has no real JWT secret."""


class GoalsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOALS_", extra="ignore")

    persistence: Literal["sqlite", "postgres"] = "sqlite"
    data_dir: Path = Path("data/goals")

    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_dbname: str = "okr"
    postgres_user: str = "okr"
    postgres_password: SecretStr = SecretStr("okr")
    postgres_schema: str = "goals"
    postgres_pool_size: int = 10

    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_public_key: str | None = None  # PEM, for RS256
    jwt_jwks_url: str | None = None  # for RS256 with a key set (kid in the token header)
    jwt_token_ttl_hours: int = 12  # for development tokens minted by `okr token`

    aggregate_cache_size: int = 10_000
    # Commands read the directory and cycles for their checks; a copy this young is trusted
    # without asking the store (changes made in this process are seen at once).
    reference_data_max_age: float = 1.0
    read_consistency_timeout: float = 5.0  # seconds a query waits for its view to catch up

    # The Kafka topic the relay (okr-goals-relay) publishes to; a new major contract version
    # gets a new topic. Connection settings are shared by every service: OKR_KAFKA_*.
    events_topic: str = GOALS_TOPIC

    @property
    def embedded(self) -> bool:
        return self.persistence == "sqlite"

    def hs256_secret(self) -> str:
        """The signing secret; the development one only on the embedded default."""
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if self.embedded:
            return secret or DEVELOPMENT_JWT_SECRET
        if not secret or secret == DEVELOPMENT_JWT_SECRET or len(secret) < 32:
            raise InsecureConfiguration(
                "GOALS_JWT_SECRET must be set to a real secret of at least 32 characters "
                "when GOALS_PERSISTENCE is not the embedded 'sqlite' default"
            )
        return secret

    def check_secure(self) -> None:
        """Refuse to start without a real key outside the embedded default."""
        if self.jwt_algorithm == "HS256":
            self.hs256_secret()
        elif not (self.jwt_public_key or self.jwt_jwks_url):
            raise InsecureConfiguration(
                "GOALS_JWT_ALGORITHM=RS256 needs GOALS_JWT_PUBLIC_KEY or GOALS_JWT_JWKS_URL"
            )

    def event_store_env(self) -> dict[str, str]:
        """Environment for the eventsourcing library's infrastructure factory."""
        env = {
            "AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache_size),
            "IS_SNAPSHOTTING_ENABLED": "n",
            # Each event keeps the trace of the request that caused it, for the relay.
            "MAPPER_TOPIC": "okr_events.tracing:TraceContextMapper",
        }
        if self.embedded:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            env |= {
                "PERSISTENCE_MODULE": "okr_events.sqlite_subscription:SubscribableSQLiteFactory",
                "SQLITE_DBNAME": str(self.data_dir / "events.sqlite3"),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        else:
            env |= self._postgres_env()
        return env

    def views_env(self) -> dict[str, str]:
        """Views live beside the events: own SQLite file, or the same PostgreSQL schema."""
        if self.embedded:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.data_dir / "views.sqlite3"),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        return self._postgres_env()

    def _postgres_env(self) -> dict[str, str]:
        # POSTGRES_ENABLE_DB_FUNCTIONS stays off (DESIGN): its table lock keeps notification
        # ids in commit order, which a relay following the log relies on.
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_HOST": self.postgres_host,
            "POSTGRES_PORT": str(self.postgres_port),
            "POSTGRES_DBNAME": self.postgres_dbname,
            "POSTGRES_USER": self.postgres_user,
            "POSTGRES_PASSWORD": self.postgres_password.get_secret_value(),
            "POSTGRES_SCHEMA": self.postgres_schema,
            "POSTGRES_POOL_SIZE": str(self.postgres_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(self.postgres_pool_size),
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        }

    def postgres_conninfo(self) -> str:
        return (
            f"host={self.postgres_host} port={self.postgres_port} dbname={self.postgres_dbname} "
            f"user={self.postgres_user} password={self.postgres_password.get_secret_value()}"
        )
