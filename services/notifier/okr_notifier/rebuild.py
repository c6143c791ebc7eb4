"""`okr-notifier rebuild`: drop the projections and replay every topic from offset 0.

The projections (schema.PROJECTION_TABLES: the replica of goals' facts, okr_platform.replica,
and the notifier's progress history and follows) are derived from events only, so they can
always be rebuilt: after a bug fix in a projection, or to check that the live state is what the
history says (the e2e test compares them). The rules stay silent during a rebuild: replaying
history must not tell anyone again, and the notifications themselves are kept.

Stop the notifier first: the rebuild refuses while its consumer group has live members.

Parallel replay. One process cannot replay fast enough (decoding alone costs ~36 us of CPU per
event), so on PostgreSQL the consumed topics are replayed by ``workers`` processes
(DEFAULT_WORKERS: the cores, at most 4), worker k taking the partitions p with
p % workers == k of every topic (a *share* of okr_events.replay), each with its own
connection, into the same schema. The notifier's own follow events are replayed first, in the
calling process. Why the shares can be applied independently, in any interleaving:

* every applier of projection.NotifierProjection (the replica's, whose invariant heads
  okr_platform/replica/__init__.py, and the notifier's own) reads and writes only rows of the
  event's own aggregate (an organisation's directory and settings, a cycle, an objective with
  its key results and progress history, a follow);
* an aggregate's id is its events' Kafka key, so all its events are in one partition, in
  order, and so in one worker;
* the rules, the only code that reads across aggregates (an objective's cycle, organisation,
  followers, directory), are off during a rebuild (``rules_enabled=False``);
* positions (tracking rows) are per partition and applied versions per aggregate, so no two
  workers write the same row, and each commits its positions with its writes, as a single
  replay does;
* the workers run no DDL (the calling process has created every table), which would lock
  tables the others write: no lock waits, no deadlocks.

An applier that reads another aggregate's rows (say, an objective's cycle dates), or rules
that run during a rebuild, breaks this invariant: such a change must make the rebuild one
process (``workers=1``). On SQLite (the embedded default) it always is: one writer.

The workers are started ("spawn": a fresh interpreter, no inherited threads or connections)
before the drop, so their start-up (~0.8 s of imports) overlaps the drop and the follows'
replay; they read only once those are done. More workers than partitions is harmless: the
extra ones have nothing to read."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import TracebackType
from typing import Any

from okr_events import NOTIFIER_SOURCE, NOTIFIER_TOPIC
from okr_events.consuming import ConsumerStore
from okr_events.in_process import InProcessRunner
from okr_events.kafka import KafkaSettings
from okr_events.mapping import contract_mapper
from okr_events.replay import PROGRESS_EVERY, ReplayResult, replay

from . import schema
from .application import FollowsApplication
from .projection import NotifierProjection
from .service import open_store
from .settings import NotifierSettings

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

#: Replay processes on PostgreSQL (`okr-notifier rebuild --workers`): one per core, up to 4
#: (beyond that PostgreSQL, on the same cores here, is the limit).
DEFAULT_WORKERS = min(os.cpu_count() or 1, 4)

#: Events per transaction. Measured with bench/bench_notifier.py (100,000 events, 2 workers,
#: 2 cores, 11-12 runs each): 20,000 replays a median 20,200 events/s (18,100-23,900), 5,000
#: only 17,900 (16,800-19,900). Each batch pays fixed costs (its transaction, the applied
#: versions' query, a statement per table), and a bigger one coalesces more updates of the
#: same KR and objective. The price is memory (a batch applied, two read ahead): a worker
#: peaks at ~470 MB instead of ~260 MB.
DEFAULT_BATCH_SIZE = 20_000


class NotifierRunning(RuntimeError):
    """The live notifier still consumes: a rebuild under it would race with it."""


class RebuildWorkerFailed(RuntimeError):
    """A worker process of a parallel rebuild failed; the message holds its traceback."""


def check_group_idle(kafka: KafkaSettings, group_id: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(kafka.common())
    future = admin.describe_consumer_groups([group_id])[group_id]
    description = future.result(timeout=10)
    if description.members:
        raise NotifierRunning(
            f"consumer group {group_id!r} has {len(description.members)} live member(s): "
            "stop the notifier before rebuilding"
        )


def drop_projections(store: ConsumerStore) -> None:
    """Forget the projections, the applied versions and every stored position.

    The tracking table's migration marker (the eventsourcing library's ``__migration__`` row)
    stays: without it the next store opened on the schema (a rebuild's worker, the restarted
    notifier) "migrates" the table, renaming it to ``bkup1_...``, which fails the second time
    and races between workers."""
    # PostgreSQL's recorder names its tracking table; SQLite's is always "tracking".
    table = getattr(store, "tracking_table_name", "tracking")
    marker = getattr(store, "table_migration_identifier", "__migration__")
    with store.transaction() as tx:
        for statement in schema.drop_projections():
            tx.execute(statement)
        tx.execute("DELETE FROM consumer_applied_versions")
        tx.execute(f"DELETE FROM {table} WHERE application_name <> :marker", {"marker": marker})
    store.forget_positions()


def rebuild(
    settings: NotifierSettings,
    store: ConsumerStore,
    follows: FollowsApplication,
    kafka: KafkaSettings,
    *,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = DEFAULT_WORKERS,
) -> ReplayResult:
    """Drop, then replay the notifier's own follow events and every consumed topic: in this
    process, or split by partition over ``workers`` processes on PostgreSQL (see the module
    docstring). ``progress(done, total)`` is of the topics' replay; the result too (its
    seconds: from the end of the follows' replay to the last worker's end)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    dialect: schema.Dialect = "sqlite" if settings.embedded else "postgres"
    if workers == 1 or dialect == "sqlite":
        projection = _reset(store, follows, dialect)
        return replay(
            projection, store, settings.topics, kafka, batch_size=batch_size, progress=progress
        )
    with _Workers(settings, kafka, workers, batch_size) as pool:  # leaving it stops them
        _reset(store, follows, dialect)
        return pool.replay(progress)


def _reset(
    store: ConsumerStore, follows: FollowsApplication, dialect: schema.Dialect
) -> NotifierProjection:
    """Drop the projections and replay the follows' log into them (its processor creates the
    tables again); the projection, for the topics."""
    store.setup(schema.statements(dialect))  # a first rebuild on an empty store
    drop_projections(store)
    projection = NotifierProjection(dialect, rules_enabled=False)
    own = InProcessRunner(
        projection,
        store,
        follows,
        to_contract=contract_mapper("okr.notifier."),
        topic=NOTIFIER_TOPIC,
        source=NOTIFIER_SOURCE,
    )
    own.start_thread("rebuild-follows")
    last = follows.recorder.max_notification_id()
    try:
        while not own.wait_until_applied(last, timeout=1.0):
            if own.error is not None:
                raise own.error
    finally:
        own.stop()
        if own._thread is not None:
            own._thread.join(10)
    return projection


# ---- the parallel replay ------------------------------------------------------------------------


class _Workers:
    """The processes of one parallel replay, started on entering and waiting for replay();
    leaving stops those still running (after an error: before the caller sees it)."""

    def __init__(
        self, settings: NotifierSettings, kafka: KafkaSettings, workers: int, batch_size: int
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.reports: Any = context.Queue()  # (kind, worker, ...) tuples, see _work
        self.go = context.Event()
        self.processes: list[BaseProcess] = [
            context.Process(
                target=_work,
                args=(settings, kafka, (k, workers), batch_size, self.reports, self.go),
                name=f"okr-notifier-rebuild-{k}",
                daemon=True,  # never outlive the rebuild
            )
            for k in range(workers)
        ]

    def __enter__(self) -> _Workers:
        try:
            for process in self.processes:
                process.start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop(grace=10.0 if error is None else 0.0)

    def replay(self, progress: Progress | None) -> ReplayResult:
        """Let the workers read; their results summed (seconds: the wall time from here)."""
        began = time.perf_counter()
        self.go.set()
        results = self._collect(progress)
        return ReplayResult(
            applied=sum(r.applied for r in results),
            duplicates=sum(r.duplicates for r in results),
            dead_lettered=sum(r.dead_lettered for r in results),
            events=sum(r.events for r in results),
            seconds=time.perf_counter() - began,
        )

    def _collect(self, progress: Progress | None) -> list[ReplayResult]:
        """Every worker's result; their progress summed on the way (once all have said their
        totals); a worker's failure raised as RebuildWorkerFailed."""
        n = len(self.processes)
        counts: dict[int, tuple[int, int]] = {}
        results: dict[int, ReplayResult] = {}
        reported = 0.0
        while len(results) < n:
            kind, k, *rest = self._next(results)
            if kind == "failed":
                raise RebuildWorkerFailed(f"rebuild worker {k} of {n} failed:\n{rest[0]}")
            if kind == "progress":
                counts[k] = (rest[0], rest[1])
            elif kind == "done":
                results[k] = rest[0]
            due = time.monotonic() - reported >= PROGRESS_EVERY
            if progress is not None and len(counts) == n and due:
                progress(*_summed(counts))
                reported = time.monotonic()
        if progress is not None:
            progress(*_summed(counts))
        return [results[k] for k in range(n)]

    def _next(self, results: dict[int, ReplayResult]) -> tuple[Any, ...]:
        """The next report; raises if a worker died without a word (killed, crashed)."""
        while True:
            try:
                return tuple(self.reports.get(timeout=0.5))
            except queue.Empty:
                pass
            dead = [
                (k, p.exitcode)
                for k, p in enumerate(self.processes)
                if p.exitcode is not None and k not in results
            ]
            if dead:
                try:  # what it said just before it exited (flushed to the pipe by then)
                    return tuple(self.reports.get_nowait())
                except queue.Empty:
                    k, code = dead[0]
                    raise RebuildWorkerFailed(
                        f"rebuild worker {k} of {len(self.processes)} exited with code {code} "
                        "without a result"
                    ) from None

    def _stop(self, grace: float = 0.0) -> None:
        for process in self.processes:
            if process.is_alive() and grace:
                process.join(grace)  # it sent its result; it closes its clients
            if process.is_alive():
                process.terminate()  # its open transaction is rolled back
        for process in self.processes:
            if process.pid is not None:
                process.join()
        self.reports.close()
        self.reports.join_thread()


def _summed(counts: dict[int, tuple[int, int]]) -> tuple[int, int]:
    return sum(done for done, _ in counts.values()), sum(total for _, total in counts.values())


def _work(
    settings: NotifierSettings,
    kafka: KafkaSettings,
    share: tuple[int, int],
    batch_size: int,
    reports: Any,
    go: Event,
) -> None:
    """A worker process: once `go` is set, replay one share of the topics through a store of
    its own; report progress, then the result or the traceback, on `reports`."""
    k = share[0]
    try:
        store = open_store(settings)
        try:
            if not _wait_for(go):
                return  # the parent is gone
            projection = NotifierProjection("postgres", rules_enabled=False)
            # The parent created the tables: DDL here (CREATE INDEX IF NOT EXISTS locks the
            # table) could deadlock with another worker's writes.
            projection.create_statements = ()
            result = replay(
                projection,
                store,
                settings.topics,
                kafka,
                batch_size=batch_size,
                share=share,
                progress=lambda done, total: reports.put(("progress", k, done, total)),
            )
        finally:
            store.datastore.close()  # type: ignore[attr-defined]
        reports.put(("done", k, result))
    except BaseException:
        reports.put(("failed", k, traceback.format_exc()))


def _wait_for(go: Event) -> bool:
    """Wait until `go` is set (True), or the parent process has gone (False)."""
    parent = multiprocessing.parent_process()
    while not go.wait(1.0):
        if parent is not None and not parent.is_alive():
            return False
    return True


# ---- checks -------------------------------------------------------------------------------------


def snapshot(store: ConsumerStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows, sorted: equal snapshots mean equal projections."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for table in schema.PROJECTION_TABLES:
        rows = store.query(f"SELECT * FROM {table}")
        tables[table] = sorted(
            tuple(json.dumps(value, sort_keys=True, default=str) for value in dict(row).values())
            for row in rows
        )
    return tables
