"""bench_backbone's relay phase: a backlog of real goals events written straight into a fresh
PostgreSQL schema, then published by the goals relay to fresh topics, in this process (the
median of a few runs) and as its own process; then the ledger process consumes the relayed
topic (backbone_ledger.py). Optionally one more in-process run under pyinstrument."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from harness.cpu import CpuOf, kafka_broker_pid, proc_status_mb, process_cpu, warn_if_noisy
from harness.environments import JWT_SECRET, relay_env
from harness.goals_backlog import EVENTS_PER_OBJECTIVE, backlog_events
from harness.infrastructure import Postgres, unique_schema
from harness.kafka_topics import topic_message_count
from harness.processes import Child
from harness.results import Figures
from okr_events.kafka import KafkaSettings, ensure_topics
from okr_goals.application import GoalsApplication
from okr_goals.relay import RELAY_NAME, build_relay
from okr_goals.service import ensure_schema
from okr_goals.settings import GoalsSettings
from psycopg import sql

from phases.backbone_ledger import run_ledger_backlog

TARGET_RELAY_EVENTS_PER_S = 10_000.0  # this 2-core machine

EVENTS_PER_INSERT = 2_000  # stored events per transaction when writing the backlog


def goals_settings(pg: Postgres, schema: str, topic: str) -> GoalsSettings:
    return GoalsSettings(
        persistence="postgres",
        postgres_host=pg.host,
        postgres_port=pg.port,
        postgres_dbname=pg.dbname,
        postgres_user=pg.user,
        postgres_password=pg.password,
        postgres_schema=schema,
        jwt_secret=JWT_SECRET,
        events_topic=topic,
    )


def write_backlog(app: GoalsApplication, total: int, seed: int, traced: bool) -> float:
    """`total` goals events (`backlog_events`) straight into the store, EVENTS_PER_INSERT per
    transaction. Returns seconds."""
    pending: list[StoredEvent] = []
    began = time.perf_counter()
    for events in backlog_events(total, seed, traced):
        pending.extend(app.mapper.to_stored_event(e) for e in events)
        if len(pending) >= EVENTS_PER_INSERT:
            app.recorder.insert_events(pending)
            pending = []
    if pending:
        app.recorder.insert_events(pending)
    return time.perf_counter() - began


@dataclass
class RelayRun:
    seconds: float
    cpu_seconds: float
    cores: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    startup: float = 0.0
    messages: int = 0


def run_relay_in_process(
    settings: GoalsSettings, kafka: KafkaSettings, last: int, profile: Path | None = None
) -> RelayRun:
    """build_relay() (not timed), then run() in a thread until the position reaches `last`.
    With `profile`, run() runs in this thread under pyinstrument instead."""
    relay = build_relay(settings, kafka)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            relay.run()
        except BaseException as error:
            errors.append(error)

    def watch() -> None:
        while relay.position < last and not errors:
            time.sleep(0.005)
        relay.stop()

    meter = CpuOf(kafka=kafka_broker_pid())
    meter.begin()
    began = time.perf_counter()
    if profile is None:
        thread = threading.Thread(target=run, name="bench-relay", daemon=True)
        thread.start()
        while relay.position < last and thread.is_alive():
            time.sleep(0.005)
    else:
        from pyinstrument import Profiler

        thread = threading.Thread(target=watch, name="bench-relay-watch", daemon=True)
        thread.start()
        profiler = Profiler(interval=0.001)
        profiler.start()
        run()
        profiler.stop()
    seconds = time.perf_counter() - began
    cores = meter.end()
    cores["relay"] = cores.pop("bench")  # the relay's threads are all this process does now
    try:
        if errors or relay.position < last:
            raise RuntimeError(f"the relay stopped at {relay.position} of {last}: {errors}")
    finally:
        relay.stop()
        thread.join(30)
        relay.app.close()
        relay.positions.datastore.close()  # type: ignore[attr-defined]
    if profile is not None:
        profile.write_text(profiler.output_text(unicode=True, color=False))
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    return RelayRun(seconds, cores["relay"] * seconds, cores)


def relay_position(conn: psycopg.Connection[Any], schema: str) -> int:
    table = sql.Identifier(schema, f"{RELAY_NAME}_tracking")
    row = conn.execute(sql.SQL("SELECT max(notification_id) FROM {}").format(table)).fetchone()
    return int(row[0] or 0) if row else 0


def reset_relay_position(pg: Postgres, schema: str) -> None:
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        table = sql.Identifier(schema, f"{RELAY_NAME}_tracking")
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))  # the relay makes it


def run_relay_process(
    pg: Postgres, kafka: KafkaSettings, schema: str, topic: str, last: int, work: Path
) -> RelayRun:
    """`python -m okr_goals.relay`, timed from its "relaying" log line (after start-up: imports,
    connections, topic check) until its position table shows `last`."""
    ensure_topics(kafka, [topic])
    child = Child("okr_goals.relay", relay_env(pg, kafka, schema, topic), work / "relay.log")
    try:
        deadline = time.monotonic() + 60
        while "relaying goals" not in child.log_text():
            child.check_alive("the relay")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the relay did not start in 60 s:\n{child.log_tail()}")
            time.sleep(0.005)
        began = time.perf_counter()
        startup = began - child.spawned
        cpu_before = process_cpu(child.pid)
        meter = CpuOf(relay=child.pid, kafka=kafka_broker_pid())
        meter.begin()
        with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
            while relay_position(conn, schema) < last:
                child.check_alive("the relay")
                if time.monotonic() > deadline + 600:
                    raise RuntimeError("the relay process did not finish the backlog in 10 min")
                time.sleep(0.01)
        seconds = time.perf_counter() - began
        cpu = process_cpu(child.pid) - cpu_before
        cores = meter.end()
        memory = proc_status_mb(child.pid)
    except BaseException:
        print(f"relay log (tail):\n{child.log_tail()}", file=sys.stderr)
        raise
    finally:
        child.stop()
    return RelayRun(seconds, cpu, cores, memory, startup)


def bench_relay(
    args: argparse.Namespace,
    pg: Postgres,
    kafka: KafkaSettings,
    figures: Figures,
    work: Path,
    topics: list[str],
    groups: list[str],
) -> None:
    stamp = unique_schema("bench_backbone_relay")
    schema = stamp
    topic = f"bench.{stamp}.inproc"
    settings = goals_settings(pg, schema, topic)
    # Figures of an untraced backlog are kept apart: the service stores trace context.
    suffix = "_untraced" if args.untraced_backlog else ""
    ensure_schema(settings)
    try:
        app = GoalsApplication(env=settings.event_store_env())
        try:
            print(f"[relay] writing {args.events:,} goals events into schema {schema} ...")
            seconds = write_backlog(app, args.events, args.seed, traced=not args.untraced_backlog)
            last = app.recorder.max_notification_id() or 0
        finally:
            app.close()
        if last != args.events:
            raise RuntimeError(f"the backlog has {last} notifications, not {args.events}")
        params = {
            "events": last,
            "events_per_objective": EVENTS_PER_OBJECTIVE,
            "traced_events": not args.untraced_backlog,
            "partitions": kafka.topic_partitions,
            "producer": "idempotent, acks=all, linger.ms=5, lz4",
        }
        figures.add(
            "backbone.backlog_write_events_per_s" + suffix,
            last / seconds,
            "events/s",
            **params,
            events_per_transaction=EVENTS_PER_INSERT,
        )
        print(f"[relay] wrote {last:,} events in {seconds:.1f} s; relaying (in this process) ...")

        # The machine's other work makes single runs vary by 10-15 %: the median of a few.
        runs: list[RelayRun] = []
        for n in range(args.relay_runs):
            run_topic = topic if n == 0 else f"{topic}.{n}"
            if n:
                reset_relay_position(pg, schema)
            topics.append(run_topic)
            ensure_topics(kafka, [run_topic])
            run_settings = settings.model_copy(update={"events_topic": run_topic})
            run = run_relay_in_process(run_settings, kafka, last)
            run.messages = topic_message_count(kafka, run_topic)
            warn_if_noisy("relay", run.cores)
            print(
                f"[relay] in process, run {n + 1}/{args.relay_runs}: {last:,} events in "
                f"{run.seconds:.2f} s = {last / run.seconds:,.0f}/s; {run.messages:,} messages on "
                f"the topic; cores {run.cores}"
            )
            if run.messages != last:
                print(
                    f"[relay] warning: {run.messages} messages for {last} events", file=sys.stderr
                )
            runs.append(run)
        run = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
        in_process = params | {
            "relay": "in the benchmark process (thread)",
            "runs": len(runs),
            "events_per_s_of_each_run": [round(last / r.seconds) for r in runs],
        }
        figures.add(
            "backbone.relay_backlog_events_per_s" + suffix,
            last / run.seconds,
            "events/s",
            (">=", TARGET_RELAY_EVENTS_PER_S),
            **in_process,
            seconds=round(run.seconds, 3),
            messages_on_topic=run.messages,
            cores_busy=run.cores,
            note="the median run",
        )
        figures.add(
            "backbone.relay_backlog_cpu_us_per_event" + suffix,
            run.cpu_seconds * 1e6 / last,
            "us/event",
            **in_process,
            note="the median run; every thread of this process: the relay's",
        )

        if not args.no_process_relay:
            reset_relay_position(pg, schema)
            topic2 = f"bench.{stamp}.process"
            topics.append(topic2)
            print("[relay] relaying the same backlog again, as its own process ...")
            proc = run_relay_process(pg, kafka, schema, topic2, last, work)
            warn_if_noisy("relay", proc.cores)
            print(
                f"[relay] own process: {last:,} events in {proc.seconds:.2f} s = "
                f"{last / proc.seconds:,.0f}/s (start-up {proc.startup:.2f} s); cores "
                f"{proc.cores}; RSS {proc.memory['VmRSS']:.0f} MB, peak {proc.memory['VmHWM']:.0f}"
            )
            in_own = params | {"relay": "python -m okr_goals.relay"}
            figures.add(
                "backbone.relay_process_backlog_events_per_s" + suffix,
                last / proc.seconds,
                "events/s",
                (">=", TARGET_RELAY_EVENTS_PER_S),
                **in_own,
                seconds=round(proc.seconds, 3),
                cores_busy=proc.cores,
                note="from its 'relaying' log line until its position table shows the last id",
            )
            figures.add(
                "backbone.relay_process_cpu_us_per_event" + suffix,
                proc.cpu_seconds * 1e6 / last,
                "us/event",
                **in_own,
                note="every thread of the process, librdkafka's included",
            )
            figures.add(
                "backbone.relay_process_rss_mb" + suffix, proc.memory["VmRSS"], "MB", **in_own
            )
            figures.add(
                "backbone.relay_process_rss_peak_mb" + suffix, proc.memory["VmHWM"], "MB", **in_own
            )
            figures.add("backbone.relay_process_startup_s" + suffix, proc.startup, "s", **in_own)

        if args.ledger_seconds > 0:
            ledger_schema, group = f"{stamp}_ledger", f"bench-ledger-{stamp}"
            groups.append(group)
            print(f"[ledger] applying the relayed backlog for {args.ledger_seconds:g} s ...")
            try:
                rate, count, cores, memory = run_ledger_backlog(
                    pg, kafka, ledger_schema, topic, group, args.ledger_seconds, work
                )
            finally:
                pg.drop_schema(ledger_schema)
            warn_if_noisy("ledger", cores)
            print(f"[ledger] {count:,} events applied at {rate:,.0f}/s; cores {cores}")
            ledger_params = params | {
                "ledger": "python -m okr_events.ledger_process",
                "applied": count,
                "seconds": args.ledger_seconds,
                "cores_busy": cores,
            }
            figures.add(
                "backbone.ledger_backlog_events_per_s" + suffix,
                rate,
                "events/s",
                **ledger_params,
                note="the ledger process on the relayed backlog (one transaction per batch <= 500)",
            )
            figures.add(
                "backbone.ledger_cpu_us_per_event" + suffix,
                cores.get("ledger", 0.0) * 1e6 / rate if rate else float("nan"),
                "us/event",
                **ledger_params,
            )
            figures.add("backbone.ledger_rss_mb" + suffix, memory["VmRSS"], "MB", **ledger_params)

        if args.profile_relay is not None:
            reset_relay_position(pg, schema)
            topic3 = f"bench.{stamp}.profile"
            topics.append(topic3)
            ensure_topics(kafka, [topic3])
            settings3 = settings.model_copy(update={"events_topic": topic3})
            print(f"[relay] profiling the publishing loop (pyinstrument) -> {args.profile_relay}")
            profiled = run_relay_in_process(settings3, kafka, last, profile=args.profile_relay)
            print(f"[relay] under the profiler: {last / profiled.seconds:,.0f}/s (distorted)")
    finally:
        pg.drop_schema(schema)
