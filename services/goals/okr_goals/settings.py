"""Settings of the goals service (prefix GOALS_). Every setting is documented in
docs/settings.md#goals."""

from __future__ import annotations

from pathlib import Path

from okr_events import GOALS_TOPIC
from okr_platform.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class GoalsSettings(ServiceSettings):
    """Its JWT settings (GOALS_JWT_SECRET, _ALGORITHM, _PUBLIC_KEY, _JWKS_URL) and its storage
    (GOALS_PERSISTENCE, _DATA_DIR, _POSTGRES_*): ServiceSettings."""

    model_config = SettingsConfigDict(env_prefix="GOALS_", extra="ignore")

    data_dir: Path = Path("data/goals")
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

    def event_store_env(self) -> dict[str, str]:
        """The service's event store (ServiceSettings) with the goals' aggregate cache."""
        return super().event_store_env() | {
            "AGGREGATE_CACHE_MAXSIZE": str(self.aggregate_cache_size),
            # Each event keeps the trace of the request that caused it, for the relay.
            "MAPPER_TOPIC": "okr_events.tracing:TraceContextMapper",
        }

    def views_env(self) -> dict[str, str]:
        """Views live beside the events: own SQLite file, or the same PostgreSQL schema."""
        if self.embedded:
            return self.sqlite_env("views.sqlite3")
        return self.postgres_env()
