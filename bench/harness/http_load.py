"""The load: a minimal HTTP/1.1 client on asyncio streams (persistent keep-alive connections,
one request at a time each) driving requests in a closed loop (as fast as answers come) or an
open loop (at scheduled times, latency counted from the scheduled time: no coordinated
omission), with every answer recorded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.stats import percentile

if TYPE_CHECKING:
    from harness.cpu import CpuMeter
    from harness.seeding import CheckIns


REQUEST_TIMEOUT = 30.0  # seconds; a check-in without an answer by then counts as an error (0)


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


class AcceptedRecorder(Recorder):
    """Also keeps, for each accepted check-in, (objective id, version, client receive time)."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted: list[tuple[str, int, float]] = []

    def record(self, latency: float, status: int, body: bytes) -> None:
        received = time.time()
        super().record(latency, status, body)
        if status == 201:
            objective = json.loads(body)["objective"]
            self.accepted.append((objective["id"], int(objective["version"]), received))


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


def report_errors(backend: str, phase: str, load: LoadResult) -> None:
    if load.errors:
        print(
            f"[{backend}] {phase}: {load.errors} of {load.completed} check-ins failed "
            f"{dict(load.statuses)}; first: {load.first_error}",
            file=sys.stderr,
        )
