"""Wiring of the notifier: its store, its consumers, the daily checks and webhook delivery.

Started by the standalone process (main.py: Kafka) and by the suite's embedded composition
root (goals' events in process, through the same handler).

Each consumer runs supervised in a thread of its own: an outage of PostgreSQL or Kafka that
ends its loop (the follows feed's LISTEN connection dies with a PostgreSQL restart) is waited
out and the consumer started again from its stored position; meanwhile the service is not
ready. Any other error stops that consumer for good (not ready until the process restarts)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from okr_events import GOALS_SOURCE, GOALS_TOPIC, NOTIFIER_SOURCE, NOTIFIER_TOPIC
from okr_events.consuming import ConsumerStore, open_consumer_store
from okr_events.in_process import InProcessRunner
from okr_events.kafka import KafkaSettings
from okr_events.mapping import contract_mapper
from okr_events.outages import (
    Backoff,
    discard_broken_connections,
    is_outage,
    one_line,
    retry_through_outages,
)
from okr_events.relay import ToContract
from okr_events.stoppable import StoppableRunner
from okr_platform.aggregate import event_clock, install_event_clock
from okr_platform.auth import TokenVerifier
from okr_platform.clock import Clock, FakeClock, SystemClock
from okr_platform.errors import NotFound, ReadSideBehind
from okr_platform.principal import Principal

from .application import FollowsApplication
from .projection import NotifierProjection
from .queries import Reads
from .scheduler import DailyChecks, Scheduler
from .schema import Dialect
from .settings import NotifierSettings
from .webhooks.delivery_worker import DeliveryWorker

log = logging.getLogger(__name__)

follow_contract = contract_mapper("okr.notifier.")


@dataclass(frozen=True)
class InProcessFeed:
    """Another context's application, followed in process (the embedded default)."""

    app: Callable[[], Application[Any]]
    to_contract: ToContract
    topic: str = GOALS_TOPIC
    source: str = GOALS_SOURCE


class NotifierService:
    def __init__(
        self,
        settings: NotifierSettings | None = None,
        *,
        feeds: list[InProcessFeed] | None = None,
        clock: Clock | None = None,
        kafka: KafkaSettings | None = None,
    ) -> None:
        self.settings = settings = settings or NotifierSettings()
        self.kafka = kafka or KafkaSettings()
        self.verifier = TokenVerifier(settings)
        self.clock = clock or (FakeClock(ticking=True) if settings.fake_clock else SystemClock())
        install_event_clock(self.clock)  # the follows' events: "since" is on this clock
        self.dialect: Dialect = "sqlite" if settings.embedded else "postgres"
        self.store = open_store(settings)
        self.reads = Reads(self.store)
        self.follows = FollowsApplication(env=settings.event_store_env())
        self.projection = NotifierProjection(self.dialect)
        self.runners: list[StoppableRunner] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.own_events = InProcessRunner(
            self.projection,
            self.store,
            self.follows,
            to_contract=follow_contract,
            topic=NOTIFIER_TOPIC,
            source=NOTIFIER_SOURCE,
        )
        self.runners.append(self.own_events)
        for feed in feeds or []:
            self.runners.append(
                InProcessRunner(
                    self.projection,
                    self.store,
                    feed.app(),
                    to_contract=feed.to_contract,
                    topic=feed.topic,
                    source=feed.source,
                )
            )
        if not feeds and settings.consume:
            self.runners.append(self._kafka_runner())
        self.delivery = DeliveryWorker(self.store, settings, self.clock)
        self.projection.on_notified = self.delivery.wake
        self.checks = DailyChecks(self.store, self.clock)
        self.scheduler = (
            Scheduler(self.checks, settings.scheduler_tick_seconds)
            if settings.scheduler_enabled
            else None
        )

    def _kafka_runner(self) -> StoppableRunner:
        from okr_events.kafka import ensure_topics
        from okr_events.kafka_consumer import KafkaConsumerRunner

        kafka = self.kafka
        ensure_topics(kafka, self.settings.topics)
        return KafkaConsumerRunner(
            self.projection,
            self.store,
            topics=self.settings.topics,
            settings=kafka,
            group_id=self.settings.group_id,
        )

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for index, runner in enumerate(self.runners):
            thread = threading.Thread(
                target=self._supervise,
                args=(runner,),
                name=f"notifier-consumer-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        self.delivery.start_thread("notifier-webhooks")
        if self.scheduler:
            self.scheduler.start()

    def _supervise(self, runner: StoppableRunner) -> None:
        """Run a consumer until close(), starting it again after an outage ended its loop.
        While it waits, and until its store answers again, its `error` is the outage (the
        service is not ready)."""
        name = type(runner).__name__
        backoff = Backoff(first=0.25)
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                runner.run()
                return  # stopped
            except Exception as error:
                if self._stopping.is_set() or not is_outage(error):
                    return  # the runner logged it and keeps it in `error`: not ready
                setattr(runner, "error", error)  # noqa: B010 - not every runner declares it
                if time.monotonic() - started > 30:
                    backoff.reset()  # it ran a while: a new outage
                self._stopping.wait(backoff.next_delay())
                discard_broken_connections(runner.store, getattr(runner, "app", None))
                log.warning(
                    "%s: %s; starting it again once its database answers", name, one_line(error)
                )
                answered = retry_through_outages(
                    lambda: runner.store.query("SELECT 1"),
                    what=name,
                    stopping=self._stopping,
                    log=log,
                    reconnect=(runner.store,),
                )
                if answered is None:  # closing
                    return
                setattr(runner, "error", None)  # noqa: B010

    def close(self) -> None:
        self._stopping.set()
        if self.scheduler:
            self.scheduler.stop()
        self.delivery.close()
        for runner in self.runners:
            runner.stop()
        for thread in self._threads:
            thread.join(10)
        for runner in self.runners:
            runner.close()
        self.follows.close()
        if event_clock() is self.clock:  # events recorded outside a service: the system clock
            install_event_clock(SystemClock())

    def discard_broken_connections(self) -> None:
        """Its store's and its follows' pools drop their dead connections."""
        discard_broken_connections(self.store, self.follows)

    @property
    def ready(self) -> bool:
        """Every consumer follows its log or topics now (not stopped, no outage waited out)."""
        return all(_following(runner) for runner in self.runners)

    # ---- used by the API ---------------------------------------------------------------------

    #: How often a live stream looks for news (one cheap query per process, not per stream).
    stream_poll_seconds = 0.25
    _latest: tuple[float, int] = (0.0, 0)

    def latest_notification_id(self) -> int:
        """The newest notification id of any member, re-read at most every 0.2 s."""
        at, value = self._latest
        if time.monotonic() - at > 0.2:
            value = self.reads.max_id()
            self._latest = (time.monotonic(), value)
        return value

    def principal(self, authorization: str | None) -> Principal:
        return self.verifier.principal(authorization)

    def org_id(self, principal: Principal) -> str:
        return self.reads.org_id(principal)

    def follow(
        self, principal: Principal, objective_id: str, settings: dict[str, Any] | None
    ) -> dict[str, Any]:
        facts = self.reads.visible_objective(principal, objective_id)
        _, recordings = self.follows.follow(
            uuid.UUID(facts.org_id), principal.member_id, uuid.UUID(objective_id), settings
        )
        self._await_own(recordings)
        return self.followed_one(principal, objective_id)

    def change_follow(
        self, principal: Principal, objective_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        facts = self.reads.visible_objective(principal, objective_id)
        _, recordings = self.follows.change_settings(
            uuid.UUID(facts.org_id), principal.member_id, uuid.UUID(objective_id), changes
        )
        self._await_own(recordings)
        return self.followed_one(principal, objective_id)

    def unfollow(self, principal: Principal, objective_id: str) -> None:
        org_id = self.reads.org_id(principal)
        try:
            objective = uuid.UUID(objective_id)
        except ValueError:
            return
        self._await_own(self.follows.unfollow(uuid.UUID(org_id), principal.member_id, objective))

    def followed_one(self, principal: Principal, objective_id: str) -> dict[str, Any]:
        for item in self.reads.followed(principal):
            if item["objective_id"] == objective_id:
                return item
        raise NotFound("you do not follow this objective", field="objective_id")

    def _await_own(self, recordings: list[Any], timeout: float = 5.0) -> None:
        """Read your writes: wait until the follows projection applied what was just saved."""
        if not recordings:
            return
        last = max(r.notification.id for r in recordings)
        if not self.own_events.wait_until_applied(last, timeout):
            if not self.own_events.healthy:
                raise ReadSideBehind("the follows projection is not running; try again shortly")
            raise ReadSideBehind("the follows projection is behind; try again shortly")


def _following(runner: StoppableRunner) -> bool:
    """A log runner says it (`healthy`, as goals' views do); the Kafka consumer by having no
    error and no outage to wait out."""
    healthy = getattr(runner, "healthy", None)
    if healthy is not None:
        return bool(healthy)
    return getattr(runner, "error", None) is None and getattr(runner, "waiting", None) is None


def open_store(settings: NotifierSettings) -> ConsumerStore:
    """The notifier's own database: a PostgreSQL schema, or a SQLite file when embedded."""
    if settings.embedded:
        return open_consumer_store(
            "notifier_projection", sqlite_path=settings.projection_sqlite_path()
        )
    return open_consumer_store(
        "notifier_projection",
        postgres_conninfo=settings.postgres_conninfo(),
        schema=settings.postgres_schema,
        pool_size=settings.postgres_pool_size,
    )
