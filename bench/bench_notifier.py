"""Benchmark of the notifier: rebuilding its projections from Kafka, and check-in -> notification.

`make bench` runs `.venv/bin/python bench/bench_notifier.py` after bench_goals.py and
bench_backbone.py, with PostgreSQL and Kafka up. It reuses their helpers (the goals service,
relay and processes, seeding, the open loop, CPU accounting, figures) and measures the two
targets of the notifier issue:

1. Rebuild speed (target >= 20,000 events/s). A goals history of --events (100,000) events is
   made directly as contracts (okr_events.goals): an organisation (registered, 10 departments,
   200 members: one aggregate, increasing versions), a planned and activated cycle, 1,000
   objectives (created, 2 key results added, activated) and, for the rest, KRProgressUpdated
   check-ins spread at random over the objectives with consistent before/after values and
   increasing versions per objective. Each is encoded with okr_events.codec.encode (as the
   relay does) and produced to a fresh 6-partition topic (key = the aggregate id). Then, for
   each run, on a fresh PostgreSQL schema: --follows (2,000) follows are saved through the
   notifier's FollowsApplication (its own event store, which the rebuild replays too; not
   timed), and okr_notifier.rebuild.rebuild(workers=--workers) is timed: the drop and the
   follows' replay in this process, the Kafka replay in --workers processes (default
   okr_notifier.rebuild.DEFAULT_WORKERS: the cores, at most 4; each replays the partitions
   p % workers == k; 1: in this process, as `okr-notifier rebuild --workers 1`):
   * events/s of the Kafka replay (its ReplayResult: events / seconds; with workers, from the
     end of the follows' replay until the last worker's end);
   * the whole call's wall time (drop, the follows' replay, the Kafka replay);
   * CPU seconds of this process (every thread, librdkafka's too) plus its worker processes
     (os.times()'s children_*, i.e. RUSAGE_CHILDREN, before and after: the workers have been
     waited for by then), and of the PostgreSQL backends serving them (found by
     application_name, which the workers inherit through PGAPPNAME, so other clients do not
     count; sampled every 0.1 s, so a worker's backend that closes is counted up to its last
     sample); "cores" (CPU seconds per second of the call) lists the workers as "workers" and
     counts their backends in "postgres";
   * memory: VmRSS after, and the peak (VmHWM, reset just before the call) of this process;
     each worker's peak (VmHWM, sampled every 0.1 s while it lives) and their sum.
   The projections are then counted against the history (every table must be complete).
   --runs (3) runs at the rebuild's default batch size (okr_notifier.rebuild's
   DEFAULT_BATCH_SIZE), median and all runs kept; then one run per --batch-sizes
   (1000,5000,20000) says which is best. If the median misses the target, one more run under
   pyinstrument, in this process (workers=1: the profiler sees this thread only), prints where
   the time goes: the call tree and the top functions by own and by total time (--profile
   forces it, --no-profile skips it; the profiled run's figures are not kept).
2. Latency from a check-in accepted by goals to the follower's notification (target p99 <=
   250 ms at 100 check-ins/s). The goals service (uvicorn), the goals relay and the notifier
   (`uvicorn --factory okr_notifier.main:create_app`, scheduler off) run as processes on fresh
   schemas, topic and consumer group. bench_goals seeds an organisation (--members, --objectives
   (50) active objectives with 3 KRs); the lead follows every objective through the notifier's
   API (PUT /objectives/{id}/follow, retried until the notifier has learned of it). Owners
   then check in open loop at --rate (100/s) for --duration (20 s, +1 s warm-up), rotating
   over the objectives. For each accepted check-in (HTTP 201) the client's receive time and
   the (objective id, version) of its answer are kept; afterwards the notifier's
   `notifications` table gives, per event id (in `dedupe_key`: uuid5 of "<aggregate id>:
   <version>", okr_events.stable_event_id), `raised_at`: latency = raised_at - accepted. The
   Kafka message's CreateTime splits it into accepted -> produced (relay) -> raised. Every
   accepted check-in must have its notification. Kept too: the CPU per check-in of the
   notifier process and of its PostgreSQL backends (by application_name), and its RSS. The
   goals service runs with a pool of GOALS_POOL_SIZE (5) connections: the three processes
   then open about 40, which a shared PostgreSQL (100 slots) can spare.

Every figure (names notifier.*) is printed and merged by name into bench/results/latest.json;
os.cpu_count() is printed and kept with each. Schemas, topics, consumer groups and processes
are removed at the end unless --keep.

Usage: bench/bench_notifier.py [--quick] [--events N] [--skip-rebuild] [--skip-latency]
       [--runs N] [--batch-size N] [--batch-sizes 1000,5000,20000] [--workers N] [--follows N]
       [--profile [PATH] | --no-profile] [--rate R] [--duration S] [--objectives N]
       [--members N] [--connections N] [--output PATH | --no-write] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from confluent_kafka import Producer
from okr_events import GOALS_SOURCE, goals, stable_event_id
from okr_events.base import EventContract
from okr_events.codec import encode
from okr_events.kafka import KafkaSettings, ensure_topics
from okr_events.replay import ReplayResult
from okr_events.tracing import TracingSettings, configure_tracing
from okr_notifier.application import FollowsApplication
from okr_notifier.domain.follow import Follow
from okr_notifier.rebuild import DEFAULT_BATCH_SIZE, DEFAULT_WORKERS, rebuild
from okr_notifier.service import open_store
from okr_notifier.settings import NotifierSettings
from okr_testkit.notifier import WEBHOOK_SECRET_KEY, postgres_settings
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_backbone as bb
import bench_goals as bg

CORES = bg.CORES

# Targets of the notifier issue (this 2-core machine).
TARGET_REBUILD_EVENTS_PER_S = 20_000.0
TARGET_LATENCY_P99_MS = 250.0  # at 100 check-ins/s
TARGET_RATE = 100.0

REBUILD_BATCH_SIZE = DEFAULT_BATCH_SIZE  # what `okr-notifier rebuild` uses
#: Seconds between two samples of the rebuild's workers and PostgreSQL backends.
SAMPLE_EVERY = 0.1
KRS_PER_OBJECTIVE = 2
# The goals service's pool (and as many overflow connections) in the latency phase: 100
# check-ins/s need a few; its default of 10 + 10 crowds a PostgreSQL shared with other work.
GOALS_POOL_SIZE = 5
DEPARTMENTS = 10


# ---- 1. a goals history, as contracts -----------------------------------------------------------


@dataclass
class Shape:
    """How big the history is; check-ins fill it up to `events`."""

    events: int
    objectives: int
    members: int
    departments: int = DEPARTMENTS

    @classmethod
    def for_events(cls, events: int) -> Shape:
        objectives = max(1, min(1_000, events // 100))
        members = max(DEPARTMENTS, min(200, events // 500))
        shape = cls(events, objectives, members)
        if shape.check_ins < 0:
            raise ValueError(f"--events must be at least {shape.structural} for this history")
        return shape

    @property
    def structural(self) -> int:
        """Events that are not check-ins: the org's, the cycle's, each objective's first 4."""
        org = 1 + self.departments + self.members
        return org + 2 + self.objectives * (2 + KRS_PER_OBJECTIVE)

    @property
    def check_ins(self) -> int:
        return self.events - self.structural


@dataclass
class ObjectiveState:
    objective_id: uuid.UUID
    owner: str
    version: int
    krs: dict[str, goals.KRValues]

    def progress(self) -> float:
        return sum(kr.progress for kr in self.krs.values()) / len(self.krs)


class History:
    """A realistic goals history: one organisation's directory, a cycle, objectives and their
    check-ins, in the order the goals service would have published them."""

    def __init__(self, shape: Shape, seed: int) -> None:
        self.shape = shape
        self.random = random.Random(seed)
        self.org_id = uuid.UUID(int=self.random.getrandbits(128), version=4)
        self.cycle_id = uuid.UUID(int=self.random.getrandbits(128), version=4)
        self.clock = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)
        self.departments = [f"d{n:02d}" for n in range(shape.departments)]
        self.members = [f"u{n:04d}" for n in range(shape.members)]
        self.objectives: list[ObjectiveState] = []
        self.kinds: Counter[str] = Counter()

    def department_of(self, member: str) -> str:
        return self.departments[int(member[1:]) % len(self.departments)]

    def lead_of(self, department: str) -> str:
        return self.members[self.departments.index(department)]

    def _at(self) -> datetime:
        self.clock += timedelta(seconds=self.random.randint(20, 100))
        return self.clock

    def contracts(self) -> Iterator[EventContract]:
        """Exactly `shape.events` contracts; `kinds` counts them by type afterwards."""
        for contract in itertools.chain(
            self._organisation(), self._cycle(), self._objectives(), self._check_ins()
        ):
            self.kinds[type(contract).__name__] += 1
            yield contract

    def _organisation(self) -> Iterator[EventContract]:
        org = {"aggregate_id": self.org_id, "actor": "root"}
        version = itertools.count(1)
        yield goals.OrganisationRegistered(
            **org,
            aggregate_version=next(version),
            occurred_at=self._at(),
            slug="bench-history",
            name="Bench history",
        )
        for n, department in enumerate(self.departments):
            yield goals.DepartmentAdded(
                **org,
                aggregate_version=next(version),
                occurred_at=self._at(),
                department_id=department,
                name=f"部门 {n}",
                parent_id=None,
                lead_ids=[self.lead_of(department)],
            )
        for member in self.members:
            department = self.department_of(member)
            lead = self.lead_of(department)
            yield goals.MemberAdded(
                **org,
                aggregate_version=next(version),
                occurred_at=self._at(),
                member_id=member,
                name=f"成员 {member}",
                department_id=department,
                manager_id=None if lead == member else lead,
                time_zone="Asia/Shanghai",
                roles=["supervisor"] if lead == member else ["employee"],
                email=None,
            )

    def _cycle(self) -> Iterator[EventContract]:
        cycle = {"aggregate_id": self.cycle_id, "actor": "root"}
        yield goals.CycleCreated(
            **cycle,
            aggregate_version=1,
            occurred_at=self._at(),
            org_id=self.org_id,
            name="2026 Q4",
            kind="quarter",
            start_date=date(2026, 10, 1),
            end_date=date(2026, 12, 31),
        )
        yield goals.CycleActivated(**cycle, aggregate_version=2, occurred_at=self._at())

    def _objectives(self) -> Iterator[EventContract]:
        for n in range(self.shape.objectives):
            owner = self.members[n % len(self.members)]
            objective_id = uuid.UUID(int=self.random.getrandbits(128), version=4)
            common = {"aggregate_id": objective_id, "actor": owner}
            yield goals.ObjectiveCreated(
                **common,
                aggregate_version=1,
                occurred_at=self._at(),
                org_id=self.org_id,
                cycle_id=self.cycle_id,
                title=f"目标 {n}",
                description="",
                level="personal",
                owner_type="member",
                owner_id=owner,
                responsible_ids=[owner],
                department_id=self.department_of(owner),
                visibility="department" if n % 5 == 0 else "public",
                weight=1.0,
                created_for_report=False,
            )
            krs = {}
            for k in range(KRS_PER_OBJECTIVE):
                kr_id = f"kr{n:04d}{k}"
                yield goals.KeyResultAdded(
                    **common,
                    aggregate_version=2 + k,
                    occurred_at=self._at(),
                    kr_id=kr_id,
                    title=f"KR {n}.{k}",
                    kind="metric",
                    unit="number",
                    unit_label=None,
                    start=0.0,
                    target=100.0,
                    current=0.0,
                    owner_id=owner,
                    due_date=None,
                    weight=1.0,
                    late=False,
                )
                krs[kr_id] = goals.KRValues(
                    current=0.0, progress=0.0, confidence=None, risk="normal"
                )
            version = 2 + KRS_PER_OBJECTIVE
            yield goals.ObjectiveActivated(
                **common,
                aggregate_version=version,
                occurred_at=self._at(),
                reason="approval_not_required",
            )
            self.objectives.append(ObjectiveState(objective_id, owner, version, krs))

    def _check_ins(self) -> Iterator[EventContract]:
        rnd = self.random
        for _ in range(self.shape.check_ins):
            objective = rnd.choice(self.objectives)
            kr_id = rnd.choice(list(objective.krs))
            before = objective.krs[kr_id]
            current = round(min(100.0, max(0.0, before.current + rnd.uniform(-5, 12))), 1)
            confidence = rnd.randint(1, 5)
            after = goals.KRValues(
                current=current,
                progress=current / 100.0,
                confidence=confidence,
                risk="normal" if confidence >= 3 else "at_risk",
            )
            progress_before = objective.progress()
            objective.krs[kr_id] = after
            objective.version += 1
            yield goals.KRProgressUpdated(
                aggregate_id=objective.objective_id,
                aggregate_version=objective.version,
                occurred_at=self._at(),
                actor=objective.owner,
                kr_id=kr_id,
                check_in_id=uuid.UUID(int=rnd.getrandbits(128), version=4).hex,
                before=before,
                after=after,
                objective_progress_before=progress_before,
                objective_progress_after=objective.progress(),
                note=rnd.choice(["", "按计划推进", "客户签约延后", "on track"]),
                source="manual",
                late=False,
            )

    def follow_pairs(self, count: int) -> list[tuple[str, ObjectiveState]]:
        """`count` distinct (follower, objective) pairs, never the objective's owner."""
        pairs: set[tuple[str, int]] = set()
        limit = len(self.members) * len(self.objectives) - len(self.objectives)
        rnd = random.Random(len(self.objectives))
        while len(pairs) < min(count, limit):
            n = rnd.randrange(len(self.objectives))
            member = rnd.choice(self.members)
            if member != self.objectives[n].owner:
                pairs.add((member, n))
        return [(member, self.objectives[n]) for member, n in sorted(pairs)]


def fast_producer(kafka: KafkaSettings) -> Producer:
    """Throughput over safety (a bench topic): big batches, lz4, one ack, no idempotence."""
    return Producer(
        kafka.common()
        | {
            "client.id": "bench-notifier-history",
            "acks": 1,
            "enable.idempotence": False,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
        }
    )


def produce_history(history: History, kafka: KafkaSettings, topic: str) -> float:
    """Encode each contract as the relay does and produce it; wait for every delivery.
    Returns seconds."""
    producer = fast_producer(kafka)
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    began = time.perf_counter()
    for contract in history.contracts():
        message = encode(contract, topic=topic, source=GOALS_SOURCE)
        while True:
            try:
                producer.produce(
                    topic,
                    message.value,
                    message.key,
                    headers=message.headers,
                    on_delivery=delivered,
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(120)
    if left or failures:
        raise RuntimeError(f"{left} messages undelivered, {len(failures)} failed: {failures[:3]}")
    return time.perf_counter() - began


# ---- 1. the rebuild -----------------------------------------------------------------------------


def dsn(pg: bg.Postgres) -> str:
    return (
        f"postgresql://{quote(pg.user)}:{quote(pg.password)}@{pg.host}:{pg.port}/{quote(pg.dbname)}"
    )


_schemas = itertools.count(1)


def fresh_schema(prefix: str) -> str:
    return f"{bg.unique_schema(prefix)}_{next(_schemas)}"


class Backends:
    """CPU of the PostgreSQL backends serving one application_name (libpq takes it from
    PGAPPNAME): PostgreSQL's work for that client alone, whatever else uses the server."""

    def __init__(self, pg: bg.Postgres, app_name: str) -> None:
        self.conn = psycopg.connect(
            pg.conninfo(), autocommit=True, application_name="bench-notifier-monitor"
        )
        self.app_name = app_name
        self.start: dict[int, float] = {}
        self.seen: dict[int, float] = {}  # the last CPU seen of every backend since begin()
        self.closed = 0.0  # of that CPU, the backends' that closed before end()

    def _now(self) -> dict[int, float]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.app_name,)
        ).fetchall()
        cpu = {}
        for (pid,) in rows:
            try:
                cpu[pid] = bg.process_cpu(pid)
            except OSError:
                continue  # closed meanwhile
        return cpu

    def begin(self) -> None:
        self.start = self._now()
        self.seen = dict(self.start)

    def sample(self) -> None:
        """Note the backends' CPU now: one that closes before end() counts up to here."""
        self.seen.update(self._now())

    def end(self) -> float:
        """CPU seconds since begin() of the backends alive now or sampled in between (one
        that opened and closed between two samples is missed: the pools keep theirs)."""
        now = self._now()
        self.seen.update(now)
        spent = {pid: cpu - self.start.get(pid, 0.0) for pid, cpu in self.seen.items()}
        self.closed = sum(cpu for pid, cpu in spent.items() if pid not in now)
        return sum(spent.values())

    def close(self) -> None:
        self.conn.close()


def app_name(role: str) -> str:
    return f"bench-notifier-{role}-{os.getpid()}"


def write_follows(
    follows: FollowsApplication, history: History, pairs: list[tuple[str, ObjectiveState]]
) -> None:
    """Save the follows through the notifier's application, 500 aggregates per transaction;
    every tenth asks for progress warnings too (settings differ between follows)."""
    aggregates = [
        Follow.start(
            history.org_id,
            member,
            objective.objective_id,
            {"progress_warning": True} if n % 10 == 0 else None,
        )
        for n, (member, objective) in enumerate(pairs)
    ]
    for chunk in chunked(aggregates, 500):
        follows.save(*chunk)


def chunked(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0), so the peak is the call's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def worker_pids() -> list[int]:
    """This process's multiprocessing workers (its "spawn" children, not its resource
    tracker)."""
    pids = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        try:
            listed = children.read_text().split()
        except OSError:
            continue
        for pid in listed:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue  # gone meanwhile
            if b"spawn_main" in command:
                pids.append(int(pid))
    return pids


class WorkerSampler:
    """While the rebuild runs, a thread samples every SAMPLE_EVERY s the peak RSS (VmHWM) of
    each worker process, and the CPU of the PostgreSQL backends (the workers' backends close
    before Backends.end() could see them)."""

    def __init__(self, backends: Backends) -> None:
        self.backends = backends
        self.peaks: dict[int, float] = {}  # worker pid -> its VmHWM (MB), as last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> WorkerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            for pid in worker_pids():
                try:
                    self.peaks[pid] = bg.proc_status_mb(pid)["VmHWM"]
                except (OSError, KeyError):
                    continue  # exited (a zombie has no VmHWM)
            self.backends.sample()


@dataclass
class RebuildRun:
    batch_size: int
    workers: int
    result: ReplayResult
    wall_seconds: float
    bench_cpu_seconds: float  # this process
    workers_cpu_seconds: float  # its worker processes
    postgres_cpu_seconds: float
    rss_mb: float
    rss_peak_mb: float
    rss_before_mb: float
    workers_rss_peak_mb: list[float] = field(default_factory=list)  # each worker's VmHWM
    cores: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_seconds(self) -> float:
        return self.bench_cpu_seconds + self.workers_cpu_seconds

    @property
    def events(self) -> int:
        return self.result.events

    @property
    def replay_seconds(self) -> float:
        return self.result.seconds

    @property
    def events_per_s(self) -> float:
        return self.result.events_per_second

    def summary(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "workers": self.workers,
            "events_per_s": round(self.events_per_s),
            "replay_s": round(self.replay_seconds, 2),
            "wall_s": round(self.wall_seconds, 2),
            "cpu_s": round(self.cpu_seconds, 2),
            "workers_cpu_s": round(self.workers_cpu_seconds, 2),
            "postgres_cpu_s": round(self.postgres_cpu_seconds, 2),
            "rss_peak_mb": round(self.rss_peak_mb, 1),
            "workers_rss_peak_mb": [round(mb, 1) for mb in self.workers_rss_peak_mb],
        }


def expected_rows(history: History, follows: int) -> dict[str, int]:
    """Row counts of the projections a complete rebuild of `history` gives."""
    kinds = history.kinds
    return {
        "orgs": 1,
        "departments": kinds["DepartmentAdded"],
        "members": kinds["MemberAdded"],
        "cycles": kinds["CycleCreated"],
        "objectives": kinds["ObjectiveCreated"],
        "key_results": kinds["KeyResultAdded"],
        # a KR added (its first point; the objective's stays 0) and two per check-in
        "progress_history": kinds["KeyResultAdded"] + 2 * kinds["KRProgressUpdated"],
        "follows": follows,
    }


def check_projections(store: Any, expected: dict[str, int]) -> None:
    got = {
        table: int(store.query(f"SELECT count(*) AS n FROM {table}")[0]["n"]) for table in expected
    }
    if got != expected:
        raise RuntimeError(f"the rebuilt projections are incomplete: {got} != {expected}")


def rebuild_once(
    pg: bg.Postgres,
    kafka: KafkaSettings,
    topic: str,
    history: History,
    pairs: list[tuple[str, ObjectiveState]],
    batch_size: int,
    workers: int,
    profile: Path | None = None,
) -> RebuildRun:
    """On a fresh schema: the follows (not timed), the timed rebuild, a check of the result."""
    schema = fresh_schema("bench_notifier_rebuild")
    settings = postgres_settings(
        dsn(pg), schema, topics=[topic], group_id=f"bench-notifier-rebuild-{schema}"
    )
    store = open_store(settings)
    follows = FollowsApplication(env=settings.event_store_env())
    try:
        write_follows(follows, history, pairs)
        run = timed_rebuild(pg, settings, store, follows, kafka, batch_size, workers, profile)
        if run.result.dead_lettered or run.result.duplicates or run.events != history.shape.events:
            raise RuntimeError(f"the rebuild did not apply the history exactly: {run.result}")
        check_projections(store, expected_rows(history, len(pairs)))
        return run
    finally:
        follows.close()
        store.datastore.close()  # type: ignore[attr-defined]
        pg.drop_schema(schema)


def timed_rebuild(
    pg: bg.Postgres,
    settings: NotifierSettings,
    store: Any,
    follows: FollowsApplication,
    kafka: KafkaSettings,
    batch_size: int,
    workers: int,
    profile: Path | None,
) -> RebuildRun:
    """rebuild() with its wall time, the CPU and memory of this process and of its workers,
    its PostgreSQL backends' CPU; with `profile`, under pyinstrument (the tree written to
    `profile`, a summary printed)."""
    meter = bb.CpuOf(kafka=bb.kafka_broker_pid())
    backends = Backends(pg, os.environ.get("PGAPPNAME", ""))  # the workers inherit it
    try:
        rss_before = bg.proc_status_mb(os.getpid())["VmRSS"]
        reset_peak_rss()
        profiler = start_profiler() if profile else None
        backends.begin()
        meter.begin()
        before = os.times()  # children_*: of the children waited for (the workers, at the end)
        began = time.perf_counter()
        with WorkerSampler(backends) as sampler:
            result = rebuild(
                settings, store, follows, kafka, batch_size=batch_size, workers=workers
            )
        wall = time.perf_counter() - began
        after = os.times()
        cores = meter.end()
        backend_cpu = backends.end()
    finally:
        backends.close()
    if profiler is not None:
        profiler.stop()
        report_profile(profiler, profile, result.events)
    memory = bg.proc_status_mb(os.getpid())
    workers_cpu = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    return RebuildRun(
        batch_size=batch_size,
        workers=workers,
        result=result,
        wall_seconds=wall,
        bench_cpu_seconds=(after.user + after.system) - (before.user + before.system),
        workers_cpu_seconds=workers_cpu,
        postgres_cpu_seconds=backend_cpu,
        rss_mb=memory["VmRSS"],
        rss_peak_mb=memory["VmHWM"],
        rss_before_mb=rss_before,
        workers_rss_peak_mb=sorted(sampler.peaks.values(), reverse=True),
        cores=with_workers(cores, workers_cpu / wall, backends.closed / wall),
    )


def with_workers(cores: dict[str, float], workers: float, closed: float) -> dict[str, float]:
    """CpuOf counts this process, and the PostgreSQL processes alive at its end: the cores of
    the workers and of their backends (closed by then) move from "others" to "workers" and
    "postgres"."""
    if not workers:
        return cores
    others = max(0.0, cores.get("others", 0.0) - workers - closed)
    return cores | {
        "workers": round(workers, 2),
        "postgres": round(cores.get("postgres", 0.0) + closed, 2),
        "others": round(others, 2),
    }


def bench_rebuild(
    args: argparse.Namespace,
    pg: bg.Postgres,
    kafka: KafkaSettings,
    figures: bg.Figures,
    topics: list[str],
) -> None:
    shape = Shape.for_events(args.events)
    history = History(shape, args.seed)
    topic = f"bench.{fresh_schema('notifier_history')}.goals.events"
    topics.append(topic)
    ensure_topics(kafka, [topic])
    print(
        f"[rebuild] producing {shape.events:,} goals events ({shape.members} members, "
        f"{shape.objectives:,} objectives x {KRS_PER_OBJECTIVE} KRs, {shape.check_ins:,} "
        f"check-ins) to {topic} ({kafka.topic_partitions} partitions) ..."
    )
    seconds = produce_history(history, kafka, topic)
    on_topic = bb.topic_message_count(kafka, topic)
    if on_topic != shape.events:
        raise RuntimeError(f"the topic holds {on_topic} messages, not {shape.events}")
    pairs = history.follow_pairs(args.follows)
    print(
        f"[rebuild] produced in {seconds:.1f} s ({shape.events / seconds:,.0f}/s); "
        f"{dict(history.kinds)}; {len(pairs):,} follows per run"
    )
    params = {
        "events": shape.events,
        "check_ins": shape.check_ins,
        "objectives": shape.objectives,
        "members": shape.members,
        "follows": len(pairs),
        "partitions": kafka.topic_partitions,
        "workers": args.workers,
    }

    runs = []
    for n in range(args.runs):
        run = rebuild_once(pg, kafka, topic, history, pairs, args.batch_size, args.workers)
        print_run(f"run {n + 1}/{args.runs}", run)
        bb.warn_if_noisy("rebuild", run.cores)
        runs.append(run)
    median = sorted(runs, key=lambda r: r.replay_seconds)[len(runs) // 2]
    add_rebuild_figures(figures, runs, median, params | {"batch_size": args.batch_size})

    sweep = {}
    for size in args.batch_sizes:
        run = rebuild_once(pg, kafka, topic, history, pairs, size, args.workers)
        print_run(f"batch size {size:,}", run)
        bb.warn_if_noisy("rebuild", run.cores)
        sweep[size] = run
        figures.add(
            f"notifier.rebuild_events_per_s_batch_{size}",
            run.events_per_s,
            "events/s",
            **params,
            batch_size=size,
            runs=1,
            cores_busy=run.cores,
        )
    if sweep:
        best = max(sweep.values(), key=lambda r: r.events_per_s)
        print(f"[rebuild] best batch size: {best.batch_size:,} ({best.events_per_s:,.0f} events/s)")
        figures.add(
            "notifier.rebuild_best_batch_size",
            best.batch_size,
            "events/batch",
            **params,
            tried={str(s): round(r.events_per_s) for s, r in sweep.items()},
        )

    missed = median.events_per_s < TARGET_REBUILD_EVENTS_PER_S
    if args.profile is not None or (missed and not args.no_profile):
        path = args.profile or Path(tempfile.gettempdir()) / "bench_notifier_rebuild.txt"
        print(
            f"[rebuild] profiling one more run with pyinstrument, in this process (workers=1; "
            f"tree in {path}) ..."
        )
        run = rebuild_once(pg, kafka, topic, history, pairs, args.batch_size, 1, profile=path)
        print_run("profiled (not kept)", run)


def print_run(label: str, run: RebuildRun) -> None:
    workers = ", ".join(f"{mb:.0f}" for mb in run.workers_rss_peak_mb) or "none"
    print(
        f"[rebuild] {label}: {run.events:,} events replayed in {run.replay_seconds:.2f} s = "
        f"{run.events_per_s:,.0f}/s (batch {run.batch_size:,}, {run.workers} worker(s)); whole "
        f"call {run.wall_seconds:.2f} s; CPU {run.cpu_seconds:.1f} s here and in the workers "
        f"({run.workers_cpu_seconds:.1f} s of it in the workers), "
        f"{run.postgres_cpu_seconds:.1f} s PostgreSQL; RSS {run.rss_before_mb:.0f} -> peak "
        f"{run.rss_peak_mb:.0f} MB here, workers' peaks {workers} MB; cores {run.cores}"
    )


def add_rebuild_figures(
    figures: bg.Figures, runs: list[RebuildRun], median: RebuildRun, params: dict[str, Any]
) -> None:
    params = params | {
        "runs": len(runs),
        "all_runs": [r.summary() for r in runs],
        "cores_busy": median.cores,
        "measured": "ReplayResult of okr_notifier.rebuild.rebuild(): the Kafka replay",
    }
    figures.add(
        "notifier.rebuild_events_per_s",
        median.events_per_s,
        "events/s",
        (">=", TARGET_REBUILD_EVENTS_PER_S),
        **params,
    )
    figures.add(
        "notifier.rebuild_events_per_s_min",
        min(r.events_per_s for r in runs),
        "events/s",
        **params,
    )
    figures.add("notifier.rebuild_replay_s", median.replay_seconds, "s", **params)
    figures.add(
        "notifier.rebuild_wall_s",
        median.wall_seconds,
        "s",
        **params,
        note="the whole rebuild() call: drop, the follows' replay, the Kafka replay",
    )
    cpu = {
        "process": "bench + its rebuild workers",
        "bench_cpu_s": round(median.bench_cpu_seconds, 2),
        "workers_cpu_s": round(median.workers_cpu_seconds, 2),
    }
    figures.add("notifier.rebuild_cpu_s", median.cpu_seconds, "s", **params, **cpu)
    figures.add(
        "notifier.rebuild_cpu_us_per_event",
        median.cpu_seconds * 1e6 / median.events,
        "us/event",
        **params,
        **cpu,
    )
    figures.add("notifier.rebuild_postgres_cpu_s", median.postgres_cpu_seconds, "s", **params)
    figures.add(
        "notifier.rebuild_rss_peak_mb",
        median.rss_peak_mb,
        "MB",
        **params,
        rss_before_mb=round(median.rss_before_mb, 1),
        note="VmHWM of the bench process, reset before the call",
    )
    figures.add("notifier.rebuild_rss_mb", median.rss_mb, "MB", **params, when="after the call")
    if median.workers_rss_peak_mb:
        figures.add(
            "notifier.rebuild_workers_rss_peak_mb",
            sum(median.workers_rss_peak_mb),
            "MB",
            **params,
            each_mb=[round(mb, 1) for mb in median.workers_rss_peak_mb],
            note="the workers' VmHWM summed (sampled every 0.1 s while they live)",
        )


# ---- profiling ----------------------------------------------------------------------------------


def start_profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    return profiler


def report_profile(profiler: Any, path: Path, events: int, top: int = 20) -> None:
    """The call tree to `path`; printed: the top functions by own time and by total time."""
    path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    root = profiler.last_session.root_frame()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()

    def walk(frame: Any, stack: frozenset[str]) -> None:
        if frame.is_synthetic:  # "[self]" and the like: counted in their parent's own time
            return
        name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        own[name] += frame.total_self_time
        if name not in stack:  # recursion counts once
            total[name] += frame.time
        for child in frame.children:
            walk(child, stack | {name})

    walk(root, frozenset())
    whole = root.time or 1.0
    print(f"[profile] {whole:.2f} s sampled in the rebuilding thread, {events:,} events")
    for title, counter in (("own time", own), ("total time (incl. callees)", total)):
        print(f"[profile] top functions by {title}:")
        for name, seconds in counter.most_common(top):
            print(
                f"  {100 * seconds / whole:5.1f} %  {seconds * 1e6 / events:7.1f} us/event  {name}"
            )


# ---- 2. latency: check-in accepted by goals -> the follower's notification ----------------------


def notifier_env(
    pg: bg.Postgres, kafka: KafkaSettings, schema: str, topic: str, group: str
) -> dict[str, str]:
    return {
        "NOTIFIER_PERSISTENCE": "postgres",
        "NOTIFIER_POSTGRES_HOST": pg.host,
        "NOTIFIER_POSTGRES_PORT": str(pg.port),
        "NOTIFIER_POSTGRES_DBNAME": pg.dbname,
        "NOTIFIER_POSTGRES_USER": pg.user,
        "NOTIFIER_POSTGRES_PASSWORD": pg.password,
        "NOTIFIER_POSTGRES_SCHEMA": schema,
        "NOTIFIER_TOPICS": json.dumps([topic]),
        "NOTIFIER_GROUP_ID": group,
        "NOTIFIER_JWT_SECRET": bg.JWT_SECRET,  # the goals service's: one token for both
        "NOTIFIER_WEBHOOK_SECRET_KEYS": WEBHOOK_SECRET_KEY,  # required outside the embedded default
        "NOTIFIER_SCHEDULER_ENABLED": "false",
        "OKR_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "OKR_KAFKA_TOPIC_PARTITIONS": str(kafka.topic_partitions),
        "OKR_TRACING_EXPORTER": "none",
        "PGAPPNAME": app_name("notifier"),
    }


class NotifierProcess(bg.Service):
    """`uvicorn --factory okr_notifier.main:create_app` in its own process (bg.Service's
    requests, readiness and stop, with the notifier's command)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        import http.client
        import subprocess

        self.port = bg.free_port()
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.profile = None
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "--factory", "okr_notifier.main:create_app"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--no-access-log", "--log-level", "warning"),
            ],
            env=os.environ | env,
            cwd=bg.ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def wait_ready(self, timeout: float = 60.0) -> None:
        try:
            super().wait_ready(timeout)
        except RuntimeError as error:  # bg.Service's message names the goals service
            raise RuntimeError(str(error).replace("the goals service", "the notifier")) from None


class RotatingCheckIns(bg.CheckIns):
    """Check-ins by each objective's owner, objective after objective (a random KR, value and
    confidence, as bench_goals sends them)."""

    def __init__(self, targets: list[bg.Target], host: str, port: int, seed: int) -> None:
        super().__init__(targets, host, port, seed)
        self.rotation = itertools.cycle(targets)

    def next(self) -> bytes:
        target = next(self.rotation)
        kr_id = self.random.choice(target.kr_ids)
        current = round(self.random.uniform(0, 100), 1)
        body = json.dumps({"current": current, "confidence": self.random.randint(1, 5)})
        path = f"/objectives/{target.objective_id}/key-results/{kr_id}/check-ins"
        return bg.http_request("POST", path, self.host, self.port, target.token, body.encode())


def warn_if_few_connections(pg: bg.Postgres, needed: int = 40) -> None:
    """The goals service, relay and notifier open about `needed` connections together."""
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int - count(*) FROM pg_stat_activity"
        ).fetchone()
    free = int(row[0]) if row else 0
    if free < needed + 5:
        print(
            f"[latency] warning: PostgreSQL has {free} free connection slots, and this phase "
            f"opens about {needed}: other clients may make its processes fail",
            file=sys.stderr,
        )


def follow_all(
    notifier: NotifierProcess, targets: list[bg.Target], token: str, timeout: float = 120.0
) -> float:
    """PUT /objectives/{id}/follow for each objective, retried while the notifier does not know
    it yet (404); the seconds that took."""
    began = time.monotonic()
    for target in targets:
        path = f"/objectives/{target.objective_id}/follow"
        while True:
            status, body = notifier.call("PUT", path, token)
            if status == 200:
                break
            if status not in (404, 503) or time.monotonic() - began > timeout:
                raise RuntimeError(f"PUT {path} answered {status}: {body}")
            time.sleep(0.05)
    return time.monotonic() - began


class NotifierTables:
    """Reads the notifier's schema: its positions and its notifications."""

    def __init__(self, pg: bg.Postgres, schema: str) -> None:
        self.conn = psycopg.connect(pg.conninfo(), autocommit=True)
        self.schema = schema

    def positions(self, topic: str) -> dict[int, int]:
        """Partition -> next offset the notifier applies of `topic` (its stored tracking,
        application_name "<topic>:<partition>"; its own follow events are tracked there too)."""
        table = sql.Identifier(self.schema, "notifier_projection_tracking")
        query = sql.SQL(
            "SELECT application_name, max(notification_id) FROM {} "
            "WHERE application_name LIKE %s GROUP BY application_name"
        ).format(table)
        try:
            rows = self.conn.execute(query, (f"{topic}:%",)).fetchall()
        except psycopg.errors.UndefinedTable:
            return {}
        return {int(name.rsplit(":", 1)[1]): int(n) for name, n in rows}

    def progress_notifications(self, recipient: str) -> dict[str, tuple[float, dict[str, Any]]]:
        """Event id -> (raised_at as epoch seconds, params) of the recipient's check-in
        notifications (dedupe_key = "progress_updated:<objective>:<follower>:<event id>")."""
        table = sql.Identifier(self.schema, "notifications")
        query = sql.SQL(
            "SELECT dedupe_key, raised_at, params FROM {} "
            "WHERE rule = 'progress_updated' AND recipient_id = %s"
        ).format(table)
        found = {}
        for key, raised_at, params in self.conn.execute(query, (recipient,)):
            moment = datetime.strptime(raised_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            found[key.rsplit(":", 1)[1]] = (moment.timestamp(), json.loads(params))
        return found

    def close(self) -> None:
        self.conn.close()


def wait_caught_up(
    tables: NotifierTables,
    kafka: KafkaSettings,
    topic: str,
    children: list[tuple[Any, str]],
    timeout: float = 120.0,
) -> float:
    """Until the notifier's positions reach the topic's ends; the seconds that took."""
    began = time.monotonic()
    while True:
        ends = bb.high_watermarks(kafka, topic)
        positions = tables.positions(topic)
        if all(positions.get(p, 0) >= end for p, end in ends.items()):
            return time.monotonic() - began
        check_children(children)
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"the notifier is behind after {timeout:.0f} s: {positions}/{ends}")
        time.sleep(0.1)


def check_children(children: list[tuple[Any, str]]) -> None:
    for child, what in children:
        if child.process.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{child.log_tail()}")


def wait_notified(
    tables: NotifierTables,
    recipient: str,
    event_ids: set[str],
    children: list[tuple[Any, str]],
    timeout: float = 60.0,
) -> tuple[dict[str, tuple[float, dict[str, Any]]], float]:
    """The recipient's check-in notifications once every event id has one (or after
    `timeout`); and the seconds that took."""
    began = time.monotonic()
    while True:
        found = tables.progress_notifications(recipient)
        if event_ids <= found.keys() or time.monotonic() - began > timeout:
            return found, time.monotonic() - began
        check_children(children)
        time.sleep(0.2)


@dataclass
class Latencies:
    total: list[float] = field(default_factory=list)
    to_produced: list[float] = field(default_factory=list)
    produced_to_raised: list[float] = field(default_factory=list)
    missing: int = 0
    without_value: int = 0


def latencies(
    accepted: list[tuple[str, int, float]],
    notified: dict[str, tuple[float, dict[str, Any]]],
    produced: dict[tuple[str, int], float],
) -> Latencies:
    result = Latencies()
    for objective_id, version, accepted_at in accepted:
        found = notified.get(stable_event_id(uuid.UUID(objective_id), version))
        if found is None:
            result.missing += 1
            continue
        raised_at, params = found
        if "value_after" not in params:
            result.without_value += 1
        result.total.append(raised_at - accepted_at)
        made = produced.get((objective_id, version))
        if made is not None:
            result.to_produced.append(made - accepted_at)
            result.produced_to_raised.append(raised_at - made)
    return result


def ms(values: list[float]) -> dict[str, float]:
    stats = bb.ms_stats(values)
    stats["p95"] = bg.percentile(values, 95) * 1000
    return stats


def bench_latency(
    args: argparse.Namespace,
    pg: bg.Postgres,
    kafka: KafkaSettings,
    figures: bg.Figures,
    work: Path,
    topics: list[str],
    groups: list[str],
) -> None:
    stamp = fresh_schema("bench_notifier_e2e")
    goals_schema, notifier_schema = stamp, f"{stamp}_notifier"
    topic, group = f"bench.{stamp}.goals.events", f"bench-notifier-{stamp}"
    topics.append(topic)
    groups.append(group)
    ensure_topics(kafka, [topic])
    warn_if_few_connections(pg)
    goals_env = bb.process_env(pg, kafka, goals_schema, topic) | {
        "GOALS_POSTGRES_POOL_SIZE": str(GOALS_POOL_SIZE),
        "PGAPPNAME": app_name("goals"),
    }
    service = bg.Service(goals_env, work / "goals.log")
    relay = notifier = None
    tables: NotifierTables | None = None
    try:
        service.wait_ready()
        relay_env = bb.relay_env(pg, kafka, goals_schema, topic)
        relay = bb.Child(
            "okr_goals.relay", relay_env | {"PGAPPNAME": app_name("relay")}, work / "relay.log"
        )
        notifier = NotifierProcess(
            notifier_env(pg, kafka, notifier_schema, topic, group), work / "notifier.log"
        )
        notifier.wait_ready()
        children: list[tuple[Any, str]] = [(relay, "the relay"), (notifier, "the notifier")]
        started = time.perf_counter()
        seeded = bg.seed(service, args.objectives, args.members)
        follower = "lead"  # the members' manager; owns no objective, sees them all
        following = follow_all(notifier, seeded.targets, bg.token(follower, []))
        tables = NotifierTables(pg, notifier_schema)
        caught_up = wait_caught_up(tables, kafka, topic, children)
        print(
            f"[latency] goals pid {service.pid}, relay pid {relay.pid}, notifier pid "
            f"{notifier.pid}; seeded {len(seeded.targets)} objectives x 3 KRs in "
            f"{time.perf_counter() - started:.1f} s (the follows took {following:.1f} s of it"
            f"); notifier caught up {caught_up:.1f} s later"
        )
        measure_latency(args, pg, service, relay, notifier, seeded, tables, kafka, topic, figures)
    except BaseException:
        for child, what in ((service, "goals"), (relay, "relay"), (notifier, "notifier")):
            if child is not None:
                print(f"[latency] {what} log (tail):\n{child.log_tail()}", file=sys.stderr)
        raise
    finally:
        if tables is not None:
            tables.close()
        for child in (notifier, relay):
            if child is not None:
                child.stop()
        service.stop()
        if not args.keep:
            pg.drop_schema(goals_schema)
            pg.drop_schema(notifier_schema)


def measure_latency(
    args: argparse.Namespace,
    pg: bg.Postgres,
    service: bg.Service,
    relay: bb.Child,
    notifier: NotifierProcess,
    seeded: bg.Seeded,
    tables: NotifierTables,
    kafka: KafkaSettings,
    topic: str,
    figures: bg.Figures,
) -> None:
    rate, tag = args.rate, f"{args.rate:g}"
    print(f"[latency] {rate:g} check-ins/s for {args.duration:g} s (+1 s warm-up) ...")
    start_offsets = bb.high_watermarks(kafka, topic)
    checkins = RotatingCheckIns(seeded.targets, "127.0.0.1", service.port, args.seed)
    recorder = bb.AcceptedRecorder()
    meter: Any = bb.CpuOf(
        goals=service.pid, relay=relay.pid, notifier=notifier.pid, kafka=bb.kafka_broker_pid()
    )
    notifier_cpu = bg.process_cpu(notifier.pid)
    notifier_backends = Backends(pg, app_name("notifier"))
    notifier_backends.begin()
    load = asyncio.run(
        bg.open_loop(checkins, rate, 1.0, args.duration, args.connections, meter, recorder)
    )
    cores = dict(load.cpu)
    cores["client"] = cores.pop("bench")
    bg.report_errors("latency", f"{rate:g}/s", load)
    bb.warn_if_noisy("latency", cores)
    children: list[tuple[Any, str]] = [(relay, "the relay"), (notifier, "the notifier")]
    wanted = {stable_event_id(uuid.UUID(o), v) for o, v, _ in recorder.accepted}
    notified, drained = wait_notified(tables, "lead", wanted, children)
    notifier_cpu = bg.process_cpu(notifier.pid) - notifier_cpu  # the run and its drain
    notifier_pg_cpu = notifier_backends.end()
    produced = bb.produce_times(kafka, topic, start_offsets)
    result = latencies(recorder.accepted, notified, produced)
    total = ms(result.total)
    split = {
        "accepted_to_produced": ms(result.to_produced),
        "produced_to_raised": ms(result.produced_to_raised),
    }
    memory = bg.proc_status_mb(notifier.pid)
    accepted = len(recorder.accepted)
    print(
        f"[latency] {rate:g}/s: achieved {load.rate:.1f}/s, {load.errors} errors; HTTP p50/p99 "
        f"{load.percentile_ms(50):.1f}/{load.percentile_ms(99):.1f} ms; accepted -> notified "
        f"p50/p95/p99/max {total['p50']:.1f}/{total['p95']:.1f}/{total['p99']:.1f}/"
        f"{total['max']:.1f} ms; {len(result.total)} of {accepted} matched ({result.missing} "
        f"missing); p50/p99 accepted -> produced by the relay "
        f"{split['accepted_to_produced']['p50']:.1f}/{split['accepted_to_produced']['p99']:.1f}, "
        f"produced -> raised {split['produced_to_raised']['p50']:.1f}/"
        f"{split['produced_to_raised']['p99']:.1f} ms; drained {drained:.1f} s after the run; "
        f"cores {cores}; notifier RSS {memory['VmRSS']:.0f} MB"
    )
    if result.missing or result.without_value:
        print(
            f"[latency] error: {result.missing} accepted check-ins without a notification, "
            f"{result.without_value} notifications without value_after",
            file=sys.stderr,
        )
    params = {
        "rate_per_s": rate,
        "duration_s": args.duration,
        "connections": args.connections,
        "goals_pool_size": GOALS_POOL_SIZE,
        "objectives": len(seeded.targets),
        "followers": 1,
        "accepted": accepted,
        "cores_busy": cores,
        "drained_s": round(drained, 2),
        "measured": "notifications.raised_at - the client's receive time of the HTTP 201",
    }
    if load.rate < 0.95 * rate:
        params["note"] = f"goals did not sustain {rate:g}/s: {load.rate:.1f}/s achieved"
        print(f"[latency] {params['note']}", file=sys.stderr)
    target = ("<=", TARGET_LATENCY_P99_MS) if rate == TARGET_RATE else None
    for q in ("p50", "p95", "max"):
        figures.add(f"notifier.latency_{q}_ms_at_{tag}", total[q], "ms", **params)
    figures.add(f"notifier.latency_p99_ms_at_{tag}", total["p99"], "ms", target, **params)
    figures.add(f"notifier.latency_matched_at_{tag}", len(result.total), "count", **params)
    figures.add(f"notifier.latency_missing_at_{tag}", result.missing, "count", ("<=", 0), **params)
    figures.add(
        f"notifier.latency_achieved_per_s_at_{tag}",
        load.rate,
        "commands/s",
        (">=", 0.95 * rate),
        **params,
    )
    figures.add(
        f"notifier.latency_errors_at_{tag}",
        load.errors,
        "count",
        **params,
        statuses={str(k): v for k, v in sorted(load.statuses.items())},
    )
    figures.add(f"notifier.latency_http_p99_ms_at_{tag}", load.percentile_ms(99), "ms", **params)
    for name, stats in split.items():
        for q in ("p50", "p99"):
            figures.add(
                f"notifier.latency_{name}_{q}_ms_at_{tag}",
                stats[q],
                "ms",
                **params,
                produced="the Kafka message's CreateTime (the relay's produce() call)",
            )
    figures.add(
        f"notifier.notifier_cpu_ms_per_checkin_at_{tag}",
        notifier_cpu * 1000 / max(1, accepted),
        "ms/check-in",
        **params,
        cpu_s=round(notifier_cpu, 2),
        scope="the notifier process, from the first check-in until every notification was raised",
    )
    figures.add(
        f"notifier.notifier_postgres_cpu_ms_per_checkin_at_{tag}",
        notifier_pg_cpu * 1000 / max(1, accepted),
        "ms/check-in",
        **params,
        cpu_s=round(notifier_pg_cpu, 2),
        scope="the PostgreSQL backends serving the notifier (by application_name), as above",
    )
    figures.add(
        f"notifier.notifier_cores_busy_at_{tag}", cores.get("notifier", 0.0), "cores", **params
    )
    figures.add(
        "notifier.notifier_rss_mb",
        memory["VmRSS"],
        "MB",
        when=f"after the latency run at {tag}/s",
        peak_mb=round(memory["VmHWM"], 1),
    )


# ---- the run ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test")
    parser.add_argument("--events", type=int, help="events in the replayed history (100,000)")
    parser.add_argument("--skip-rebuild", action="store_true", help="skip the rebuild runs")
    parser.add_argument("--skip-latency", action="store_true", help="skip the latency run")
    parser.add_argument("--runs", type=int, help="rebuild runs; the median is kept (3)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=REBUILD_BATCH_SIZE,
        help=f"of those runs ({REBUILD_BATCH_SIZE})",
    )
    parser.add_argument(
        "--batch-sizes", help="one run each, to compare (1000,5000,20000; '' to skip)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"rebuild processes (okr_notifier.rebuild's default: {DEFAULT_WORKERS})",
    )
    parser.add_argument("--follows", type=int, help="follows replayed by each rebuild (2,000)")
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument(
        "--profile",
        type=Path,
        nargs="?",
        const=Path(tempfile.gettempdir()) / "bench_notifier_rebuild.txt",
        help="profile one more rebuild with pyinstrument even if the target is met",
    )
    profile.add_argument(
        "--no-profile", action="store_true", help="no profile even if the target is missed"
    )
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="check-ins/s (100)")
    parser.add_argument("--duration", type=float, help="seconds at that rate (20)")
    parser.add_argument("--objectives", type=int, help="followed active objectives (50)")
    parser.add_argument("--members", type=int, default=20, help="members incl. the lead (20)")
    parser.add_argument("--connections", type=int, default=16, help="open-loop connections (16)")
    parser.add_argument("--keep", action="store_true", help="keep topics and the latency schemas")
    parser.add_argument("--seed", type=int, default=20261001)
    parser.add_argument("--output", type=Path, default=bg.DEFAULT_OUTPUT)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "events": 10_000 if quick else 100_000,
        "runs": 1 if quick else 3,
        "batch_sizes": "" if quick else "1000,5000,20000",
        "follows": 200 if quick else 2_000,
        "duration": 5.0 if quick else 20.0,
        "objectives": 10 if quick else 50,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        args.batch_sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--batch-sizes must be integers separated by commas, e.g. 1000,5000")
    if args.runs < 1 or args.batch_size < 1 or any(s < 1 for s in args.batch_sizes):
        parser.error("--runs and batch sizes must be positive")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.rate <= 0 or args.duration <= 0 or args.objectives < 1:
        parser.error("--rate, --duration and --objectives must be positive")
    if args.members < 2:
        parser.error("--members must be at least 2 (a lead and one member)")
    try:
        Shape.for_events(args.events)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"bench_notifier: os.cpu_count() = {CORES}; Python {platform.python_version()}"
        f"{'; quick' if args.quick else ''}"
    )
    pg = bg.Postgres()
    kafka = KafkaSettings(topic_partitions=6)
    problem = bb.check_infrastructure(pg, kafka)
    if problem:
        print(f"bench_notifier: {problem}", file=sys.stderr)
        return 2
    configure_tracing("bench-notifier", TracingSettings(exporter="none"))
    os.environ["PGAPPNAME"] = app_name("bench")  # libpq's default application_name
    common = {"cores": CORES, "quick": args.quick, "run_at": datetime.now(UTC).isoformat()}
    figures = bg.Figures(common)
    work = Path(tempfile.mkdtemp(prefix="bench_notifier_"))
    topics: list[str] = []
    groups: list[str] = []
    began = time.perf_counter()
    try:
        if not args.skip_rebuild:
            bench_rebuild(args, pg, kafka, figures, topics)
        if not args.skip_latency:
            bench_latency(args, pg, kafka, figures, work, topics, groups)
    finally:
        if not args.keep and topics:
            bb.delete_topics(kafka, topics, groups)
        shutil.rmtree(work, ignore_errors=True)
    bg.print_table(figures)
    print_summary(figures, args)
    print(f"bench_notifier: {time.perf_counter() - began:.0f} s")
    if not args.no_write and figures.items:
        bg.write_results(args.output, figures)
        print(f"bench_notifier: wrote {len(figures.items)} figures to {args.output}")
    return 0


def print_summary(figures: bg.Figures, args: argparse.Namespace) -> None:
    rebuild_rate = figures.get("notifier.rebuild_events_per_s")
    if rebuild_rate is not None:
        runs = ", ".join(f"{r['events_per_s']:,}" for r in rebuild_rate.params["all_runs"])
        print(
            f"rebuild ({CORES} cores, {args.workers} worker(s)): median "
            f"{rebuild_rate.value:,.0f} events/s of {args.events:,} (runs: {runs}); target >= "
            f"{TARGET_REBUILD_EVENTS_PER_S:,.0f}"
        )
    tag = f"{args.rate:g}"
    p99 = figures.get(f"notifier.latency_p99_ms_at_{tag}")
    if p99 is not None:
        cells = [figures.get(f"notifier.latency_{q}_ms_at_{tag}") for q in ("p50", "p95")]
        print(
            f"check-in -> notification at {tag}/s ({CORES} cores): p50 {cells[0].value:.1f}, "
            f"p95 {cells[1].value:.1f}, p99 {p99.value:.1f} ms; target p99 <= "
            f"{TARGET_LATENCY_P99_MS:g} ms"
        )
    print()


if __name__ == "__main__":
    sys.exit(main())
