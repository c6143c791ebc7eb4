"""Outages of PostgreSQL and Kafka: telling them from bugs, waiting them out, saying them in a line.

A long-running process (the relay, the ledger, a consumer) waits out an outage and resumes
from its stored position; a command-line tool reports it, or a bad setting, in one line and
exits non-zero. Everything else (a contract violation, a handler's bug) is not an outage and
is not retried.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from confluent_kafka import KafkaError, KafkaException
from eventsourcing import persistence as es_persistence
from pydantic import ValidationError
from pydantic_settings import BaseSettings

T = TypeVar("T")
S = TypeVar("S", bound=BaseSettings)

#: Errors that say the database is unreachable or busy, not that the data is bad.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    es_persistence.OperationalError,
    es_persistence.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)

#: librdkafka errors that say the broker is away (the client keeps retrying them itself).
_BROKER_CODES = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.BROKER_NOT_AVAILABLE,
    }
)


def database_unavailable(error: BaseException) -> bool:
    return isinstance(error, DATABASE_ERRORS)


def broker_unavailable(error: BaseException) -> bool:
    if isinstance(error, TimeoutError):  # an admin request's future that never completed
        return True
    if not isinstance(error, KafkaException) or not error.args:
        return False
    kafka_error = error.args[0]
    if not isinstance(kafka_error, KafkaError):
        return False
    return bool(kafka_error.retriable()) or kafka_error.code() in _BROKER_CODES


def is_outage(error: BaseException) -> bool:
    """PostgreSQL or Kafka away (worth waiting for), as opposed to a bug or a bad setting."""
    return database_unavailable(error) or broker_unavailable(error)


def one_line(error: BaseException) -> str:
    """The error as one short line: its first line (the rest of psycopg's messages are hints)."""
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        text = error.args[0].str()
    else:
        text = str(error)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return (first or type(error).__name__)[:300]


def what_failed(error: BaseException) -> str:
    """Which server an outage is of, for messages ("PostgreSQL", "Kafka")."""
    return "PostgreSQL" if database_unavailable(error) else "Kafka"


class Backoff:
    """Delays between attempts: 0.5 s doubling up to ``ceiling`` (5 s), reset on success."""

    def __init__(self, first: float = 0.5, ceiling: float = 5.0) -> None:
        self.first, self.ceiling = first, ceiling
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.ceiling, self.first * 2**self.attempts)
        self.attempts = min(self.attempts + 1, 16)
        return delay

    def reset(self) -> None:
        self.attempts = 0


def retry_through_outages(
    action: Callable[[], T],
    *,
    what: str,
    stopping: threading.Event,
    log: logging.Logger,
    backoff: Backoff | None = None,
    reconnect: tuple[object, ...] = (),
    on_outage: Callable[[str], None] | None = None,
) -> T | None:
    """``action()`` once PostgreSQL and Kafka let it succeed; one warning line per failed
    attempt (also given to ``on_outage``), after which the pools of ``reconnect`` (recorders,
    applications) drop their dead connections. Errors that are not outages propagate. None if
    ``stopping`` was set."""
    backoff = backoff or Backoff()
    while not stopping.is_set():
        try:
            return action()
        except Exception as error:
            if not is_outage(error):
                raise
            delay = backoff.next_delay()
            reason = f"{what_failed(error)} unavailable: {one_line(error)}"
            log.warning("%s: %s; retrying in %.1f s", what, reason, delay)
            if on_outage is not None:
                on_outage(reason)
            stopping.wait(delay)
            discard_broken_connections(*reconnect)
    return None


def discard_broken_connections(*holders: object) -> None:
    """After an outage, drop the dead connections of the PostgreSQL pools behind these
    recorders (or applications), so the next attempt gets a fresh one. Without it each
    pooled connection fails one attempt after a PostgreSQL restart, and the pool's pre-ping
    (POSTGRES_PRE_PING) is no cure: it backs off 1, 2, 4 ... s per dead connection."""
    for holder in holders:
        recorder = getattr(holder, "recorder", holder)  # an application, or a recorder
        pool = getattr(getattr(recorder, "datastore", None), "pool", None)
        check = getattr(pool, "check", None)
        if check is None:  # SQLite, or not a psycopg pool
            continue
        try:
            check()  # tests the idle connections, replaces the broken ones; never waits long
        except Exception as error:  # e.g. the pool was closed meanwhile
            logging.getLogger(__name__).debug("pool check failed: %s", error)


def settings_problem(error: ValidationError, settings: type[BaseSettings]) -> str:
    """A settings class's validation error as one line naming the environment variables."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    problems = []
    for item in error.errors():
        name = prefix + "_".join(str(part) for part in item["loc"]).upper()
        given = item.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        problems.append(f"{name}: {item['msg']}{shown}")
    return "bad setting " + "; ".join(problems)


def settings_or_exit(settings: type[S], tool: str, **values: Any) -> S:
    """``settings(**values)`` read from the environment, or exit 1 with one line on stderr."""
    try:
        return settings(**values)
    except ValidationError as error:
        print(f"{tool}: {settings_problem(error, settings)}", file=sys.stderr)
        raise SystemExit(1) from None
