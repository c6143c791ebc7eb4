"""Benchmark of the event backbone: the goals outbox relay, and HTTP -> relay -> Kafka -> ledger.

`make bench` runs `.venv/bin/python bench/bench_backbone.py` after bench_goals.py, with
PostgreSQL and Kafka up. With bench/harness (the goals service as a uvicorn process, seeding,
the open loop, figures) it measures (phases/backbone_relay.py, backbone_ledger.py and
backbone_e2e.py):

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
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness.infrastructure import Postgres, check_infrastructure
from harness.kafka_topics import delete_topics
from harness.machine import CORES, describe, run_params
from harness.results import DEFAULT_OUTPUT, Figures, print_table, write_results
from okr_events.kafka import KafkaSettings
from okr_events.tracing import TracingSettings, configure_tracing
from phases.backbone_e2e import bench_e2e
from phases.backbone_relay import bench_relay


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
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"bench_backbone: {describe()}{'; quick' if args.quick else ''}")
    pg = Postgres()
    kafka = KafkaSettings(topic_partitions=6)
    problem = check_infrastructure(pg, kafka)
    if problem:
        print(f"bench_backbone: {problem}", file=sys.stderr)
        return 2
    # Like the relay and the service processes: spans are made (and carried), not exported.
    configure_tracing("bench-backbone", TracingSettings(exporter="none"))
    figures = Figures(run_params(args.quick))
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
    print_table(figures)
    print_breakdown(figures, args.rates)
    print(f"bench_backbone: {time.perf_counter() - began:.0f} s")
    if not args.no_write and figures.items:
        write_results(args.output, figures)
        print(f"bench_backbone: wrote {len(figures.items)} figures to {args.output}")
    return 0


def print_breakdown(figures: Figures, rates: list[float]) -> None:
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
