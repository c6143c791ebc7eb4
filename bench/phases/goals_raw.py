"""bench_goals' raw library phase: an eventsourcing Application on a fresh PostgreSQL schema
(or a SQLite file) saving one KRProgressUpdated event per save in a loop, with the services
stopped; the goals API's check-ins/s are compared with these saves/s on the same store."""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from harness.cpu import other_user_cpu
from harness.infrastructure import Postgres, unique_schema
from harness.results import Figures
from harness.stats import percentile


class KRProgress(Aggregate):
    """One per objective, like the goals Objective, with only the check-in event."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.key_results: dict[str, dict[str, Any]] = {}

    @event("KRProgressUpdated")
    def update(self, kr_id: str, current: float, confidence: int) -> None:
        self.key_results[kr_id] = {"current": current, "confidence": confidence}


class RawApplication(Application[Any]):
    name = "bench_raw"


@dataclass
class RawResult:
    saves: int
    seconds: float
    latencies: list[float]
    other_cores_busy: float = 0.0  # user-mode CPU of other processes meanwhile

    @property
    def rate(self) -> float:
        return self.saves / self.seconds


def raw_saves(env: dict[str, str], aggregates: int, duration: float, seed_: int) -> RawResult:
    """Single saves of one KRProgressUpdated event each, in a loop, for `duration` seconds."""
    app = RawApplication(env=env | {"IS_SNAPSHOTTING_ENABLED": "n"})
    try:
        rnd = random.Random(seed_)
        objectives = [KRProgress(title=f"Objective {n}") for n in range(aggregates)]
        app.save(*objectives)
        kr_ids = [f"kr{k}" for k in range(3)]
        for objective in objectives[:50]:  # warm the connection and the statement cache
            objective.update(kr_id="kr0", current=1.0, confidence=3)
            app.save(objective)
        latencies = []
        other_before = other_user_cpu()
        began = time.perf_counter()
        end = began + duration
        now = began
        while now < end:
            objective = rnd.choice(objectives)
            objective.update(
                kr_id=rnd.choice(kr_ids),
                current=round(rnd.uniform(0, 100), 1),
                confidence=rnd.randint(1, 5),
            )
            app.save(objective)
            done = time.perf_counter()
            latencies.append(done - now)
            now = done
        other = max(0.0, other_user_cpu() - other_before) / (now - began)
        return RawResult(len(latencies), now - began, latencies, other_cores_busy=other)
    finally:
        app.close()


def bench_raw(
    backend: str, args: argparse.Namespace, pg: Postgres, figures: Figures, work: Path
) -> float:
    if backend == "postgres":
        schema = unique_schema("bench_raw")
        pg.create_schema(schema)
        env = pg.library_env(schema)
    else:
        schema = None
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(work / "raw.sqlite3"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    print(f"[raw {backend}] single saves for {args.raw_duration:g} s ...")
    try:
        result = raw_saves(env, args.objectives, args.raw_duration, args.seed)
    finally:
        if schema is not None:
            pg.drop_schema(schema)
    params = {
        "backend": backend,
        "duration_s": args.raw_duration,
        "aggregates": args.objectives,
        "events_per_save": 1,
        "library": f"eventsourcing {metadata.version('eventsourcing')}",
        "other_processes_cores_busy": round(result.other_cores_busy, 2),
    }
    prefix = f"eventsourcing_raw.{backend}"
    figures.add(f"{prefix}.saves", result.rate, "saves/s", **params)
    figures.add(f"{prefix}.save.p50", percentile(result.latencies, 50) * 1000, "ms", **params)
    figures.add(f"{prefix}.save.p99", percentile(result.latencies, 99) * 1000, "ms", **params)
    return result.rate
