"""The goals outbox relay as its own process: `okr-goals-relay`.

Publishes the goals event store to the topic okr.goals.events.v1 (okr_events.relay). A
contract violation stops it with exit code 2 (fix the bug, then restart: nothing is skipped).
It never exits for an outage: PostgreSQL away (at start or later) is waited out and the store
followed again from the last event produced; Kafka not confirming within the producer's
delivery timeout restarts the relay from its recorded position. A bad setting is one line on
stderr and exit code 1.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from eventsourcing.persistence import InfrastructureFactory, TrackingRecorder
from eventsourcing.utils import Environment
from okr_events import GOALS_SOURCE
from okr_events.kafka import KafkaSettings, ensure_topics
from okr_events.outages import (
    Backoff,
    is_outage,
    one_line,
    retry_through_outages,
    settings_or_exit,
)
from okr_events.relay import ContractViolation, DeliveryFailed, OutboxRelay
from okr_events.tracing import configure_tracing

from .application import GoalsApplication
from .contracts import to_contract
from .service import ensure_schema
from .settings import GoalsSettings

log = logging.getLogger("okr_goals.relay")
RELAY_NAME = "goals_relay"  # its position table: goals_relay_tracking, beside the events


def build_relay(settings: GoalsSettings, kafka: KafkaSettings) -> OutboxRelay:
    if not settings.embedded:
        ensure_schema(settings)
    env = settings.event_store_env()
    app = GoalsApplication(env=env)
    try:
        positions = InfrastructureFactory.construct(
            Environment(RELAY_NAME, env)
        ).tracking_recorder()
        assert isinstance(positions, TrackingRecorder)
        ensure_topics(kafka, [settings.events_topic])
        return OutboxRelay(
            app,
            to_contract=to_contract,
            topic=settings.events_topic,
            source=GOALS_SOURCE,
            positions=positions,
            producer_config=kafka.producer("okr-goals-relay"),
        )
    except BaseException:
        app.close()
        raise


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = settings_or_exit(GoalsSettings, "okr-goals-relay")
    kafka = settings_or_exit(KafkaSettings, "okr-goals-relay")
    configure_tracing("okr-goals-relay")
    stopping = threading.Event()
    current: list[OutboxRelay] = []

    def stop(*_: object) -> None:
        stopping.set()
        for relay in current:
            relay.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    backoff = Backoff(first=1.0)
    while not stopping.is_set():
        try:
            relay = retry_through_outages(
                lambda: build_relay(settings, kafka), what="relay", stopping=stopping, log=log
            )
        except Exception as error:  # not an outage: a setting the servers refuse, say
            sys.exit(f"okr-goals-relay: cannot start: {one_line(error)}")
        if relay is None:
            return
        current[:] = [relay]
        if stopping.is_set():
            relay.stop()
        log.info(
            "relaying %s from notification %s to %s", relay.app.name, relay.position, relay.topic
        )
        try:
            relay.run()
        except ContractViolation:
            relay.close()
            sys.exit(2)
        except Exception as error:
            if not (isinstance(error, DeliveryFailed) or is_outage(error)):
                raise
            # Kafka away for long: start again from the recorded position.
            delay = backoff.next_delay()
            log.error(
                "%s; restarting from notification %s in %.0f s",
                one_line(error),
                relay.position,
                delay,
            )
            relay.close()
            stopping.wait(delay)
            continue
        relay.close()


if __name__ == "__main__":
    main()
