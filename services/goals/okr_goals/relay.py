"""The goals outbox relay as its own process: `okr-goals-relay`.

Publishes the goals event store to the topic okr.goals.events.v1 (okr_events.relay). A
contract violation stops it with exit code 2 (fix the bug, then restart: nothing is skipped);
a Kafka outage longer than the producer's delivery timeout, or a lost database connection,
restarts it from its position.
"""

from __future__ import annotations

import logging
import signal
import sys
import time

from eventsourcing.persistence import (
    InfrastructureFactory,
    InterfaceError,
    OperationalError,
    TrackingRecorder,
)
from eventsourcing.utils import Environment
from okr_events import GOALS_SOURCE
from okr_events.kafka import KafkaSettings, ensure_topics
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
    positions = InfrastructureFactory.construct(Environment(RELAY_NAME, env)).tracking_recorder()
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


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    configure_tracing("okr-goals-relay")
    settings, kafka = GoalsSettings(), KafkaSettings()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        relay.stop()

    while True:
        relay = build_relay(settings, kafka)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)
        log.info(
            "relaying %s from notification %s to %s", relay.app.name, relay.position, relay.topic
        )
        try:
            relay.run()
        except ContractViolation:
            sys.exit(2)
        except (DeliveryFailed, OperationalError, InterfaceError) as exc:
            # Kafka or PostgreSQL away for long: start again from the recorded position.
            log.error("%s; restarting from notification %s in 5 s", exc, relay.position)
            relay.close()
            time.sleep(5)
            continue
        if stopping:
            return


if __name__ == "__main__":
    main()
