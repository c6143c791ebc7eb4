"""bench_notifier's rebuild phase: a goals history (harness.goals_history) produced to a fresh
topic as the relay encodes it, then okr_notifier.rebuild.rebuild() timed on fresh schemas
(notifier_rebuild_run.py): the median of --runs at the default batch size, one run per
--batch-sizes, and, when the target is missed (or with --profile), one more under pyinstrument."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from harness.cpu import warn_if_noisy
from harness.goals_history import KRS_PER_OBJECTIVE, History, Shape
from harness.infrastructure import Postgres, fresh_schema
from harness.kafka_topics import topic_message_count
from harness.results import Figures
from okr_events import GOALS_SOURCE
from okr_events.codec import encode
from okr_events.kafka import KafkaSettings, ensure_topics

from phases.notifier_rebuild_run import RebuildRun, rebuild_once

TARGET_REBUILD_EVENTS_PER_S = 20_000.0  # this 2-core machine


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


def bench_rebuild(
    args: argparse.Namespace,
    pg: Postgres,
    kafka: KafkaSettings,
    figures: Figures,
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
    on_topic = topic_message_count(kafka, topic)
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
        warn_if_noisy("rebuild", run.cores)
        runs.append(run)
    median = sorted(runs, key=lambda r: r.replay_seconds)[len(runs) // 2]
    add_rebuild_figures(figures, runs, median, params | {"batch_size": args.batch_size})

    sweep = {}
    for size in args.batch_sizes:
        run = rebuild_once(pg, kafka, topic, history, pairs, size, args.workers)
        print_run(f"batch size {size:,}", run)
        warn_if_noisy("rebuild", run.cores)
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
    figures: Figures, runs: list[RebuildRun], median: RebuildRun, params: dict[str, Any]
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
