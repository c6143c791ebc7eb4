"""Wiring of the goals context: the application, its views and the projection runner.

Both the standalone service (main.py) and the suite's composition root start it this way."""

from __future__ import annotations

import psycopg
from okr_events.outages import discard_broken_connections
from okr_platform.aggregate import event_clock, install_event_clock
from okr_platform.auth import TokenVerifier
from okr_platform.clock import Clock, SystemClock

from .application import GoalsApplication
from .settings import GoalsSettings
from .views import open_views


def ensure_schema(settings: GoalsSettings) -> None:
    """The service's PostgreSQL schema (events, views, relay position) exists."""
    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                psycopg.sql.Identifier(settings.postgres_schema)
            )
        )


class GoalsService:
    """`clock` is what "now" is for this context: its events' timestamps (installed process-wide,
    see domain/aggregate.py) and the board's pace. The system clock unless a test injects one."""

    def __init__(self, settings: GoalsSettings | None = None, clock: Clock | None = None) -> None:
        self.settings = settings or GoalsSettings()
        self.clock: Clock = clock or SystemClock()
        install_event_clock(self.clock)
        self.verifier = TokenVerifier(self.settings)  # refuses to start without a real secret
        if not self.settings.embedded:
            ensure_schema(self.settings)
        self.app = GoalsApplication(
            env=self.settings.event_store_env(),
            read_timeout=self.settings.read_consistency_timeout,
            reference_data_max_age=self.settings.reference_data_max_age,
        )
        self.views = open_views(self.settings, self.app)  # its runner follows the app's log
        self.app.views = self.views
        self.runner = self.views.runner

    @property
    def ready(self) -> bool:
        return self.runner.healthy

    def discard_broken_connections(self) -> None:
        """The event store's and the views' pools drop their dead connections."""
        discard_broken_connections(self.app, self.views.store)

    def close(self) -> None:
        self.runner.close()  # stops following, then closes the views' store
        self.app.close()
        if event_clock() is self.clock:  # events recorded outside a service: the system clock
            install_event_clock(SystemClock())
