"""Benchmark of the goals service's check-in command, and of the eventsourcing library beneath it.

`make bench` runs `.venv/bin/python bench/bench_goals.py` after starting PostgreSQL. For each
store (PostgreSQL, then SQLite) it starts the goals service as its own uvicorn process, seeds an
organisation over HTTP (a department, a lead, members, an active cycle, active objectives with
three key results each) and drives

  POST /objectives/{id}/key-results/{kr_id}/check-ins   {"current": 42.0, "confidence": 3}

from this process over persistent HTTP/1.1 keep-alive connections:

* throughput: a closed loop of --concurrency connections, --warmup then --duration seconds:
  commands/s, p50/p99 latency, errors (any status other than 201);
* latency at a fixed rate (--rate, 200/s): an open loop with scheduled send times, latency
  measured from the scheduled time (no coordinated omission): p50/p99;
* the service's memory (VmRSS, VmHWM) and the CPU it, PostgreSQL and this client spent.

Then, with the services stopped, the raw library: an eventsourcing Application on a fresh
PostgreSQL schema (and on a SQLite file) saving one KRProgressUpdated event per save in a loop.
The ratio API/raw compares the HTTP check-ins/s with the raw saves/s on the same store.

The service phase is phases/goals_api.py, the raw library's phases/goals_raw.py; what the bench
scripts share (processes, seeding, the load, CPU accounting, figures) is bench/harness.

Every figure is printed as a table and merged by name into bench/results/latest.json (a JSON
list of {"name", "value", "unit", "params"}): entries this run writes replace those of the same
name, every other entry is kept.

Usage: bench/bench_goals.py [--quick] [--duration S] [--rate-duration S] [--raw-duration S]
       [--warmup S] [--concurrency N] [--rate R] [--objectives N] [--backends postgres,sqlite]
       [--output PATH | --no-write] [--no-raw] [--profile [PATH]]

--profile runs the service under cProfile instead (bench/profile_service.py: every thread, CPU
time) and prints where the time goes; its figures are distorted and not written.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from harness.infrastructure import Postgres
from harness.machine import CORES, describe, run_params
from harness.results import DEFAULT_OUTPUT, Figures, format_value, print_table, write_results
from phases.goals_api import TARGET_P99_MS, TARGET_RSS_MB, TARGET_THROUGHPUT, bench_backend
from phases.goals_raw import bench_raw


def print_summary(figures: Figures, backends: list[str], args: argparse.Namespace) -> None:
    """The headline figures side by side, one column per store."""

    def row(label: str, names: list[str], target: str = "") -> None:
        cells = []
        for backend in backends:
            values = [figures.get(n.format(b=backend)) for n in names]
            if all(v is None for v in values):
                cells.append("-")
            else:
                cells.append(
                    " / ".join(format_value(v.value, v.unit) if v else "-" for v in values)
                )
        print(f"{label:<44}" + "".join(f"{c:>20}" for c in cells) + f"   {target}")

    print(f"{'summary (' + str(CORES) + ' cores)':<44}" + "".join(f"{b:>20}" for b in backends))
    print("-" * (47 + 20 * len(backends) + 12))
    row(
        f"check-ins/s via HTTP ({args.concurrency} connections)",
        ["goals_api.checkin.{b}.throughput"],
        f">= {TARGET_THROUGHPUT:g} on postgres",
    )
    row(
        "  latency p50 / p99 (ms)",
        ["goals_api.checkin.{b}.throughput.p50", "goals_api.checkin.{b}.throughput.p99"],
    )
    row("  errors (non-201)", ["goals_api.checkin.{b}.throughput.errors"])
    row(
        "  CPU ms per check-in: service / client",
        [
            "goals_api.checkin.{b}.throughput.cpu_service",
            "goals_api.checkin.{b}.throughput.cpu_client",
        ],
    )
    row("  CPU ms per check-in: PostgreSQL", ["goals_api.checkin.{b}.throughput.cpu_postgres"])
    row(
        f"at {args.rate:g}/s: latency p50 / p99 (ms)",
        ["goals_api.checkin.{b}.fixed_rate.p50", "goals_api.checkin.{b}.fixed_rate.p99"],
        f"p99 <= {TARGET_P99_MS:g}",
    )
    row(
        f"at {args.rate:g}/s: achieved / errors",
        ["goals_api.checkin.{b}.fixed_rate.achieved", "goals_api.checkin.{b}.fixed_rate.errors"],
    )
    row(
        "service RSS / peak (MB)",
        ["goals_api.{b}.rss", "goals_api.{b}.rss_peak"],
        f"<= {TARGET_RSS_MB:g}",
    )
    row("raw library single saves/s", ["eventsourcing_raw.{b}.saves"])
    row(
        "  save latency p50 / p99 (ms)",
        ["eventsourcing_raw.{b}.save.p50", "eventsourcing_raw.{b}.save.p99"],
    )
    row("ratio API / raw", ["goals_api.checkin.{b}.api_to_raw_ratio"])
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run, for a smoke test")
    parser.add_argument("--duration", type=float, help="seconds of the throughput run (10)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before it (2)")
    parser.add_argument("--rate-duration", type=float, help="seconds at the fixed rate (10)")
    parser.add_argument("--raw-duration", type=float, help="seconds of raw library saves (5)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (16)")
    parser.add_argument("--rate", type=float, default=200.0, help="fixed rate, check-ins/s (200)")
    parser.add_argument("--rate-connections", type=int, default=32)
    parser.add_argument("--objectives", type=int, default=100, help="active objectives (100)")
    parser.add_argument("--members", type=int, default=20, help="members incl. the lead (20)")
    parser.add_argument("--backends", default="postgres,sqlite", help="postgres,sqlite")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw library runs")
    parser.add_argument("--seed", type=int, default=20261001)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--profile",
        type=Path,
        nargs="?",
        const=Path(tempfile.gettempdir()) / "bench_goals.pstats",
        help="run the service under cProfile (bench/profile_service.py) and write pstats data "
        "to PATH-<backend>; figures are then distorted and not written",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "duration": 2.0 if quick else 10.0,
        "warmup": 0.5 if quick else 2.0,
        "rate_duration": 2.0 if quick else 10.0,
        "raw_duration": 1.0 if quick else 5.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.profile is not None:
        args.no_write = True
        args.profile.parent.mkdir(parents=True, exist_ok=True)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"postgres", "sqlite"}
    if unknown:
        parser.error(f"unknown backends: {sorted(unknown)}")
    if args.members < 2:
        parser.error("--members must be at least 2 (a lead and one member)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"bench_goals: {describe()}; "
        f"backends {', '.join(args.backends)}{'; quick' if args.quick else ''}"
    )
    figures = Figures(run_params(args.quick))
    pg = Postgres()
    if "postgres" in args.backends:
        try:
            psycopg.connect(pg.conninfo(), connect_timeout=5).close()
        except psycopg.OperationalError as error:
            print(
                f"bench_goals: PostgreSQL at {pg.host}:{pg.port} does not answer ({error}); "
                "start it with `make pg` (deploy/local/pg.sh up) or pass --backends sqlite",
                file=sys.stderr,
            )
            return 2
    work = Path(tempfile.mkdtemp(prefix="bench_goals_"))
    began = time.perf_counter()
    api: dict[str, float] = {}
    raw: dict[str, float] = {}
    try:
        for backend in args.backends:
            api[backend] = bench_backend(backend, args, pg, figures, work)
        if not args.no_raw:
            for backend in args.backends:
                raw[backend] = bench_raw(backend, args, pg, figures, work)
        for backend in args.backends:
            if backend in api and raw.get(backend):
                figures.add(
                    f"goals_api.checkin.{backend}.api_to_raw_ratio",
                    api[backend] / raw[backend],
                    "ratio",
                    backend=backend,
                    api_commands_per_s=round(api[backend], 1),
                    raw_saves_per_s=round(raw[backend], 1),
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(figures)
    print_summary(figures, args.backends, args)
    print(f"bench_goals: {time.perf_counter() - began:.0f} s")
    if not args.no_write:
        write_results(args.output, figures)
        print(f"bench_goals: wrote {len(figures.items)} figures to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
