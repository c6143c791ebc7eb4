"""Benchmark of the event backbone: the goals outbox relay, and HTTP -> relay -> Kafka -> ledger.

`make bench` runs `.venv/bin/python bench/bench_backbone.py` after bench_goals.py, with
PostgreSQL and Kafka up. It reuses bench_goals.py (the goals service as a uvicorn process,
seeding, the open loop, figures) and measures:

1. Relay throughput on a backlog: --events (50,000) real goals domain events (objectives
   created with three key results, activated, then checked in; each "request" with its own
   W3C trace context, as the service stores them) are written straight into a fresh PostgreSQL
   schema, many per transaction. Then the relay publishes the backlog to a fresh 6-partition
   topic, timed from its start until its recorded position (every event confirmed by Kafka)
   reaches the last notification id:
   * in this process (okr_goals.relay.build_relay, run() in a thread): events/s, CPU; the
     median of --relay-runs (3) runs, each from position 0 to a fresh topic;
   * as its own process (`python -m okr_goals.relay`, position reset, another fresh topic),
     from its "relaying" log line until the position table shows the last id: events/s, its
     CPU (every thread, librdkafka's too) and its memory (VmRSS, VmHWM);
   * then the ledger process consumes that topic for --ledger-seconds (10): its rate, from
     its own applied_at stamps (the consumer that end-to-end latency waits for).
2. End-to-end latency: the goals service (uvicorn), the relay (`python -m okr_goals.relay`)
   and the ledger (`python -m okr_events.ledger_process`) as real processes on fresh schemas,
   topic and consumer group. Check-ins are sent open-loop at each --rates (100/s, then 500/s)
   for --duration seconds (20); for every accepted check-in (HTTP 201) the client's receive
   time and the (objective id, version) of its answer are kept, and after the run the ledger's
   `applied_at` for that event gives latency = applied_at - accepted_at. The Kafka message's
   CreateTime (the relay's produce() call) splits it into accepted -> produced -> applied.

Every figure (names backbone.*) is printed and merged by name into bench/results/latest.json.
All processes share this machine's cores (os.cpu_count() is printed and kept with each figure).

Usage: bench/bench_backbone.py [--quick] [--events N] [--duration S] [--rates 100,500]
       [--skip-relay] [--skip-e2e] [--no-process-relay] [--untraced-backlog]
       [--relay-runs N] [--ledger-seconds S] [--connections N] [--objectives N]
       [--profile-relay [PATH]]
       [--output PATH | --no-write] [--keep]

Other processes on the machine (a stack started by `make up`, tests) share its cores: each
phase reports the cores they kept busy ("others") and warns when that disturbs the figures.

--profile-relay additionally runs the in-process relay once more over the backlog with
pyinstrument (its publishing loop: the thread that bounds throughput) and prints where the
time goes; that run's figures are distorted and not kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from eventsourcing.persistence import StoredEvent
from okr_events.kafka import DLQ_SUFFIX, KafkaSettings, ensure_topics
from okr_events.tracing import TRACE_CONTEXT_KEY, TracingSettings, configure_tracing
from okr_goals.application import GoalsApplication
from okr_goals.contracts import to_contract
from okr_goals.domain.objective import Objective
from okr_goals.relay import RELAY_NAME, build_relay
from okr_goals.service import ensure_schema
from okr_goals.settings import GoalsSettings
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_goals as bg

ROOT = bg.ROOT
CORES = bg.CORES

# Targets of the issue (this 2-core machine).
TARGET_RELAY_EVENTS_PER_S = 10_000.0
TARGET_E2E_P99_MS = 150.0  # at 500 commands/s
TARGET_E2E_RATE = 500.0

EVENTS_PER_OBJECTIVE = 50  # created + 3 key results added + activated + 45 check-ins
EVENTS_PER_INSERT = 2_000  # stored events per transaction when writing the backlog


# ---- helpers ------------------------------------------------------------------------------------


def kafka_broker_pid() -> int | None:
    """The local broker (deploy/local/kafka.sh runs `java ... kafka.Kafka`), for its CPU."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"\0kafka.Kafka\0" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    return None


def machine_cpu() -> float:
    """CPU seconds every core has spent busy (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / bg.CLK_TCK


class CpuOf:
    """Cores busy over a phase: PostgreSQL, this process, the named processes (a pid that
    vanished counts as idle) and, as "others", the rest of the machine: noise in the figures."""

    def __init__(self, **pids: int | None) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.start: dict[str, float] = {}
        self.began = 0.0

    def _now(self) -> dict[str, float]:
        own = os.times()
        now = {
            "postgres": bg.postgres_cpu(),
            "bench": own.user + own.system,
            "machine": machine_cpu(),
        }
        for name, pid in self.pids.items():
            try:
                now[name] = bg.process_cpu(pid)
            except OSError:
                now[name] = self.start.get(name, 0.0)
        return now

    def begin(self) -> None:
        self.start = self._now()
        self.began = time.perf_counter()

    def end(self) -> dict[str, float]:
        """Cores busy (CPU seconds per second) of each since begin()."""
        now = self._now()
        seconds = time.perf_counter() - self.began
        busy = {name: (now[name] - self.start[name]) / seconds for name in now}
        machine = busy.pop("machine")
        busy["others"] = max(0.0, machine - sum(busy.values()))
        return {name: round(value, 2) for name, value in busy.items()}


def warn_if_noisy(phase: str, cores: dict[str, float]) -> None:
    if cores.get("others", 0.0) > 0.25:
        print(
            f"[{phase}] warning: other processes kept {cores['others']:.2f} of {CORES} cores busy "
            "meanwhile; the figures are disturbed",
            file=sys.stderr,
        )


def goals_settings(pg: bg.Postgres, schema: str, topic: str) -> GoalsSettings:
    return GoalsSettings(
        persistence="postgres",
        postgres_host=pg.host,
        postgres_port=pg.port,
        postgres_dbname=pg.dbname,
        postgres_user=pg.user,
        postgres_password=pg.password,
        postgres_schema=schema,
        jwt_secret=bg.JWT_SECRET,
        events_topic=topic,
    )


def process_env(
    pg: bg.Postgres, kafka: KafkaSettings, goals_schema: str, topic: str
) -> dict[str, str]:
    """Environment of the goals service and relay processes (like tests/e2e/conftest.py)."""
    return {
        "GOALS_PERSISTENCE": "postgres",
        "GOALS_POSTGRES_HOST": pg.host,
        "GOALS_POSTGRES_PORT": str(pg.port),
        "GOALS_POSTGRES_DBNAME": pg.dbname,
        "GOALS_POSTGRES_USER": pg.user,
        "GOALS_POSTGRES_PASSWORD": pg.password,
        "GOALS_POSTGRES_SCHEMA": goals_schema,
        "GOALS_JWT_SECRET": bg.JWT_SECRET,
        "GOALS_EVENTS_TOPIC": topic,
        "OKR_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "OKR_KAFKA_TOPIC_PARTITIONS": str(kafka.topic_partitions),
        # Spans are made (events and messages carry trace context) but not exported.
        "OKR_TRACING_EXPORTER": "none",
    }


def relay_env(
    pg: bg.Postgres, kafka: KafkaSettings, goals_schema: str, topic: str
) -> dict[str, str]:
    """The relay uses three connections (log, LISTEN, position); its default pools of 10 would
    open 20 and, beside the service's, crowd PostgreSQL's 100 connection slots."""
    return process_env(pg, kafka, goals_schema, topic) | {"GOALS_POSTGRES_POOL_SIZE": "2"}


class Child:
    """A Python module run as its own process, logging to a file."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.spawned = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=os.environ | env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def check_alive(self, what: str) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{what} exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def delete_topics(kafka: KafkaSettings, topics: list[str], groups: list[str] | None = None) -> None:
    """Best effort: the bench's topics (and their dead-letter topics) and consumer groups."""
    if not topics:
        return
    admin = AdminClient(kafka.common())
    names = [name for topic in topics for name in (topic, topic + DLQ_SUFFIX)]
    futures = list(admin.delete_topics(names, operation_timeout=30).values())
    if groups:
        futures += list(admin.delete_consumer_groups(list(groups), request_timeout=30).values())
    for future in futures:
        try:
            future.result(timeout=30)
        except Exception as error:
            print(f"bench_backbone: cleanup: {error}", file=sys.stderr)


def topic_message_count(kafka: KafkaSettings, topic: str) -> int:
    consumer = Consumer(kafka.common() | {"group.id": f"bench-watermarks-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        total = 0
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def high_watermarks(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    consumer = Consumer(kafka.common() | {"group.id": f"bench-watermarks-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def produce_times(
    kafka: KafkaSettings, topic: str, start: dict[int, int], timeout: float = 30.0
) -> dict[tuple[str, int], float]:
    """(aggregate id, version) -> the message's CreateTime (s), i.e. the relay's produce()
    call, for every message from the `start` offsets to the current end of each partition."""
    end = high_watermarks(kafka, topic)
    consumer = Consumer(
        kafka.common()
        | {"group.id": f"bench-reader-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    times: dict[tuple[str, int], float] = {}
    try:
        for p, high in end.items():
            low = start.get(p, 0)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, p, low)])
            got = 0
            deadline = time.monotonic() + timeout
            while got < high - low and time.monotonic() < deadline:
                for m in consumer.consume(1000, timeout=0.5):
                    if m.error() is not None:
                        continue
                    got += 1
                    kind, ms = m.timestamp()
                    if kind != TIMESTAMP_CREATE_TIME:
                        continue
                    value = json.loads(m.value())
                    times[(value["aggregate_id"], int(value["aggregate_version"]))] = ms / 1000
    finally:
        consumer.close()
    return times


def ms_stats(seconds: list[float]) -> dict[str, float]:
    return {
        "p50": bg.percentile(seconds, 50) * 1000,
        "p99": bg.percentile(seconds, 99) * 1000,
        "max": max(seconds) * 1000 if seconds else float("nan"),
    }


# ---- 1. the relay on a backlog ------------------------------------------------------------------


def random_carrier(rnd: random.Random) -> dict[str, str]:
    """A W3C carrier like the one the service stores with a request's events."""
    trace_id = rnd.getrandbits(128) | 1
    span_id = rnd.getrandbits(64) | 1
    return {"traceparent": f"00-{trace_id:032x}-{span_id:016x}-01"}


def backlog_events(total: int, seed: int, traced: bool) -> Iterator[list[Any]]:
    """`total` goals domain events, one objective's at a time: per objective the events of a
    create request (ObjectiveCreated + 3 KeyResultAdded), of a submit (ObjectiveActivated) and
    of 45 check-in requests (KRProgressUpdated); with `traced`, each request's events carry the
    W3C trace context of a request of their own, as the service stores them."""
    rnd = random.Random(seed)
    org_id, cycle_id = uuid.uuid4(), uuid.uuid4()
    written = 0
    n = 0
    while written < total:
        owner = f"m{n % 19 + 1:03d}"
        objective = Objective.draft(
            org_id=org_id, cycle_id=cycle_id, title=f"Objective {n}", owner_id=owner, actor=owner
        )
        kr_ids = [
            objective.add_key_result(title=f"KR {n}.{k}", start=0, target=100, actor=owner)
            for k in range(3)
        ]
        requests = [4]  # events per request: the create request made 4
        objective.submit(approval_required=False, actor=owner)
        requests.append(1)
        for _ in range(EVENTS_PER_OBJECTIVE - 5):
            objective.check_in(
                rnd.choice(kr_ids),
                current=round(rnd.uniform(0, 100), 1),
                confidence=rnd.randint(1, 5),
                actor=owner,
            )
            requests.append(1)
        events = objective.collect_events()[: total - written]
        if n == 0:  # every kind of event in the backlog must pass its contract
            for domain_event in events:
                to_contract(domain_event)
        if traced:
            i = 0
            for size in requests:
                carrier = random_carrier(rnd)
                for domain_event in events[i : i + size]:
                    domain_event.__dict__[TRACE_CONTEXT_KEY] = carrier
                i += size
        written += len(events)
        n += 1
        yield events


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


def reset_relay_position(pg: bg.Postgres, schema: str) -> None:
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        table = sql.Identifier(schema, f"{RELAY_NAME}_tracking")
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))  # the relay makes it


def run_relay_process(
    pg: bg.Postgres, kafka: KafkaSettings, schema: str, topic: str, last: int, work: Path
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
        cpu_before = bg.process_cpu(child.pid)
        meter = CpuOf(relay=child.pid, kafka=kafka_broker_pid())
        meter.begin()
        with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
            while relay_position(conn, schema) < last:
                child.check_alive("the relay")
                if time.monotonic() > deadline + 600:
                    raise RuntimeError("the relay process did not finish the backlog in 10 min")
                time.sleep(0.01)
        seconds = time.perf_counter() - began
        cpu = bg.process_cpu(child.pid) - cpu_before
        cores = meter.end()
        memory = bg.proc_status_mb(child.pid)
    except BaseException:
        print(f"relay log (tail):\n{child.log_tail()}", file=sys.stderr)
        raise
    finally:
        child.stop()
    return RelayRun(seconds, cpu, cores, memory, startup)


def bench_relay(
    args: argparse.Namespace,
    pg: bg.Postgres,
    kafka: KafkaSettings,
    figures: bg.Figures,
    work: Path,
    topics: list[str],
    groups: list[str],
) -> None:
    stamp = bg.unique_schema("bench_backbone_relay")
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


def ledger_env(
    pg: bg.Postgres, kafka: KafkaSettings, schema: str, topic: str, group: str
) -> dict[str, str]:
    return {
        "OKR_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "OKR_KAFKA_TOPIC_PARTITIONS": str(kafka.topic_partitions),
        "OKR_TRACING_EXPORTER": "none",
        "OKR_LEDGER_POSTGRES_CONNINFO": pg.conninfo(),
        "OKR_LEDGER_POSTGRES_SCHEMA": schema,
        "OKR_LEDGER_TOPICS": json.dumps([topic]),
        "OKR_LEDGER_GROUP_ID": group,
        "OKR_LEDGER_HTTP_PORT": str(bg.free_port()),
    }


def run_ledger_backlog(
    pg: bg.Postgres,
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
            memory = bg.proc_status_mb(child.pid)
            count, first, latest = applied()
    except BaseException:
        print(f"ledger log (tail):\n{child.log_tail()}", file=sys.stderr)
        raise
    finally:
        child.stop()
    rate = (count - 1) / (latest - first) if latest > first else float("nan")
    return rate, count, cores, memory


# ---- 2. end to end ------------------------------------------------------------------------------


class AcceptedRecorder(bg.Recorder):
    """Also keeps, for each accepted check-in, (objective id, version, client receive time)."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: list[tuple[str, int, float]] = []

    def record(self, latency: float, status: int, body: bytes) -> None:
        received = time.time()
        super().record(latency, status, body)
        if status == 201:
            objective = json.loads(body)["objective"]
            self.accepted.append((objective["id"], int(objective["version"]), received))


class Ledger:
    """Reads the ledger's table (and the goals store's size) in their schemas."""

    def __init__(self, pg: bg.Postgres, goals_schema: str, ledger_schema: str) -> None:
        self.conn = psycopg.connect(pg.conninfo(), autocommit=True)
        self.events = sql.Identifier(goals_schema, "goals_events")
        self.ledger = sql.Identifier(ledger_schema, "ledger_events")

    def stored(self) -> int:
        row = self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self.events)).fetchone()
        return int(row[0]) if row else 0

    def applied(self) -> int:
        try:
            query = sql.SQL("SELECT count(*) FROM {}").format(self.ledger)
            row = self.conn.execute(query).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0

    def wait_caught_up(self, children: list[tuple[Child, str]], timeout: float) -> float:
        """Until the ledger holds as many events as the store; the seconds that took."""
        began = time.monotonic()
        while self.applied() < self.stored():
            for child, what in children:
                child.check_alive(what)
            if time.monotonic() - began > timeout:
                print(
                    f"[e2e] warning: the ledger has {self.applied()} of {self.stored()} events "
                    f"after {timeout:.0f} s",
                    file=sys.stderr,
                )
                break
            time.sleep(0.1)
        return time.monotonic() - began

    def applied_at(self, since: float) -> dict[tuple[str, int], float]:
        query = sql.SQL(
            "SELECT aggregate_id, aggregate_version, applied_at FROM {} WHERE applied_at >= %s"
        ).format(self.ledger)
        return {(a, int(v)): float(t) for a, v, t in self.conn.execute(query, (since,))}

    def close(self) -> None:
        self.conn.close()


def bench_e2e(
    args: argparse.Namespace,
    pg: bg.Postgres,
    kafka: KafkaSettings,
    figures: bg.Figures,
    work: Path,
    topics: list[str],
    groups: list[str],
) -> None:
    stamp = bg.unique_schema("bench_backbone_e2e")
    goals_schema, ledger_schema = stamp, f"{stamp}_ledger"
    topic, group = f"bench.{stamp}.goals.events", f"bench-ledger-{stamp}"
    topics.append(topic)
    groups.append(group)
    ensure_topics(kafka, [topic])
    env = process_env(pg, kafka, goals_schema, topic)
    ledger_vars = ledger_env(pg, kafka, ledger_schema, topic, group)
    service = bg.Service(env, work / "e2e-service.log")
    relay = ledger_proc = None
    ledger: Ledger | None = None
    try:
        service.wait_ready()
        relay_vars = relay_env(pg, kafka, goals_schema, topic)
        relay = Child("okr_goals.relay", relay_vars, work / "e2e-relay.log")
        ledger_proc = Child("okr_events.ledger_process", ledger_vars, work / "e2e-ledger.log")
        children = [(relay, "the relay"), (ledger_proc, "the ledger")]
        started = time.perf_counter()
        seeded = bg.seed(service, args.objectives, args.members)
        ledger = Ledger(pg, goals_schema, ledger_schema)
        caught_up = ledger.wait_caught_up(children, timeout=120)
        print(
            f"[e2e] service pid {service.pid}, relay pid {relay.pid}, ledger pid "
            f"{ledger_proc.pid}; seeded {len(seeded.targets)} objectives x 3 KRs in "
            f"{time.perf_counter() - started:.1f} s; ledger caught up "
            f"({ledger.applied():,} events) {caught_up:.1f} s later"
        )
        broker = kafka_broker_pid()
        for rate in args.rates:
            e2e_rate(args, rate, service, seeded, ledger, children, kafka, topic, broker, figures)
        figures.add(
            "backbone.e2e_relay_rss_mb",
            bg.proc_status_mb(relay.pid)["VmRSS"],
            "MB",
            when="after the end-to-end runs",
        )
        figures.add(
            "backbone.e2e_ledger_rss_mb",
            bg.proc_status_mb(ledger_proc.pid)["VmRSS"],
            "MB",
            when="after the end-to-end runs",
        )
    except BaseException:
        print(f"[e2e] service log (tail):\n{service.log_tail()}", file=sys.stderr)
        for child, what in ((relay, "relay"), (ledger_proc, "ledger")):
            if child is not None:
                print(f"[e2e] {what} log (tail):\n{child.log_tail()}", file=sys.stderr)
        raise
    finally:
        if ledger is not None:
            ledger.close()
        for child in (ledger_proc, relay):
            if child is not None:
                child.stop()
        service.stop()
        pg.drop_schema(goals_schema)
        pg.drop_schema(ledger_schema)


def e2e_rate(
    args: argparse.Namespace,
    rate: float,
    service: bg.Service,
    seeded: bg.Seeded,
    ledger: Ledger,
    children: list[tuple[Child, str]],
    kafka: KafkaSettings,
    topic: str,
    broker: int | None,
    figures: bg.Figures,
) -> None:
    tag = f"{rate:g}"
    print(f"[e2e] {rate:g} check-ins/s for {args.duration:g} s (+1 s warm-up) ...")
    start_offsets = high_watermarks(kafka, topic)
    checkins = bg.CheckIns(seeded.targets, "127.0.0.1", service.port, args.seed + int(rate))
    recorder = AcceptedRecorder()
    relay, ledger_proc = (child for child, _ in children)
    # Metered by the open loop from the first measured send until the last answer.
    meter: Any = CpuOf(service=service.pid, relay=relay.pid, ledger=ledger_proc.pid, kafka=broker)
    since = time.time()
    load = asyncio.run(
        bg.open_loop(
            checkins,
            rate,
            1.0,
            args.duration,
            args.connections,
            meter,
            recorder,
        )
    )
    cores = dict(load.cpu)
    cores["client"] = cores.pop("bench")
    bg.report_errors("e2e", f"{rate:g}/s", load)
    warn_if_noisy("e2e", cores)
    drained = ledger.wait_caught_up(children, timeout=120)
    applied = ledger.applied_at(since - 1)
    produced = produce_times(kafka, topic, start_offsets)
    latencies, to_produced, to_applied, missing = [], [], [], 0
    for objective_id, version, accepted_at in recorder.accepted:
        at = applied.get((objective_id, version))
        if at is None:
            missing += 1
            continue
        latencies.append(at - accepted_at)
        made = produced.get((objective_id, version))
        if made is not None:
            to_produced.append(made - accepted_at)
            to_applied.append(at - made)
    e2e = ms_stats(latencies)
    print(
        f"[e2e] {rate:g}/s: achieved {load.rate:.1f}/s, {load.errors} errors; HTTP p50/p99 "
        f"{load.percentile_ms(50):.1f}/{load.percentile_ms(99):.1f} ms; accepted -> ledger "
        f"p50/p99/max {e2e['p50']:.1f}/{e2e['p99']:.1f}/{e2e['max']:.1f} ms ({len(latencies)} "
        f"events, {missing} missing); ledger drained {drained:.1f} s after the run; cores {cores}"
    )
    params = {
        "rate_per_s": rate,
        "duration_s": args.duration,
        "connections": args.connections,
        "objectives": args.objectives,
        "accepted": len(recorder.accepted),
        "cores_busy": cores,
        "ledger_drained_s": round(drained, 2),
    }
    if load.rate < 0.95 * rate:
        params["note"] = (
            f"the service did not sustain {rate:g}/s: {load.rate:.1f}/s achieved; latencies "
            "are of the check-ins it accepted"
        )
        print(f"[e2e] {params['note']}", file=sys.stderr)
    target = ("<=", TARGET_E2E_P99_MS) if rate == TARGET_E2E_RATE else None
    figures.add(f"backbone.e2e_p50_ms_at_{tag}", e2e["p50"], "ms", **params)
    figures.add(f"backbone.e2e_p99_ms_at_{tag}", e2e["p99"], "ms", target, **params)
    figures.add(f"backbone.e2e_max_ms_at_{tag}", e2e["max"], "ms", **params)
    figures.add(
        f"backbone.e2e_achieved_per_s_at_{tag}",
        load.rate,
        "commands/s",
        (">=", 0.95 * rate),
        **params,
    )
    figures.add(
        f"backbone.e2e_errors_at_{tag}",
        load.errors,
        "count",
        **params,
        statuses={str(k): v for k, v in sorted(load.statuses.items())},
    )
    figures.add(f"backbone.e2e_missing_at_{tag}", missing, "count", **params)
    figures.add(f"backbone.e2e_http_p50_ms_at_{tag}", load.percentile_ms(50), "ms", **params)
    figures.add(f"backbone.e2e_http_p99_ms_at_{tag}", load.percentile_ms(99), "ms", **params)
    for name, values in (
        ("accepted_to_produced", to_produced),
        ("produced_to_applied", to_applied),
    ):
        stats = ms_stats(values)
        for q in ("p50", "p99"):
            figures.add(
                f"backbone.e2e_{name}_{q}_ms_at_{tag}",
                stats[q],
                "ms",
                **params,
                produced="the Kafka message's CreateTime (the relay's produce() call)",
            )
    bg.wait_settled(service, seeded)


# ---- the run ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run, for a smoke test")
    parser.add_argument("--events", type=int, help="events in the relay's backlog (50,000)")
    parser.add_argument("--duration", type=float, help="seconds at each end-to-end rate (20)")
    parser.add_argument("--rates", default="100,500", help="end-to-end check-ins/s (100,500)")
    parser.add_argument("--connections", type=int, default=32, help="open-loop connections (32)")
    parser.add_argument("--objectives", type=int, default=100, help="active objectives (100)")
    parser.add_argument("--members", type=int, default=20, help="members incl. the lead (20)")
    parser.add_argument("--skip-relay", action="store_true", help="skip the relay backlog run")
    parser.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end runs")
    parser.add_argument(
        "--no-process-relay", action="store_true", help="relay the backlog in this process only"
    )
    parser.add_argument(
        "--untraced-backlog",
        action="store_true",
        help="backlog events without trace context (figures named *_untraced)",
    )
    parser.add_argument(
        "--relay-runs", type=int, help="in-process relay runs on the backlog; median kept (3)"
    )
    parser.add_argument(
        "--ledger-seconds",
        type=float,
        help="seconds the ledger applies the relayed backlog, for its rate (10; 0: skip)",
    )
    parser.add_argument(
        "--profile-relay",
        type=Path,
        nargs="?",
        const=Path(tempfile.gettempdir()) / "bench_backbone_relay.txt",
        help="also profile the relay's publishing loop with pyinstrument (report to PATH)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench's Kafka topics")
    parser.add_argument("--seed", type=int, default=20261001)
    parser.add_argument("--output", type=Path, default=bg.DEFAULT_OUTPUT)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.events is None:
        args.events = 5_000 if args.quick else 50_000
    if args.duration is None:
        args.duration = 3.0 if args.quick else 20.0
    if args.relay_runs is None:
        args.relay_runs = 1 if args.quick else 3
    if args.relay_runs < 1:
        parser.error("--relay-runs must be at least 1")
    if args.ledger_seconds is None:
        args.ledger_seconds = 3.0 if args.quick else 10.0
    try:
        args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error("--rates must be numbers separated by commas, e.g. 100,500")
    if args.events < 1 or any(r <= 0 for r in args.rates):
        parser.error("--events and --rates must be positive")
    if args.members < 2:
        parser.error("--members must be at least 2 (a lead and one member)")
    return args


def check_infrastructure(pg: bg.Postgres, kafka: KafkaSettings) -> str | None:
    try:
        psycopg.connect(pg.conninfo(), connect_timeout=5).close()
    except psycopg.OperationalError as error:
        return f"PostgreSQL at {pg.host}:{pg.port} does not answer ({error}); `make infra-up`"
    try:
        AdminClient(kafka.common()).list_topics(timeout=10)
    except KafkaException as error:
        return f"Kafka at {kafka.bootstrap_servers} does not answer ({error}); `make infra-up`"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"bench_backbone: os.cpu_count() = {CORES}; Python {platform.python_version()}"
        f"{'; quick' if args.quick else ''}"
    )
    pg = bg.Postgres()
    kafka = KafkaSettings(topic_partitions=6)
    problem = check_infrastructure(pg, kafka)
    if problem:
        print(f"bench_backbone: {problem}", file=sys.stderr)
        return 2
    # Like the relay and the service processes: spans are made (and carried), not exported.
    configure_tracing("bench-backbone", TracingSettings(exporter="none"))
    common = {"cores": CORES, "quick": args.quick, "run_at": datetime.now(UTC).isoformat()}
    figures = bg.Figures(common)
    work = Path(tempfile.mkdtemp(prefix="bench_backbone_"))
    topics: list[str] = []
    groups: list[str] = []
    began = time.perf_counter()
    try:
        if not args.skip_relay:
            bench_relay(args, pg, kafka, figures, work, topics, groups)
        if not args.skip_e2e:
            bench_e2e(args, pg, kafka, figures, work, topics, groups)
    finally:
        if not args.keep and topics:
            delete_topics(kafka, topics, groups)
        shutil.rmtree(work, ignore_errors=True)
    bg.print_table(figures)
    print_breakdown(figures, args.rates)
    print(f"bench_backbone: {time.perf_counter() - began:.0f} s")
    if not args.no_write and figures.items:
        bg.write_results(args.output, figures)
        print(f"bench_backbone: wrote {len(figures.items)} figures to {args.output}")
    return 0


def print_breakdown(figures: bg.Figures, rates: list[float]) -> None:
    """Where an accepted check-in's time goes on its way to the ledger, per rate."""
    if not any(figures.get(f"backbone.e2e_p50_ms_at_{r:g}") for r in rates):
        return

    def cell(name: str) -> str:
        figure = figures.get(name)
        return "-" if figure is None else f"{figure.value:,.1f}"

    print(f"{'end to end, ms (' + str(CORES) + ' cores)':<40}" + "".join(f"{'p50':>10}{'p99':>10}"))
    for r in rates:
        tag = f"{r:g}"
        achieved = figures.get(f"backbone.e2e_achieved_per_s_at_{tag}")
        got = f"{achieved.value:.0f}/s achieved" if achieved else ""
        print(f"at {tag}/s ({got})")
        for label, name in (
            ("  HTTP (from the scheduled send)", "http"),
            ("  accepted -> relay produced", "accepted_to_produced"),
            ("  relay produced -> ledger applied", "produced_to_applied"),
            ("  accepted -> ledger applied", ""),
        ):
            if name:
                p50 = cell(f"backbone.e2e_{name}_p50_ms_at_{tag}")
                p99 = cell(f"backbone.e2e_{name}_p99_ms_at_{tag}")
            else:
                p50 = cell(f"backbone.e2e_p50_ms_at_{tag}")
                p99 = cell(f"backbone.e2e_p99_ms_at_{tag}")
            print(f"{label:<40}{p50:>10}{p99:>10}")
    print()


if __name__ == "__main__":
    sys.exit(main())
