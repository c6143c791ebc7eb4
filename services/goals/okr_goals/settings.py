"""Settings of the goals service (prefix GOALS_). Every setting is documented in the README."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from okr_events import GOALS_TOPIC
from okr_platform.settings import JWTSettings
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict


class GoalsSettings(JWTSettings):
    """Its JWT settings (GOALS_JWT_SECRET, _ALGORITHM, _PUBLIC_KEY, _JWKS_URL): JWTSettings."""

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
