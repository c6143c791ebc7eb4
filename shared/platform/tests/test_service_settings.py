"""ServiceSettings: each service's storage settings, read under its own prefix, build the same
eventsourcing environment as the services' own code did before the base existed."""

from __future__ import annotations

from pathlib import Path

import pytest
from okr_goals.settings import GoalsSettings
from okr_notifier.settings import NotifierSettings
from okr_platform.settings import ServiceSettings
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

# What each service adds to the event store's environment besides the storage.
GOALS_EXTRAS = {
    "AGGREGATE_CACHE_MAXSIZE": "10000",
    "MAPPER_TOPIC": "okr_events.tracing:TraceContextMapper",
}
SERVICES = [
    pytest.param(GoalsSettings, "GOALS_", "goals", 10, GOALS_EXTRAS, id="goals"),
    pytest.param(NotifierSettings, "NOTIFIER_", "notifier", 4, {}, id="notifier"),
]


@pytest.mark.parametrize(("settings_class", "prefix", "schema", "pool", "extras"), SERVICES)
def test_the_embedded_event_store_is_a_subscribable_sqlite_file_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    settings_class: type[ServiceSettings],
    prefix: str,
    schema: str,
    pool: int,
    extras: dict[str, str],
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv(f"{prefix}DATA_DIR", str(data_dir))
    settings = settings_class()
    assert settings.embedded
    assert settings.event_store_env() == extras | {
        "IS_SNAPSHOTTING_ENABLED": "n",
        "PERSISTENCE_MODULE": "okr_events.sqlite_subscription:SubscribableSQLiteFactory",
        "SQLITE_DBNAME": str(data_dir / "events.sqlite3"),
        "SQLITE_LOCK_TIMEOUT": "10",
    }
    assert data_dir.is_dir()  # created for the library, which does not create it


@pytest.mark.parametrize(("settings_class", "prefix", "schema", "pool", "extras"), SERVICES)
def test_the_postgres_event_store_is_the_service_s_schema(
    monkeypatch: pytest.MonkeyPatch,
    settings_class: type[ServiceSettings],
    prefix: str,
    schema: str,
    pool: int,
    extras: dict[str, str],
) -> None:
    monkeypatch.setenv(f"{prefix}PERSISTENCE", "postgres")
    monkeypatch.setenv(f"{prefix}POSTGRES_HOST", "db.example")
    monkeypatch.setenv(f"{prefix}POSTGRES_PASSWORD", "s3cret")
    settings = settings_class()
    assert not settings.embedded
    assert settings.event_store_env() == extras | {
        "IS_SNAPSHOTTING_ENABLED": "n",
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": "db.example",
        "POSTGRES_PORT": "5432",
        "POSTGRES_DBNAME": "okr",
        "POSTGRES_USER": "okr",
        "POSTGRES_PASSWORD": "s3cret",
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": str(pool),
        "POSTGRES_MAX_OVERFLOW": str(pool),
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "POSTGRES_CONNECT_TIMEOUT": "5",
    }
    assert settings.postgres_conninfo() == (
        "host=db.example port=5432 dbname=okr user=okr password=s3cret"
    )
    # Every storage setting is read under the service's prefix.
    monkeypatch.setenv(f"{prefix}POSTGRES_PORT", "6543")
    monkeypatch.setenv(f"{prefix}POSTGRES_DBNAME", "suite")
    monkeypatch.setenv(f"{prefix}POSTGRES_USER", "svc")
    monkeypatch.setenv(f"{prefix}POSTGRES_SCHEMA", "other")
    monkeypatch.setenv(f"{prefix}POSTGRES_POOL_SIZE", "7")
    assert settings_class().postgres_env() == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": "db.example",
        "POSTGRES_PORT": "6543",
        "POSTGRES_DBNAME": "suite",
        "POSTGRES_USER": "svc",
        "POSTGRES_PASSWORD": "s3cret",
        "POSTGRES_SCHEMA": "other",
        "POSTGRES_POOL_SIZE": "7",
        "POSTGRES_MAX_OVERFLOW": "7",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "POSTGRES_CONNECT_TIMEOUT": "5",
    }


def test_the_goals_views_live_beside_the_events(tmp_path: Path) -> None:
    assert GoalsSettings(data_dir=tmp_path).views_env() == {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "views.sqlite3"),
        "SQLITE_LOCK_TIMEOUT": "10",
    }
    on_postgres = GoalsSettings(persistence="postgres")
    assert on_postgres.views_env() == on_postgres.postgres_env()
    assert on_postgres.views_env()["POSTGRES_SCHEMA"] == "goals"


def test_each_service_keeps_its_own_storage_defaults() -> None:
    assert (GoalsSettings().data_dir, NotifierSettings().data_dir) == (
        Path("data/goals"),
        Path("data/notifier"),
    )
    assert (GoalsSettings().persistence, NotifierSettings().persistence) == ("sqlite", "sqlite")


def test_a_service_without_its_storage_defaults_does_not_start() -> None:
    class Unfinished(ServiceSettings):  # no data_dir, schema or pool size of its own
        model_config = SettingsConfigDict(env_prefix="UNFINISHED_", extra="ignore")

    with pytest.raises(ValidationError) as caught:
        Unfinished()
    missing = {error["loc"][0] for error in caught.value.errors() if error["type"] == "missing"}
    assert missing == {"data_dir", "postgres_schema", "postgres_pool_size"}
