"""One measured rebuild of the notifier, on a fresh PostgreSQL schema: the follows saved through
the notifier's FollowsApplication (not timed), okr_notifier.rebuild.rebuild() timed with the
CPU and memory of this process, of its worker processes and of the PostgreSQL backends serving
them, then the projections counted against the history."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cpu import (
    CpuOf,
    PostgresBackends,
    kafka_broker_pid,
    proc_status_mb,
    reset_peak_rss,
)
from harness.goals_history import History, ObjectiveState
from harness.infrastructure import Postgres, fresh_schema
from harness.profiling import report_profile, start_profiler
from okr_events.kafka import KafkaSettings
from okr_events.replay import ReplayResult
from okr_notifier.application import FollowsApplication
from okr_notifier.domain.follow import Follow
from okr_notifier.rebuild import rebuild
from okr_notifier.service import open_store
from okr_notifier.settings import NotifierSettings
from okr_testkit.notifier import postgres_settings

#: Seconds between two samples of the rebuild's workers and PostgreSQL backends.
#: Seconds between two samples of the rebuild's workers and PostgreSQL backends.
SAMPLE_EVERY = 0.1


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
    before PostgresBackends.end() could see them)."""

    def __init__(self, backends: PostgresBackends) -> None:
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
                    self.peaks[pid] = proc_status_mb(pid)["VmHWM"]
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
    pg: Postgres,
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
        pg.url(), schema, topics=[topic], group_id=f"bench-notifier-rebuild-{schema}"
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
    pg: Postgres,
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
    meter = CpuOf(kafka=kafka_broker_pid())
    backends = PostgresBackends(pg, os.environ.get("PGAPPNAME", ""))  # the workers inherit it
    try:
        rss_before = proc_status_mb(os.getpid())["VmRSS"]
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
    memory = proc_status_mb(os.getpid())
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
