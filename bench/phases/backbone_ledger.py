"""bench_backbone's ledger phase: the ledger process (`python -m okr_events.ledger_process`) on
a topic full of relayed events, its rate taken from its own applied_at stamps."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psycopg
from harness.cpu import CpuOf, kafka_broker_pid, proc_status_mb
from harness.environments import ledger_env
from harness.infrastructure import Postgres
from harness.processes import Child
from okr_events.kafka import KafkaSettings
from psycopg import sql


def run_ledger_backlog(
    pg: Postgres,
    kafka: KafkaSettings,
    schema: str,
    topic: str,
    group: str,
    seconds: float,
    work: Path,
) -> tuple[float, int, dict[str, float], dict[str, float]]:
    """The ledger process on a topic full of events for `seconds` after its first apply: its
    rate (from its own applied_at stamps), events applied, cores busy, memory."""
    env = ledger_env(pg, kafka, schema, topic, group)
    child = Child("okr_events.ledger_process", env, work / "ledger.log")
    table = sql.Identifier(schema, "ledger_events")
    count_query = sql.SQL("SELECT count(*), min(applied_at), max(applied_at) FROM {}")
    try:
        with psycopg.connect(pg.conninfo(), autocommit=True) as conn:

            def applied() -> tuple[int, float, float]:
                try:
                    row = conn.execute(count_query.format(table)).fetchone()
                except psycopg.errors.UndefinedTable:
                    return 0, 0.0, 0.0
                assert row is not None
                return int(row[0]), float(row[1] or 0.0), float(row[2] or 0.0)

            deadline = time.monotonic() + 60
            while applied()[0] == 0:
                child.check_alive("the ledger")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the ledger applied nothing in 60 s:\n{child.log_tail()}")
                time.sleep(0.05)
            meter = CpuOf(ledger=child.pid, kafka=kafka_broker_pid())
            meter.begin()
            time.sleep(seconds)
            child.check_alive("the ledger")
            cores = meter.end()
            memory = proc_status_mb(child.pid)
            count, first, latest = applied()
    except BaseException:
        print(f"ledger log (tail):\n{child.log_tail()}", file=sys.stderr)
        raise
    finally:
        child.stop()
    rate = (count - 1) / (latest - first) if latest > first else float("nan")
    return rate, count, cores, memory
