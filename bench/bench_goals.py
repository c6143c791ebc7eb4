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
import asyncio
import contextlib
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from okr_goals.auth import mint_development_token
from okr_goals.settings import GoalsSettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "latest.json"
JWT_SECRET = "bench-goals-jwt-secret-0123456789abcdefghijklmnopqrstuvwxyz"
ORG = "bench"
CORES = os.cpu_count() or 1
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Targets of the issue (this 2-core machine).
TARGET_THROUGHPUT = 1000.0  # check-ins/s through HTTP on PostgreSQL
TARGET_P99_MS = 50.0  # p99 at the fixed rate
TARGET_RSS_MB = 150.0  # goals service resident memory

REQUEST_TIMEOUT = 30.0  # seconds; a check-in without an answer by then counts as an error (0)


# ---- PostgreSQL ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Postgres:
    host: str = os.environ.get("OKR_PG_HOST", "127.0.0.1")
    port: int = int(os.environ.get("OKR_PG_PORT", "5432"))
    dbname: str = os.environ.get("OKR_PG_DB", "okr")
    user: str = os.environ.get("OKR_PG_USER", "okr")
    password: str = os.environ.get("OKR_PG_PASSWORD", "okr")

    def conninfo(self) -> str:
        return (
            f"host={self.host} port={self.port} dbname={self.dbname} "
            f"user={self.user} password={self.password}"
        )

    def create_schema(self, schema: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(schema)))

    def drop_schema(self, schema: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    psycopg.sql.Identifier(schema)
                )
            )

    def library_env(self, schema: str) -> dict[str, str]:
        """The eventsourcing library's PostgreSQL settings; POSTGRES_ENABLE_DB_FUNCTIONS off."""
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        }


def unique_schema(prefix: str) -> str:
    return f"{prefix}_{datetime.now(UTC):%Y%m%d_%H%M%S}_{os.getpid()}"


# ---- /proc --------------------------------------------------------------------------------------


def proc_status_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak resident set) of a process, in MB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0]) / 1024  # kB -> MB
    return figures


def _cpu_seconds(stat: str, user_only: bool = False) -> float:
    fields = stat.rpartition(")")[2].split()
    user, system = int(fields[11]), int(fields[12])  # utime, stime
    return (user if user_only else user + system) / CLK_TCK


def process_cpu(pid: int, user_only: bool = False) -> float:
    return _cpu_seconds(Path(f"/proc/{pid}/stat").read_text(), user_only)


def postgres_cpu(user_only: bool = False) -> float:
    """CPU seconds of every running PostgreSQL process (server and backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.partition("(")[2].startswith("postgres"):
            total += _cpu_seconds(stat, user_only)
    return total


def machine_user_cpu() -> float:
    """CPU seconds every core has spent in user mode (/proc/stat: user + nice)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[1]) + int(fields[2])) / CLK_TCK


def other_user_cpu() -> float:
    """User-mode CPU seconds of the machine, less this process's and PostgreSQL's: a phase's
    difference is what the service and other processes spent (kernel time is left out, as
    interrupts and kernel threads working for the benchmark are not attributed to it)."""
    return machine_user_cpu() - postgres_cpu(user_only=True) - os.times().user


@dataclass
class CpuMeter:
    """CPU seconds spent over one phase by the service, PostgreSQL and this process (user +
    system), and the user-mode CPU of anything else on the machine (noise in the figures)."""

    service_pid: int
    start: tuple[float, ...] = ()

    def _now(self) -> tuple[float, ...]:
        own = os.times()
        return (
            process_cpu(self.service_pid),
            postgres_cpu(),
            own.user + own.system,
            other_user_cpu() - process_cpu(self.service_pid, user_only=True),
        )

    def begin(self) -> None:
        self.start = self._now()

    def end(self) -> dict[str, float]:
        service, pg, client, other = (b - a for a, b in zip(self.start, self._now(), strict=True))
        return {"service": service, "postgres": pg, "client": client, "other": max(0.0, other)}


# ---- a minimal HTTP/1.1 client on asyncio streams -----------------------------------------------


class HttpConnection:
    """One persistent keep-alive connection; one request at a time; Content-Length or chunked."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> HttpConnection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.reader = self.writer = None

    async def send(self, data: bytes, timeout: float = REQUEST_TIMEOUT) -> tuple[int, bytes]:
        """A request that never raises: status 0 on a timeout or a broken connection (the
        connection is then closed, and reopened by the next request)."""
        try:
            async with asyncio.timeout(timeout):
                return await self.request(data)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
            await self.close()
            return 0, f"{type(error).__name__}: {error}".encode()

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if status in (204, 304) or status < 200:
            body = b""
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:  # no length: the body runs to the end of the connection
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await self.reader.readline()) not in (b"\r\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)  # CRLF after each chunk


def http_request(
    method: str, path: str, host: str, port: int, token: str | None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ---- the goals service as a process -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """`uvicorn --factory okr_goals.main:create_app` in its own process, with the store's env."""

    def __init__(self, env: dict[str, str], log_path: Path, profile: Path | None = None) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.profile = profile
        if profile is None:
            command = [
                *(sys.executable, "-m", "uvicorn", "--factory", "okr_goals.main:create_app"),
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--no-access-log", "--log-level", "warning"),
            ]
        else:  # the same app under cProfile (bench/profile_service.py)
            command = [
                *(sys.executable, str(ROOT / "bench" / "profile_service.py")),
                *("--port", str(self.port), "--output", str(profile)),
            ]
        self.process = subprocess.Popen(
            command,
            env=os.environ | env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the goals service exited:\n{self.log_tail()}")
            try:
                status, _ = self.call("GET", "/ready")
                if status == 200:
                    return
            except OSError:
                self.http.close()
            time.sleep(0.1)
        raise RuntimeError(
            f"the goals service was not ready in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """A request for seeding and checks (http.client keeps the connection alive)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.http.request(method, path, body=data, headers=headers)
                response = self.http.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.http.close()  # the server closed an idle keep-alive connection: reconnect
                if attempt == 2:
                    raise
        return response.status, json.loads(raw) if raw else None

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=120 if self.profile else 15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# ---- seeding ------------------------------------------------------------------------------------


@dataclass
class Target:
    objective_id: str
    kr_ids: list[str]
    token: str  # the owner's, who checks in


@dataclass
class Seeded:
    cycle_id: str
    admin: str
    targets: list[Target] = field(default_factory=list)


def token(member: str, roles: list[str]) -> str:
    settings = GoalsSettings(persistence="postgres", jwt_secret=JWT_SECRET)
    return mint_development_token(settings, member, ORG, roles)


def expect(result: tuple[int, Any], status: int, what: str) -> Any:
    if result[0] != status:
        raise RuntimeError(f"seeding: {what} answered {result[0]}: {result[1]}")
    return result[1]


def seed(service: Service, objectives: int, members: int) -> Seeded:
    """A department with a lead and members reporting to the lead, an active cycle, and active
    objectives (created and submitted by their owner, approved by the lead), 3 KRs each."""
    admin = token("root", ["admin"])
    expect(
        service.call("POST", "/directory/departments", admin, {"id": "eng", "name": "研发部"}),
        201,
        "add department",
    )
    member_ids = [f"m{i:03d}" for i in range(1, members)]
    expect(
        service.call(
            "POST",
            "/directory/members",
            admin,
            {"id": "lead", "name": "Lead", "department_id": "eng", "roles": ["supervisor"]},
        ),
        201,
        "add lead",
    )
    for member in member_ids:
        body = {"id": member, "name": f"Member {member}", "department_id": "eng"}
        body["manager_id"] = "lead"
        expect(service.call("POST", "/directory/members", admin, body), 201, "add member")
    cycle = expect(
        service.call(
            "POST",
            "/cycles",
            admin,
            {
                "name": "Bench",
                "kind": "quarter",
                "start_date": "2026-10-01",
                "end_date": "2026-12-31",
            },
        ),
        201,
        "plan cycle",
    )
    path = f"/cycles/{cycle['id']}/transitions"
    expect(service.call("POST", path, admin, {"to": "active"}), 200, "activate cycle")
    lead = token("lead", [])
    tokens = {m: token(m, []) for m in member_ids}
    seeded = Seeded(cycle_id=cycle["id"], admin=admin)
    for n in range(objectives):
        owner = member_ids[n % len(member_ids)]
        body = {
            "cycle_id": cycle["id"],
            "title": f"Objective {n}",
            "key_results": [
                {"title": f"KR {n}.{k}", "start": 0, "target": 100, "unit": "number"}
                for k in range(3)
            ],
        }
        created = expect(
            service.call("POST", "/objectives", tokens[owner], body), 201, "create objective"
        )
        oid = created["id"]
        submitted = expect(
            service.call("POST", f"/objectives/{oid}/submit", tokens[owner]), 200, "submit"
        )
        if submitted["status"] == "pending_approval":
            submitted = expect(
                service.call("POST", f"/objectives/{oid}/approve", lead), 200, "approve"
            )
        if submitted["status"] != "active":
            raise RuntimeError(f"seeding: objective {oid} is {submitted['status']!r}")
        kr_ids = [kr["id"] for kr in submitted["key_results"]]
        seeded.targets.append(Target(oid, kr_ids, tokens[owner]))
    return seeded


# ---- load ---------------------------------------------------------------------------------------


class CheckIns:
    """Check-in requests spread at random over the objectives and their KRs."""

    def __init__(self, targets: list[Target], host: str, port: int, seed: int) -> None:
        self.targets = targets
        self.host = host
        self.port = port
        self.random = random.Random(seed)

    def next(self) -> bytes:
        target = self.random.choice(self.targets)
        kr_id = self.random.choice(target.kr_ids)
        current = round(self.random.uniform(0, 100), 1)
        body = json.dumps({"current": current, "confidence": self.random.randint(1, 5)})
        path = f"/objectives/{target.objective_id}/key-results/{kr_id}/check-ins"
        return http_request("POST", path, self.host, self.port, target.token, body.encode())


@dataclass
class LoadResult:
    completed: int  # responses (any status) counted in the window
    seconds: float
    latencies: list[float]  # seconds, of every counted response
    statuses: Counter[int]
    first_error: str = ""
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 201)

    @property
    def ok(self) -> int:
        return self.statuses.get(201, 0)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


class Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.first_error = ""

    def record(self, latency: float, status: int, body: bytes) -> None:
        self.latencies.append(latency)
        self.statuses[status] += 1
        if status != 201 and not self.first_error:
            self.first_error = f"{status} {body[:300].decode(errors='replace')}"


async def _open(n: int, host: str, port: int) -> list[HttpConnection]:
    return list(await asyncio.gather(*(HttpConnection(host, port).open() for _ in range(n))))


async def closed_loop(
    checkins: CheckIns, concurrency: int, warmup: float, duration: float, meter: CpuMeter
) -> LoadResult:
    """Each connection sends its next check-in as soon as the previous answer arrives."""
    connections = await _open(concurrency, checkins.host, checkins.port)
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    begin = loop.time() + warmup
    end = begin + duration
    measuring = False

    async def worker(connection: HttpConnection) -> None:
        while loop.time() < end:
            sent = time.perf_counter()
            status, body = await connection.send(checkins.next())
            done = time.perf_counter()
            if measuring and loop.time() <= end:
                recorder.record(done - sent, status, body)

    async def window() -> None:
        nonlocal measuring
        await asyncio.sleep(max(0.0, begin - loop.time()))
        meter.begin()
        measuring = True
        await asyncio.sleep(max(0.0, end - loop.time()))
        measuring = False

    workers = [asyncio.create_task(worker(c)) for c in connections]
    await window()
    cpu = meter.end()
    await asyncio.gather(*workers)
    for connection in connections:
        await connection.close()
    return LoadResult(
        completed=len(recorder.latencies),
        seconds=duration,
        latencies=recorder.latencies,
        statuses=recorder.statuses,
        first_error=recorder.first_error,
        cpu=cpu,
    )


async def open_loop(
    checkins: CheckIns,
    rate: float,
    warmup: float,
    duration: float,
    connections_n: int,
    meter: CpuMeter,
    recorder: Recorder | None = None,
) -> LoadResult:
    """Check-ins at scheduled times (rate per second) over a pool of connections; latency counts
    from the scheduled time, so a slow answer that delays later sends shows up in their latency
    too. A service far behind the schedule is not waited for forever: what is still unsent
    `duration` (at least 10) seconds after the schedule's end counts as failed, with the latency
    it had reached by then. A `recorder` of the caller's (e.g. a subclass keeping each answer)
    is told of every answer after the warm-up as it arrives."""
    connections = await _open(connections_n, checkins.host, checkins.port)
    recorder = recorder or Recorder()
    start = time.perf_counter() + 0.05
    skip = int(rate * warmup)
    total = skip + int(rate * duration)
    give_up = start + total / rate + max(10.0, duration)
    next_index = 0
    metered = False

    async def worker(connection: HttpConnection) -> None:
        nonlocal next_index, metered
        while next_index < total and time.perf_counter() < give_up:
            index = next_index
            next_index += 1
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if index == skip and not metered:
                metered = True
                meter.begin()
            status, body = await connection.send(checkins.next())
            if index >= skip:
                recorder.record(time.perf_counter() - scheduled, status, body)

    await asyncio.gather(*(worker(c) for c in connections))
    cpu = meter.end()
    for index in range(max(next_index, skip), total):
        late = max(give_up, time.perf_counter()) - (start + index / rate)
        recorder.record(late, 0, b"not sent: the service fell too far behind the schedule")
    for connection in connections:
        await connection.close()
    return LoadResult(
        completed=len(recorder.latencies),
        seconds=time.perf_counter() - (start + skip / rate),
        latencies=recorder.latencies,
        statuses=recorder.statuses,
        first_error=recorder.first_error,
        cpu=cpu,
    )


def wait_settled(service: Service, seeded: Seeded, timeout: float = 120.0) -> float:
    """Wait until the views have caught up with the log (a list query waits for them) and the
    service is idle again; the seconds that took."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        path = f"/objectives?cycle_id={seeded.cycle_id}"
        status, body = service.call("GET", path, seeded.admin)
        if status == 200:
            break
        if status != 503:  # 503: the views are still behind (the query waited for them)
            raise RuntimeError(f"GET {path} answered {status}: {body}")
    caught_up = time.monotonic() - started
    previous = process_cpu(service.pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = process_cpu(service.pid)
        if now - previous < 0.25 * 0.05:  # under 5 % of a core
            break
        previous = now
    return caught_up


# ---- the raw library ----------------------------------------------------------------------------


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


# ---- figures ------------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    params: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, float):
            value = None if value != value else round(value, 3)  # NaN -> null
        return {"name": self.name, "value": value, "unit": self.unit, "params": self.params}


@dataclass
class Figures:
    common: dict[str, Any]
    items: list[Figure] = field(default_factory=list)

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        target: tuple[str, float] | None = None,
        **params: Any,
    ) -> None:
        merged = self.common | params
        if target is not None:
            op, limit = target
            merged["target"] = f"{op} {limit:g}"
            merged["meets_target"] = bool(value >= limit if op == ">=" else value <= limit)
        self.items.append(Figure(name, value, unit, merged))

    def get(self, name: str) -> Figure | None:
        return next((f for f in self.items if f.name == name), None)


def write_results(path: Path, figures: Figures) -> None:
    """Merge by name: this run's entries replace those of the same name; others are kept."""
    existing: list[dict[str, Any]] = []
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, list):
                existing = [e for e in loaded if isinstance(e, dict) and "name" in e]
        except json.JSONDecodeError:
            print(f"warning: {path} was not valid JSON; rewriting it", file=sys.stderr)
    new = {f.name: f.as_json() for f in figures.items}
    merged = [new.pop(e["name"]) if e["name"] in new else e for e in existing]
    merged += list(new.values())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:
        return "n/a"
    return f"{value:,.3f}" if unit == "ratio" else f"{value:,.1f}"


def print_table(figures: Figures) -> None:
    print()
    print(f"{'figure':<52} {'value':>12}  {'unit':<12} target")
    print("-" * 92)
    for f in figures.items:
        mark = ""
        if "target" in f.params:
            mark = f"{f.params['target']}  {'ok' if f.params['meets_target'] else 'MISSED'}"
        print(f"{f.name:<52} {_fmt(f.value, f.unit):>12}  {f.unit:<12} {mark}")
    print()


def print_summary(figures: Figures, backends: list[str], args: argparse.Namespace) -> None:
    """The headline figures side by side, one column per store."""

    def row(label: str, names: list[str], target: str = "") -> None:
        cells = []
        for backend in backends:
            values = [figures.get(n.format(b=backend)) for n in names]
            if all(v is None for v in values):
                cells.append("-")
            else:
                cells.append(" / ".join(_fmt(v.value, v.unit) if v else "-" for v in values))
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


# ---- the run ------------------------------------------------------------------------------------


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
        warn_if_noisy(backend, "throughput", load)
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
        warn_if_noisy(backend, "fixed rate", fixed)
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


def warn_if_noisy(backend: str, phase: str, load: LoadResult) -> None:
    busy = load.cpu["other"] / load.seconds
    if busy > 0.2:
        print(
            f"[{backend}] {phase}: warning: other processes kept {busy:.1f} of {CORES} cores "
            "busy meanwhile; the figures are disturbed",
            file=sys.stderr,
        )


def report_errors(backend: str, phase: str, load: LoadResult) -> None:
    if load.errors:
        print(
            f"[{backend}] {phase}: {load.errors} of {load.completed} check-ins failed "
            f"{dict(load.statuses)}; first: {load.first_error}",
            file=sys.stderr,
        )


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
        f"bench_goals: os.cpu_count() = {CORES}; Python {platform.python_version()}; "
        f"backends {', '.join(args.backends)}{'; quick' if args.quick else ''}"
    )
    common = {"cores": CORES, "quick": args.quick, "run_at": datetime.now(UTC).isoformat()}
    figures = Figures(common)
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
