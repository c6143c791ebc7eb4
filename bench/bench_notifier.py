"""Benchmark of the notifier: rebuilding its projections from Kafka, and check-in -> notification.

`make bench` runs `.venv/bin/python bench/bench_notifier.py` after bench_goals.py and
bench_backbone.py, with PostgreSQL and Kafka up. With bench/harness (the goals service, relay
and processes, seeding, the open loop, CPU accounting, figures) it measures the two targets of
the notifier issue (phases/notifier_rebuild.py with notifier_rebuild_run.py, and
phases/notifier_latency.py with notifier_tables.py):

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
   schemas, topic and consumer group. harness.seeding seeds an organisation (--members, --objectives
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
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness.environments import app_name
from harness.goals_history import Shape
from harness.infrastructure import Postgres, check_infrastructure
from harness.kafka_topics import delete_topics
from harness.machine import CORES, describe, run_params
from harness.results import DEFAULT_OUTPUT, Figures, print_table, write_results
from okr_events.kafka import KafkaSettings
from okr_events.tracing import TracingSettings, configure_tracing
from okr_notifier.rebuild import DEFAULT_BATCH_SIZE, DEFAULT_WORKERS
from phases.notifier_latency import TARGET_LATENCY_P99_MS, TARGET_RATE, bench_latency
from phases.notifier_rebuild import TARGET_REBUILD_EVENTS_PER_S, bench_rebuild

REBUILD_BATCH_SIZE = DEFAULT_BATCH_SIZE  # what `okr-notifier rebuild` uses


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
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
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
    print(f"bench_notifier: {describe()}{'; quick' if args.quick else ''}")
    pg = Postgres()
    kafka = KafkaSettings(topic_partitions=6)
    problem = check_infrastructure(pg, kafka)
    if problem:
        print(f"bench_notifier: {problem}", file=sys.stderr)
        return 2
    configure_tracing("bench-notifier", TracingSettings(exporter="none"))
    os.environ["PGAPPNAME"] = app_name("bench")  # libpq's default application_name
    figures = Figures(run_params(args.quick))
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
            delete_topics(kafka, topics, groups)
        shutil.rmtree(work, ignore_errors=True)
    print_table(figures)
    print_summary(figures, args)
    print(f"bench_notifier: {time.perf_counter() - began:.0f} s")
    if not args.no_write and figures.items:
        write_results(args.output, figures)
        print(f"bench_notifier: wrote {len(figures.items)} figures to {args.output}")
    return 0


def print_summary(figures: Figures, args: argparse.Namespace) -> None:
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
