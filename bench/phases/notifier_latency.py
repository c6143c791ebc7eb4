"""bench_notifier's latency phase: from a check-in accepted by goals to the follower's
notification. The goals service, the goals relay and the notifier (scheduler off) run as
processes on fresh schemas, topic and consumer group; the lead follows every seeded objective;
owners check in open loop at --rate; each accepted check-in's notification gives its latency
(raised_at - accepted), split by the Kafka message's CreateTime."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from harness.cpu import (
    CpuOf,
    PostgresBackends,
    kafka_broker_pid,
    proc_status_mb,
    process_cpu,
    warn_if_noisy,
)
from harness.environments import app_name, notifier_env, process_env, relay_env
from harness.http_load import AcceptedRecorder, open_loop, report_errors
from harness.infrastructure import Postgres, fresh_schema
from harness.kafka_topics import high_watermarks, produce_times
from harness.processes import NOTIFIER_APP, Child, Service
from harness.results import Figures
from harness.seeding import RotatingCheckIns, Seeded, Target, seed, token
from harness.stats import ms_stats, percentile
from okr_events import stable_event_id
from okr_events.kafka import KafkaSettings, ensure_topics

from phases.notifier_tables import NotifierTables, wait_caught_up, wait_notified

# Targets of the notifier issue (this 2-core machine).
TARGET_LATENCY_P99_MS = 250.0  # at 100 check-ins/s
TARGET_RATE = 100.0
# The goals service's pool (and as many overflow connections) in the latency phase: 100
# check-ins/s need a few; its default of 10 + 10 crowds a PostgreSQL shared with other work.
GOALS_POOL_SIZE = 5


def warn_if_few_connections(pg: Postgres, needed: int = 40) -> None:
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
    notifier: Service, targets: list[Target], token: str, timeout: float = 120.0
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
    stats = ms_stats(values)
    stats["p95"] = percentile(values, 95) * 1000
    return stats


def bench_latency(
    args: argparse.Namespace,
    pg: Postgres,
    kafka: KafkaSettings,
    figures: Figures,
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
    goals_env = process_env(pg, kafka, goals_schema, topic) | {
        "GOALS_POSTGRES_POOL_SIZE": str(GOALS_POOL_SIZE),
        "PGAPPNAME": app_name("goals"),
    }
    service = Service(goals_env, work / "goals.log")
    relay = notifier = None
    tables: NotifierTables | None = None
    try:
        service.wait_ready()
        relay_vars = relay_env(pg, kafka, goals_schema, topic)
        relay = Child(
            "okr_goals.relay", relay_vars | {"PGAPPNAME": app_name("relay")}, work / "relay.log"
        )
        notifier = Service(
            notifier_env(pg, kafka, notifier_schema, topic, group),
            work / "notifier.log",
            app=NOTIFIER_APP,
            what="the notifier",
        )
        notifier.wait_ready()
        children: list[tuple[Any, str]] = [(relay, "the relay"), (notifier, "the notifier")]
        started = time.perf_counter()
        seeded = seed(service, args.objectives, args.members)
        follower = "lead"  # the members' manager; owns no objective, sees them all
        following = follow_all(notifier, seeded.targets, token(follower, []))
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
    pg: Postgres,
    service: Service,
    relay: Child,
    notifier: Service,
    seeded: Seeded,
    tables: NotifierTables,
    kafka: KafkaSettings,
    topic: str,
    figures: Figures,
) -> None:
    rate, tag = args.rate, f"{args.rate:g}"
    print(f"[latency] {rate:g} check-ins/s for {args.duration:g} s (+1 s warm-up) ...")
    start_offsets = high_watermarks(kafka, topic)
    checkins = RotatingCheckIns(seeded.targets, "127.0.0.1", service.port, args.seed)
    recorder = AcceptedRecorder()
    meter: Any = CpuOf(
        goals=service.pid, relay=relay.pid, notifier=notifier.pid, kafka=kafka_broker_pid()
    )
    notifier_cpu = process_cpu(notifier.pid)
    notifier_backends = PostgresBackends(pg, app_name("notifier"))
    notifier_backends.begin()
    load = asyncio.run(
        open_loop(checkins, rate, 1.0, args.duration, args.connections, meter, recorder)
    )
    cores = dict(load.cpu)
    cores["client"] = cores.pop("bench")
    report_errors("latency", f"{rate:g}/s", load)
    warn_if_noisy("latency", cores)
    children: list[tuple[Any, str]] = [(relay, "the relay"), (notifier, "the notifier")]
    wanted = {stable_event_id(uuid.UUID(o), v) for o, v, _ in recorder.accepted}
    notified, drained = wait_notified(tables, "lead", wanted, children)
    notifier_cpu = process_cpu(notifier.pid) - notifier_cpu  # the run and its drain
    notifier_pg_cpu = notifier_backends.end()
    produced = produce_times(kafka, topic, start_offsets)
    result = latencies(recorder.accepted, notified, produced)
    total = ms(result.total)
    split = {
        "accepted_to_produced": ms(result.to_produced),
        "produced_to_raised": ms(result.produced_to_raised),
    }
    memory = proc_status_mb(notifier.pid)
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
