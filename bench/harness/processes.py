"""The processes a run starts and stops, each logging to a file of the run's: a service under
uvicorn (`Service`: the goals service, or the notifier, with the readiness wait and the
requests that seed and check it) and a Python module (`Child`: the relay, the ledger). A run
stops only what it started."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GOALS_APP = "okr_goals.main:create_app"
NOTIFIER_APP = "okr_notifier.main:create_app"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """`uvicorn --factory <app>` in its own process, with the store's env: the goals service
    (GOALS_APP, the default; with `profile`, under cProfile: bench/profile_service.py) or the
    notifier (NOTIFIER_APP). `what` names it in errors."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        profile: Path | None = None,
        *,
        app: str = GOALS_APP,
        what: str = "the goals service",
    ) -> None:
        if profile is not None and app != GOALS_APP:
            raise ValueError("bench/profile_service.py runs the goals service only")
        self.port = free_port()
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.profile = profile
        self.what = what
        if profile is None:
            command = [
                *(sys.executable, "-m", "uvicorn", "--factory", app),
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
                raise RuntimeError(f"{self.what} exited:\n{self.log_tail()}")
            try:
                status, _ = self.call("GET", "/ready")
                if status == 200:
                    return
            except OSError:
                self.http.close()
            time.sleep(0.1)
        raise RuntimeError(f"{self.what} was not ready in {timeout:.0f} s:\n{self.log_tail()}")

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


class Child:
    """A Python module run as its own process, logging to a file."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.spawned = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=os.environ | env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def check_alive(self, what: str) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{what} exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def check_children(children: list[tuple[Any, str]]) -> None:
    """Raise (with the end of its log) if one of the (process, what it is) has exited."""
    for child, what in children:
        if child.process.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{child.log_tail()}")
