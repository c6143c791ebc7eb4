"""Benchmark of the consumer runtime: the ledger applying N events already on Kafka.

`.venv/bin/python bench/bench_consumer.py`, with PostgreSQL and Kafka up. It produces --events
(100,000) real goals events (harness.goals_backlog: objectives created with three key
results, activated, then checked in; each request's events with their own traceparent, as the
relay publishes them) to a fresh 6-partition topic, then measures, each on a fresh PostgreSQL
schema, in this process:

1. per event: `KafkaConsumerRunner(batch_size=1)`, one transaction per event (the runtime
   before batching), for --per-event-seconds (10) after its first apply;
2. batched: `KafkaConsumerRunner(batch_size=--batch-size)` (500), the live consumer on a
   backlog, from its first apply until all N are applied;
3. replay: `replay(Ledger(), ..., batch_size=--replay-batch-size)` (5,000): a rebuild from
   offset 0, timed by the call (start-up included);
4. the same replay with a handler that writes nothing: the runtime's own ceiling (decode,
   dedupe, positions), i.e. what is left for a handler's writes.

Each prints events/s, CPU per event of this process and of PostgreSQL, and the cores busy;
figures (names consumer.*) are merged by name into bench/results/latest.json. All share this
machine's cores (os.cpu_count() is printed and kept with each figure).

--legacy measures only 1 and 2 (2 for --per-event-seconds too) and imports nothing new: run it
with PYTHONPATH pointing at an older okr_events for a before/after.

Usage: bench/bench_consumer.py [--events N] [--per-event-seconds S] [--batch-size N]
       [--replay-batch-size N] [--legacy] [--output PATH | --no-write] [--keep]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from harness.cpu import CpuOf, kafka_broker_pid, warn_if_noisy
from harness.goals_backlog import backlog_events
from harness.infrastructure import Postgres, check_infrastructure, unique_schema
from harness.kafka_topics import delete_topics
from harness.machine import describe, run_params
from harness.results import DEFAULT_OUTPUT, Figures, print_table, write_results
from okr_events import GOALS_SOURCE
from okr_events.codec import InboundEvent, encode
from okr_events.consuming import ConsumerStore, Tx, open_consumer_store
from okr_events.kafka import KafkaSettings, ensure_topics
from okr_events.kafka_consumer import KafkaConsumerRunner
from okr_events.ledger import Ledger
from okr_events.tracing import TRACE_CONTEXT_KEY, TracingSettings, configure_tracing
from okr_goals.contracts import to_contract

TARGET_REBUILD_EVENTS_PER_S = 20_000.0  # the notifier's rebuild (issue 4), this 2-core machine


def produce_backlog(kafka: KafkaSettings, topic: str, total: int, seed: int) -> float:
    """`total` goals events on `topic`, keyed and encoded as the relay does; seconds taken."""
    producer = Producer(kafka.producer(f"bench-consumer-{uuid.uuid4().hex[:6]}"))
    began = time.perf_counter()
    sent = 0
    for events in backlog_events(total, seed, traced=True):
        for domain_event in events:
            carrier = domain_event.__dict__.get(TRACE_CONTEXT_KEY) or {}
            headers = [(k, v.encode()) for k, v in carrier.items()]
            message = encode(
                to_contract(domain_event), topic=topic, source=GOALS_SOURCE, extra_headers=headers
            )
            while True:
                try:
                    producer.produce(
                        topic, key=message.key, value=message.value, headers=message.headers
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.05)
            sent += 1
            if sent % 5_000 == 0:
                producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("the backlog was not fully delivered")
    return time.perf_counter() - began


class WritesNothing:
    """A handler with nothing to write: what the runtime alone costs."""

    name = "bench-nothing"
    create_statements: tuple[str, ...] = ()

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        pass

    def handle_batch(self, events: Sequence[InboundEvent], tx: Tx) -> None:
        pass


def fresh_store(pg: Postgres, schema: str) -> ConsumerStore:
    return open_consumer_store("ledger", postgres_conninfo=pg.conninfo(), schema=schema)


def run_live(
    pg: Postgres,
    kafka: KafkaSettings,
    topic: str,
    schema: str,
    batch_size: int,
    total: int,
    seconds: float | None,
) -> tuple[int, float, dict[str, float]]:
    """A live consumer from its first apply until `total` are applied (or `seconds` passed):
    (events applied in that time, seconds, cores busy)."""
    store = fresh_store(pg, schema)
    runner = KafkaConsumerRunner(
        Ledger(),
        store,
        topics=[topic],
        settings=kafka,
        group_id=f"bench-{schema}",
        batch_size=batch_size,
    )
    thread = threading.Thread(target=runner.run, name="bench-consumer", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while runner.processor.applied == 0:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the consumer applied nothing: {runner.error}")
            time.sleep(0.002)
        meter = CpuOf(kafka=kafka_broker_pid())
        meter.begin()
        first = runner.processor.applied
        began = time.perf_counter()
        end = began + (seconds if seconds is not None else 600)
        while runner.processor.applied < total and time.perf_counter() < end:
            if not thread.is_alive():
                raise RuntimeError(f"the consumer stopped: {runner.error}")
            time.sleep(0.005)
        elapsed = time.perf_counter() - began
        applied = runner.processor.applied - first
        cores = meter.end()
    finally:
        runner.stop()
        thread.join(30)
        store.datastore.close()  # type: ignore[attr-defined]
    return applied, elapsed, cores


def run_replay(
    pg: Postgres, kafka: KafkaSettings, topic: str, schema: str, handler: Any, batch_size: int
) -> tuple[Any, dict[str, float]]:
    from okr_events.replay import replay  # not in --legacy runs

    store = fresh_store(pg, schema)
    meter = CpuOf(kafka=kafka_broker_pid())
    meter.begin()
    try:
        result = replay(handler, store, [topic], kafka, batch_size=batch_size)
    finally:
        cores = meter.end()
        store.datastore.close()  # type: ignore[attr-defined]
    return result, cores


def report(
    figures: Figures,
    name: str,
    label: str,
    events: int,
    seconds: float,
    cores: dict[str, float],
    target: tuple[str, float] | None = None,
    **params: Any,
) -> None:
    rate = events / seconds if seconds > 0 else float("nan")
    bench_us = cores.get("bench", 0.0) * seconds * 1e6 / events if events else float("nan")
    pg_us = cores.get("postgres", 0.0) * seconds * 1e6 / events if events else float("nan")
    warn_if_noisy(name, cores)
    print(
        f"[{name}] {label}: {events:,} events in {seconds:.2f} s = {rate:,.0f}/s; CPU per "
        f"event: consumer {bench_us:.0f} us, PostgreSQL {pg_us:.0f} us; cores {cores}"
    )
    common = {"events": events, "seconds": round(seconds, 3), "cores_busy": cores, **params}
    figures.add(f"consumer.{name}_events_per_s", rate, "events/s", target, **common)
    figures.add(f"consumer.{name}_cpu_us_per_event", bench_us, "us/event", **common)
    figures.add(f"consumer.{name}_postgres_cpu_us_per_event", pg_us, "us/event", **common)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events on the topic")
    parser.add_argument("--per-event-seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=500, help="live consumer's batches")
    parser.add_argument("--replay-batch-size", type=int, default=5_000)
    parser.add_argument("--legacy", action="store_true", help="live consumer runs only")
    parser.add_argument("--keep", action="store_true", help="keep the bench's topic")
    parser.add_argument("--seed", type=int, default=20261001)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"bench_consumer: {describe()}")
    pg = Postgres()
    kafka = KafkaSettings(topic_partitions=6)
    problem = check_infrastructure(pg, kafka)
    if problem:
        print(f"bench_consumer: {problem}", file=sys.stderr)
        return 2
    # Like the ledger process: spans are made (and carried), not exported.
    configure_tracing("bench-consumer", TracingSettings(exporter="none"))
    stamp = unique_schema("bench_consumer")
    topic = f"bench.{stamp}.goals.events"
    figures = Figures(run_params(partitions=6))
    schemas: list[str] = []
    groups: list[str] = []

    def schema(name: str) -> str:
        schemas.append(f"{stamp}_{name}")
        groups.append(f"bench-{stamp}_{name}")
        return schemas[-1]

    try:
        ensure_topics(kafka, [topic])
        seconds = produce_backlog(kafka, topic, args.events, args.seed)
        print(f"[produce] {args.events:,} events in {seconds:.1f} s")
        n = args.events
        applied, seconds, cores = run_live(
            pg, kafka, topic, schema("per_event"), 1, n, args.per_event_seconds
        )
        report(
            figures, "per_event", "one transaction per event", applied, seconds, cores, batch_size=1
        )
        # The old runtime needs minutes for the backlog: give it the per-event time instead.
        cap = args.per_event_seconds if args.legacy else None
        applied, seconds, cores = run_live(
            pg, kafka, topic, schema("batched"), args.batch_size, n, cap
        )
        report(
            figures,
            "batched",
            f"live consumer, batches of up to {args.batch_size}",
            applied,
            seconds,
            cores,
            batch_size=args.batch_size,
        )
        if not args.legacy:
            for name, handler in (("replay", Ledger()), ("replay_runtime", WritesNothing())):
                result, cores = run_replay(
                    pg, kafka, topic, schema(name), handler, args.replay_batch_size
                )
                if result.applied != n:
                    print(f"[{name}] warning: applied {result.applied} of {n}", file=sys.stderr)
                target = (">=", TARGET_REBUILD_EVENTS_PER_S) if name == "replay" else None
                report(
                    figures,
                    name,
                    f"replay({type(handler).__name__})",
                    result.events,
                    result.seconds,
                    cores,
                    target,
                    batch_size=args.replay_batch_size,
                )
    finally:
        for each in schemas:
            pg.drop_schema(each)
        if not args.keep:
            delete_topics(kafka, [topic], groups)
    print_table(figures)
    if not args.no_write and figures.items:
        write_results(args.output, figures)
        print(f"bench_consumer: wrote {len(figures.items)} figures to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
