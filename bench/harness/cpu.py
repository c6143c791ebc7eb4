"""CPU and memory, from /proc: of a process, of PostgreSQL (all of it, or the backends serving
one application_name), of the Kafka broker and of the whole machine, over one phase of a run.
What the rest of the machine spent meanwhile ("other", "others") is the figures' noise: a
phase warns when it is large."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from harness.infrastructure import Postgres
from harness.machine import CLK_TCK, CORES


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


def machine_cpu() -> float:
    """CPU seconds every core has spent busy (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def kafka_broker_pid() -> int | None:
    """The local broker (deploy/local/kafka.sh runs `java ... kafka.Kafka`), for its CPU."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"\0kafka.Kafka\0" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    return None


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


class CpuOf:
    """Cores busy over a phase: PostgreSQL, this process, the named processes (a pid that
    vanished counts as idle) and, as "others", the rest of the machine: noise in the figures."""

    def __init__(self, **pids: int | None) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.start: dict[str, float] = {}
        self.began = 0.0

    def _now(self) -> dict[str, float]:
        own = os.times()
        now = {
            "postgres": postgres_cpu(),
            "bench": own.user + own.system,
            "machine": machine_cpu(),
        }
        for name, pid in self.pids.items():
            try:
                now[name] = process_cpu(pid)
            except OSError:
                now[name] = self.start.get(name, 0.0)
        return now

    def begin(self) -> None:
        self.start = self._now()
        self.began = time.perf_counter()

    def end(self) -> dict[str, float]:
        """Cores busy (CPU seconds per second) of each since begin()."""
        now = self._now()
        seconds = time.perf_counter() - self.began
        busy = {name: (now[name] - self.start[name]) / seconds for name in now}
        machine = busy.pop("machine")
        busy["others"] = max(0.0, machine - sum(busy.values()))
        return {name: round(value, 2) for name, value in busy.items()}


def warn_if_noisy(phase: str, cores: dict[str, float]) -> None:
    if cores.get("others", 0.0) > 0.25:
        print(
            f"[{phase}] warning: other processes kept {cores['others']:.2f} of {CORES} cores busy "
            "meanwhile; the figures are disturbed",
            file=sys.stderr,
        )


class PostgresBackends:
    """CPU of the PostgreSQL backends serving one application_name (libpq takes it from
    PGAPPNAME): PostgreSQL's work for that client alone, whatever else uses the server."""

    def __init__(self, pg: Postgres, app_name: str) -> None:
        self.conn = psycopg.connect(
            pg.conninfo(), autocommit=True, application_name="bench-notifier-monitor"
        )
        self.app_name = app_name
        self.start: dict[int, float] = {}
        self.seen: dict[int, float] = {}  # the last CPU seen of every backend since begin()
        self.closed = 0.0  # of that CPU, the backends' that closed before end()

    def _now(self) -> dict[int, float]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.app_name,)
        ).fetchall()
        cpu = {}
        for (pid,) in rows:
            try:
                cpu[pid] = process_cpu(pid)
            except OSError:
                continue  # closed meanwhile
        return cpu

    def begin(self) -> None:
        self.start = self._now()
        self.seen = dict(self.start)

    def sample(self) -> None:
        """Note the backends' CPU now: one that closes before end() counts up to here."""
        self.seen.update(self._now())

    def end(self) -> float:
        """CPU seconds since begin() of the backends alive now or sampled in between (one
        that opened and closed between two samples is missed: the pools keep theirs)."""
        now = self._now()
        self.seen.update(now)
        spent = {pid: cpu - self.start.get(pid, 0.0) for pid, cpu in self.seen.items()}
        self.closed = sum(cpu for pid, cpu in spent.items() if pid not in now)
        return sum(spent.values())

    def close(self) -> None:
        self.conn.close()


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0), so the peak is the call's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False
