"""A small pair of contexts for the tests of commands from events (okr_events.commands).

The *counter* context publishes ``okr.counter.Counted(amount)``; the *tally* context applies
each as the command ``Tally.add(amount)`` on the tally of that counter (created on the first
count). A negative amount is refused (InvalidInput); an amount equal to the handler's
``bug_amount`` raises a plain RuntimeError (a bug, not a refusal).

`main` is the tally context's Kafka consumer on PostgreSQL as a process of its own (the tests
kill it): ``python -c "from tally_context import main; main()"``, settings from TALLY_*.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from okr_events.base import EventContract
from okr_events.codec import InboundEvent
from okr_events.command_store import PostgresCommandStore
from okr_events.commands import CommandApplication, CommandProcessor, UnitOfWork
from okr_events.kafka import KafkaSettings
from okr_events.kafka_consumer import KafkaConsumerRunner
from okr_events.mapping import contract_mapper
from okr_events.refusals import CommandRefusedContract, Refusal
from okr_events.registry import register, unregister
from okr_platform.errors import DomainError, InvalidInput

COUNTER_SOURCE = "/okr/counter"
TALLY_SOURCE = "/okr/tally"
TALLY_NAMESPACE = uuid.UUID("3f1d2c4b-5a69-4e7f-8b01-9c2d3e4f5a6b")


# ---- contracts (registered only while a test or the consumer process uses them: the suite's
# schema check must not see them) -------------------------------------------------------------


class CounterStarted(EventContract):
    """A counter was started."""

    event_type = "okr.counter.CounterStarted"


class Counted(EventContract):
    """A counter counted an amount (the tally context applies it as Tally.add)."""

    event_type = "okr.counter.Counted"

    amount: int


class TallyStarted(EventContract):
    """The tally of a counter was started."""

    event_type = "okr.tally.TallyStarted"

    counter_id: uuid.UUID


class TallyAdded(EventContract):
    """An amount was added to a tally, for one inbound Counted event."""

    event_type = "okr.tally.TallyAdded"

    amount: int
    inbound_event_id: str


class TallyCommandRefused(CommandRefusedContract):
    """The tally context refused to apply another context's event."""

    event_type = "okr.tally.CommandRefused"


CONTRACTS: tuple[type[EventContract], ...] = (
    CounterStarted,
    Counted,
    TallyStarted,
    TallyAdded,
    TallyCommandRefused,
)


@pytest.fixture
def tally_contracts() -> Iterator[None]:
    """The two contexts' contracts, registered for one test."""
    for contract in CONTRACTS:
        register(contract)
    yield
    for contract in CONTRACTS:
        unregister(contract)


counter_to_contract = contract_mapper("okr.counter.")
tally_to_contract = contract_mapper("okr.tally.")


# ---- the counter context (the producer, for the in-process transport) ----------------------


class Counter(Aggregate):
    @event("CounterStarted")
    def __init__(self, actor: str) -> None:
        self.total = 0

    @event("Counted")
    def count(self, amount: int, actor: str) -> None:
        self.total += amount


class CounterApplication(Application[uuid.UUID]):
    name = "counter"


# ---- the tally context (the consumer) -------------------------------------------------------


def tally_id(counter_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(TALLY_NAMESPACE, str(counter_id))


class Tally(Aggregate):
    @event("TallyStarted")
    def __init__(self, counter_id: uuid.UUID, actor: str) -> None:
        self.counter_id = counter_id
        self.total = 0

    @staticmethod
    def create_id(counter_id: uuid.UUID) -> uuid.UUID:
        return tally_id(counter_id)

    def add(self, amount: int, inbound_event_id: str, actor: str) -> None:
        if amount < 0:
            raise InvalidInput(f"a tally only counts up, not by {amount}", field="amount")
        self._added(amount, inbound_event_id, actor)

    @event("TallyAdded")
    def _added(self, amount: int, inbound_event_id: str, actor: str) -> None:
        self.total += amount


class TallyApplication(CommandApplication):
    name = "tally"


class TallyHandler:
    """Counted -> Tally.add on the counter's tally (started on its first count)."""

    name = "tally-counts"
    refuses: tuple[type[Exception], ...] = (DomainError,)

    def __init__(self, *, bug_amount: int | None = None, delay: float = 0.0) -> None:
        self.bug_amount = bug_amount
        self.delay = delay  # seconds per event: keeps a process busy inside its batches

    def handle(self, event: InboundEvent, work: UnitOfWork) -> None:
        contract = event.contract
        if not isinstance(contract, Counted):
            return  # nothing to do for other counter events
        if self.delay:
            time.sleep(self.delay)
        if contract.amount == self.bug_amount:
            raise RuntimeError(f"bug: cannot handle {contract.amount}")
        tally = work.find(tally_id(contract.aggregate_id), Tally)
        if tally is None:
            tally = Tally(counter_id=contract.aggregate_id, actor=contract.actor)
        tally.add(contract.amount, event.event_id, contract.actor)
        work.save(tally)


# ---- reading the tally context's event store (what the tests assert on) --------------------


def domain_events(app: Application[uuid.UUID]) -> list[Any]:
    """Every event in an application's store, in log order."""
    return [
        app.mapper.to_domain_event(notification)
        for notification in app.recorder.select_notifications(start=None, limit=10_000_000)
    ]


def applied_event_ids(app: Application[uuid.UUID]) -> list[str]:
    """The inbound event id of every TallyAdded, in log order (duplicates would show)."""
    return [e.inbound_event_id for e in domain_events(app) if type(e).__name__ == "TallyAdded"]


def refusals(app: Application[uuid.UUID]) -> list[Any]:
    return [e for e in domain_events(app) if isinstance(e, Refusal.CommandRefused)]  # type: ignore[attr-defined]


def totals(app: Application[uuid.UUID]) -> dict[uuid.UUID, int]:
    """counter id -> its tally's total, from the tally context's events."""
    result: dict[uuid.UUID, int] = {}
    counters: dict[uuid.UUID, uuid.UUID] = {}
    for e in domain_events(app):
        if type(e).__name__ == "TallyStarted":
            counters[e.originator_id] = e.counter_id
            result[e.counter_id] = 0
        elif type(e).__name__ == "TallyAdded":
            result[counters[e.originator_id]] += e.amount
    return result


def postgres_env(conninfo: dict[str, Any], schema: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": str(conninfo.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(conninfo.get("port", 5432)),
        "POSTGRES_DBNAME": str(conninfo.get("dbname", "")),
        "POSTGRES_USER": str(conninfo.get("user", "")),
        "POSTGRES_PASSWORD": str(conninfo.get("password", "")),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "2",
    }


def sqlite_env(path: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "okr_events.sqlite_subscription:SubscribableSQLiteFactory",
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": "10",
    }


# ---- the consumer as a process of its own -----------------------------------------------------


class CrashingStore(PostgresCommandStore):
    """Kills its process inside the N-th transaction that records commands (TALLY_CRASH_AT):
    once the server has run its inserts (events, positions, applied versions), before the
    commit."""

    recorded = 0

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Any:
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if "positions" in kwargs:
            CrashingStore.recorded += 1
            if CrashingStore.recorded == int(os.environ.get("TALLY_CRASH_AT", "0")):
                os.kill(os.getpid(), signal.SIGKILL)
        return notification_ids


def main() -> None:
    """The tally consumer: TALLY_CONNINFO, TALLY_SCHEMA, TALLY_TOPIC, TALLY_GROUP,
    TALLY_BOOTSTRAP; TALLY_DELAY (seconds per event), TALLY_CRASH_AT (see CrashingStore)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for contract in CONTRACTS:
        register(contract)
    conninfo = psycopg.conninfo.conninfo_to_dict(os.environ["TALLY_CONNINFO"])
    env = postgres_env(conninfo, os.environ["TALLY_SCHEMA"])
    env["PROCESS_RECORDER_TOPIC"] = get_topic(CrashingStore)
    app = TallyApplication(env)
    processor = CommandProcessor(TallyHandler(delay=float(os.environ.get("TALLY_DELAY", "0"))), app)
    runner = KafkaConsumerRunner(
        processor,
        processor.store,
        topics=[os.environ["TALLY_TOPIC"]],
        settings=KafkaSettings(bootstrap_servers=os.environ["TALLY_BOOTSTRAP"]),
        group_id=os.environ["TALLY_GROUP"],
        batch_size=int(os.environ.get("TALLY_BATCH_SIZE", "20")),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop())
    runner.run()
