"""bench_goals' service phase, on one store: the goals service as its own uvicorn process,
seeded over HTTP, then the check-in command in a closed loop (throughput, latency, CPU per
check-in) and in an open loop at a fixed rate (latency), and the service's memory."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from harness.cpu import CpuMeter, proc_status_mb
from harness.environments import JWT_SECRET
from harness.http_load import LoadResult, closed_loop, open_loop, report_errors
from harness.infrastructure import Postgres, unique_schema
from harness.machine import CORES
from harness.processes import Service
from harness.results import Figures
from harness.seeding import CheckIns, seed, wait_settled

# Targets of the issue (this 2-core machine).
TARGET_THROUGHPUT = 1000.0  # check-ins/s through HTTP on PostgreSQL
TARGET_P99_MS = 50.0  # p99 at the fixed rate
TARGET_RSS_MB = 150.0  # goals service resident memory


def bench_backend(
    backend: str, args: argparse.Namespace, pg: Postgres, figures: Figures, work: Path
) -> float:
    """Start the service on one store, seed, measure; returns the API check-ins/s."""
    env = {"GOALS_PERSISTENCE": backend, "GOALS_JWT_SECRET": JWT_SECRET}
    schema = None
    if backend == "postgres":
        schema = unique_schema("bench")
        env |= {
            "GOALS_POSTGRES_HOST": pg.host,
            "GOALS_POSTGRES_PORT": str(pg.port),
            "GOALS_POSTGRES_DBNAME": pg.dbname,
            "GOALS_POSTGRES_USER": pg.user,
            "GOALS_POSTGRES_PASSWORD": pg.password,
            "GOALS_POSTGRES_SCHEMA": schema,
        }
    else:
        env["GOALS_DATA_DIR"] = str(work / "goals-sqlite")
    service = Service(env, work / f"service-{backend}.log", profile=profile_path(args, backend))
    prefix = f"goals_api.checkin.{backend}"
    try:
        service.wait_ready()
        started = time.perf_counter()
        seeded = seed(service, args.objectives, args.members)
        print(
            f"[{backend}] service pid {service.pid} on port {service.port}; seeded "
            f"{len(seeded.targets)} objectives x 3 KRs in {time.perf_counter() - started:.1f} s"
        )
        meter = CpuMeter(service.pid)
        checkins = CheckIns(seeded.targets, "127.0.0.1", service.port, args.seed)

        print(
            f"[{backend}] throughput: {args.concurrency} connections, {args.warmup:g} s warm-up "
            f"+ {args.duration:g} s ..."
        )
        load = asyncio.run(
            closed_loop(checkins, args.concurrency, args.warmup, args.duration, meter)
        )
        report_errors(backend, "throughput", load)
        warn_if_disturbed(backend, "throughput", load)
        catch_up = wait_settled(service, seeded)
        loop_params = {
            "backend": backend,
            "concurrency": args.concurrency,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "objectives": args.objectives,
            "key_results_per_objective": 3,
            "other_processes_cores_busy": round(load.cpu["other"] / load.seconds, 2),
        }
        figures.add(
            f"{prefix}.throughput",
            load.rate,
            "commands/s",
            (">=", TARGET_THROUGHPUT) if backend == "postgres" else None,
            **loop_params,
        )
        figures.add(f"{prefix}.throughput.p50", load.percentile_ms(50), "ms", **loop_params)
        figures.add(f"{prefix}.throughput.p99", load.percentile_ms(99), "ms", **loop_params)
        figures.add(
            f"{prefix}.throughput.errors",
            load.errors,
            "count",
            **loop_params,
            statuses={str(k): v for k, v in sorted(load.statuses.items())},
        )
        for who in ("service", "postgres", "client"):
            if who == "postgres" and backend != "postgres":
                continue
            figures.add(
                f"{prefix}.throughput.cpu_{who}",
                load.cpu[who] * 1000 / max(1, load.completed),
                "ms/command",
                **loop_params,
                cores_busy=round(load.cpu[who] / load.seconds, 2),
            )
        figures.add(
            f"{prefix}.views_catch_up",
            catch_up,
            "s",
            **loop_params,
            note="after the throughput run, until a list query saw every check-in",
        )

        print(f"[{backend}] fixed rate: {args.rate:g}/s for {args.rate_duration:g} s ...")
        fixed = asyncio.run(
            open_loop(checkins, args.rate, 1.0, args.rate_duration, args.rate_connections, meter)
        )
        report_errors(backend, "fixed rate", fixed)
        warn_if_disturbed(backend, "fixed rate", fixed)
        wait_settled(service, seeded)
        rate_params = {
            "backend": backend,
            "rate_per_s": args.rate,
            "duration_s": args.rate_duration,
            "connections": args.rate_connections,
            "objectives": args.objectives,
            "other_processes_cores_busy": round(fixed.cpu["other"] / fixed.seconds, 2),
        }
        figures.add(f"{prefix}.fixed_rate.p50", fixed.percentile_ms(50), "ms", **rate_params)
        figures.add(
            f"{prefix}.fixed_rate.p99",
            fixed.percentile_ms(99),
            "ms",
            ("<=", TARGET_P99_MS),
            **rate_params,
        )
        figures.add(f"{prefix}.fixed_rate.achieved", fixed.rate, "commands/s", **rate_params)
        figures.add(
            f"{prefix}.fixed_rate.errors",
            fixed.errors,
            "count",
            **rate_params,
            statuses={str(k): v for k, v in sorted(fixed.statuses.items())},
        )
        figures.add(
            f"{prefix}.fixed_rate.cpu_service",
            fixed.cpu["service"] * 1000 / max(1, fixed.completed),
            "ms/command",
            **rate_params,
            cores_busy=round(fixed.cpu["service"] / fixed.seconds, 2),
        )

        memory = proc_status_mb(service.pid)
        mem_params = {"backend": backend, "when": "after the throughput and fixed-rate runs"}
        figures.add(
            f"goals_api.{backend}.rss",
            memory["VmRSS"],
            "MB",
            ("<=", TARGET_RSS_MB),
            **mem_params,
        )
        figures.add(
            f"goals_api.{backend}.rss_peak",
            memory["VmHWM"],
            "MB",
            ("<=", TARGET_RSS_MB),
            **mem_params,
        )
        return load.rate
    except BaseException:
        print(f"[{backend}] service log (tail):\n{service.log_tail()}", file=sys.stderr)
        raise
    finally:
        service.stop()
        if schema is not None:
            pg.drop_schema(schema)
        if service.profile is not None:
            show_profile(backend, service.profile)


def profile_path(args: argparse.Namespace, backend: str) -> Path | None:
    if args.profile is None:
        return None
    return args.profile.with_name(f"{args.profile.stem}-{backend}{args.profile.suffix}")


def show_profile(backend: str, path: Path) -> None:
    text = Path(f"{path}.txt")
    if not text.exists():
        print(f"[{backend}] no profile was written (see the service log)", file=sys.stderr)
        return
    print(f"[{backend}] cProfile of the service, every thread ({path}, report {text}):")
    print(text.read_text())


def warn_if_disturbed(backend: str, phase: str, load: LoadResult) -> None:
    """Warn when other processes kept more than a fifth of a core busy during the load."""
    busy = load.cpu["other"] / load.seconds
    if busy > 0.2:
        print(
            f"[{backend}] {phase}: warning: other processes kept {busy:.1f} of {CORES} cores "
            "busy meanwhile; the figures are disturbed",
            file=sys.stderr,
        )
