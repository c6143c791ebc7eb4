"""The settings every service reads, each under its own prefix (GOALS_JWT_SECRET,
NOTIFIER_POSTGRES_HOST, ...), documented in docs/settings.md: `JWTSettings` (token verification)
and `ServiceSettings` (that and where the service stores its events), which a service's settings
class inherits, adding only its own fields and defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings

# Documented in docs/settings.md: valid only on the embedded default (SQLite), and the same for
# every service so one `okr token` works for every context of `make run`. Anything else must be
# configured with a real secret or refuses to start.
DEVELOPMENT_JWT_SECRET = "okr-embedded-development-secret-do-not-use-in-production"


class InsecureConfiguration(RuntimeError):
    """Raised at start-up when a non-embedded configuration has no real JWT secret."""


class JWTSettings(BaseSettings):
    """Token verification settings. A subclass sets `model_config`'s env_prefix and says, with
    `embedded`, whether its PERSISTENCE is the embedded 'sqlite' default (`ServiceSettings`
    does, for every service)."""

    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_public_key: str | None = None  # PEM, for RS256
    jwt_jwks_url: str | None = None  # for RS256 with a key set (kid in the token header)

    @property
    def embedded(self) -> bool:
        raise NotImplementedError("a service's settings (ServiceSettings) say if they are embedded")

    def _variable(self, name: str) -> str:
        """The environment variable of a setting, e.g. GOALS_JWT_SECRET (for messages)."""
        return f"{self.model_config.get('env_prefix', '')}{name}".upper()

    def hs256_secret(self) -> str:
        """The signing secret; the development one only on the embedded default."""
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if self.embedded:
            return secret or DEVELOPMENT_JWT_SECRET
        if not secret or secret == DEVELOPMENT_JWT_SECRET or len(secret) < 32:
            raise InsecureConfiguration(
                f"{self._variable('jwt_secret')} must be set to a real secret of at least 32 "
                f"characters when {self._variable('persistence')} is not the embedded 'sqlite' "
                "default"
            )
        return secret

    def check_secure(self) -> None:
        """Refuse to start without a real key outside the embedded default."""
        if self.jwt_algorithm == "HS256":
            self.hs256_secret()
        elif not (self.jwt_public_key or self.jwt_jwks_url):
            raise InsecureConfiguration(
                f"{self._variable('jwt_algorithm')}=RS256 needs {self._variable('jwt_public_key')}"
                f" or {self._variable('jwt_jwks_url')}"
            )


# The factory of the embedded event stores: the library's SQLite one plus notifications to
# subscribers (plain SQLite cannot notify, and the relay and projections follow the log).
SUBSCRIBABLE_SQLITE_FACTORY = "okr_events.sqlite_subscription:SubscribableSQLiteFactory"


class ServiceSettings(JWTSettings):
    """Where a service keeps its events: SQLite files in `data_dir` (the embedded default) or a
    PostgreSQL schema. A subclass sets `model_config`'s env_prefix and its defaults of
    `data_dir`, `postgres_schema` and `postgres_pool_size`."""

    persistence: Literal["sqlite", "postgres"] = "sqlite"
    data_dir: Path

    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_dbname: str = "okr"
    postgres_user: str = "okr"
    postgres_password: SecretStr = SecretStr("okr")
    postgres_schema: str
    postgres_pool_size: int

    @property
    def embedded(self) -> bool:
        return self.persistence == "sqlite"

    def postgres_conninfo(self) -> str:
        return (
            f"host={self.postgres_host} port={self.postgres_port} dbname={self.postgres_dbname} "
            f"user={self.postgres_user} password={self.postgres_password.get_secret_value()}"
        )

    def event_store_env(self) -> dict[str, str]:
        """Environment of the service's event store, for the eventsourcing library's
        infrastructure factory: `events.sqlite3` in `data_dir`, or the PostgreSQL schema."""
        env = {"IS_SNAPSHOTTING_ENABLED": "n"}
        if self.embedded:
            return env | self.sqlite_env("events.sqlite3", SUBSCRIBABLE_SQLITE_FACTORY)
        return env | self.postgres_env()

    def sqlite_env(self, filename: str, module: str = "eventsourcing.sqlite") -> dict[str, str]:
        """The library's environment for a SQLite file in `data_dir` (created if missing)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": module,
            "SQLITE_DBNAME": str(self.data_dir / filename),
            "SQLITE_LOCK_TIMEOUT": "10",
        }

    def postgres_env(self) -> dict[str, str]:
        """The library's environment for the service's PostgreSQL schema."""
        # POSTGRES_ENABLE_DB_FUNCTIONS stays off (docs/architecture.md#guarantees): its table
        # lock keeps notification ids in commit order, which a relay following the log relies on.
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
            # Seconds a request waits for a pooled connection (the library's default is 30):
            # while PostgreSQL is away a request answers 503 soon rather than hanging.
            "POSTGRES_CONNECT_TIMEOUT": "5",
        }
