"""The stack rides out a restart of PostgreSQL or Kafka under it, as processes.

The goals API, the relay, the ledger and the notifier run as their own processes (as
`make up` runs them) on a PostgreSQL cluster of the test's own, which the test stops and
starts while check-ins keep coming (the restart is done once for the module; each test checks
one guarantee of it). Before, during (refusals are fine while the database is down) and after:
afterwards goals, the notifier and the ledger are ready again, the relay and the ledger are the
same processes (never restarted: they waited), and every accepted check-in is on the topic and
in the ledger exactly once. The Kafka variant restarts the session's broker (`kafka_broker`),
as test_resilience does. Each run prints what it measured (time to ready after the restart)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from okr_testkit.goals import Org, build_org
from test_resilience import assert_applied_exactly_once

from conftest import Stack, free_port, own_postgres_server, stack_on, wait_for

CHECK_IN_TYPE = "okr.goals.KRProgressUpdated.v1"


@dataclass
class Services:
    """The four processes of the stack and where their HTTP endpoints are."""

    stack: Stack
    goals_url: str
    notifier_url: str
    ledger_url: str
    processes: dict[str, Any] = field(default_factory=dict)

    def ready(self, url: str) -> bool:
        try:
            return httpx.get(f"{url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def all_ready(self) -> bool:
        return all(self.ready(u) for u in (self.goals_url, self.notifier_url, self.ledger_url))

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.processes.items()}

    def notifier_lag(self) -> int | None:
        runners = httpx.get(f"{self.notifier_url}/lag", timeout=2).json()["runners"]
        totals = [r["lag"]["total"] for r in runners if r["lag"] is not None]
        return sum(totals) if totals else None


@contextlib.contextmanager
def running_services(stack: Stack) -> Iterator[Services]:
    """The goals API, the relay, the ledger and the notifier as processes, all ready."""
    goals_port, notifier_port, ledger_port = free_port(), free_port(), free_port()
    s = Services(
        stack,
        f"http://127.0.0.1:{goals_port}",
        f"http://127.0.0.1:{notifier_port}",
        f"http://127.0.0.1:{ledger_port}",
    )
    # The API first: it creates the goals schema the relay shares.
    s.processes["goals"] = stack.serve("goals", "okr_goals.main:create_app", goals_port)
    wait_for(lambda: s.ready(s.goals_url), 60, "the goals API to be ready", every=0.2)
    s.processes["relay"] = stack.process("relay", "okr_goals.relay")
    s.processes["ledger"] = stack.process(
        "ledger", "okr_events.ledger_process", env={"OKR_LEDGER_HTTP_PORT": str(ledger_port)}
    )
    s.processes["notifier"] = stack.serve(
        "notifier",
        "okr_notifier.main:create_app",
        notifier_port,
        env=stack.notifier_env(f"e2e_notifier_{stack.goals_schema[-10:]}"),
    )
    wait_for(s.all_ready, 90, "the stack to be ready", every=0.2)
    yield s  # the processes are stopped by the stack's cleanup


class CheckIns:
    """Check-ins at a steady pace from a thread, each outcome kept with its time."""

    def __init__(self, org: Org, objectives: list[dict[str, Any]], url: str) -> None:
        self.org, self.objectives = org, objectives
        self.client = httpx.Client(base_url=url, timeout=10)
        self.outcomes: list[tuple[float, int | str]] = []
        self.accepted: list[str] = []  # check_in_id of every 201
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="check-ins", daemon=True)

    def __enter__(self) -> CheckIns:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.client.close()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            objective = self.objectives[n % len(self.objectives)]
            kr = objective["key_results"][0]["id"]
            n += 1
            try:
                response = self.client.post(
                    f"/objectives/{objective['id']}/key-results/{kr}/check-ins",
                    json={"current": n % 100},
                    headers=self.org.h("bailu"),
                )
                outcome: int | str = response.status_code
                if response.status_code == 201:
                    self.accepted.append(response.json()["check_in_id"])
            except httpx.HTTPError as error:  # a timeout while the database is down
                outcome = type(error).__name__
            self.outcomes.append((time.monotonic(), outcome))
            self._stop.wait(0.05)

    def accepted_between(self, start: float, end: float) -> int:
        return sum(1 for at, outcome in self.outcomes if start <= at < end and outcome == 201)


def check_in_ids_on_topic(stack: Stack) -> Counter[str]:
    ids: Counter[str] = Counter()
    for message in stack.read_topic(timeout=20):
        payload = json.loads(message.value())
        if payload.get("check_in_id"):
            ids[payload["check_in_id"]] += 1
    return ids


def check_in_ids_in_ledger(stack: Stack) -> Counter[str]:
    rows = stack.ledger(
        "SELECT payload FROM ledger_events WHERE event_type = %(type)s", type=CHECK_IN_TYPE
    )
    return Counter(json.loads(row["payload"])["check_in_id"] for row in rows)


def under_load(
    services: Services, restart: Callable[[], tuple[float, float]], name: str
) -> dict[str, Any]:
    """Check-ins before, during and after ``restart`` (which returns when the server went down
    and when it was back); then wait until the stack is ready and caught up. Measurements."""
    stack = services.stack
    with httpx.Client(base_url=services.goals_url, timeout=10) as client:
        org = build_org(client, stack.goals)  # type: ignore[arg-type] # a TestClient is one
        objectives = [org.active_objective() for _ in range(3)]
    with CheckIns(org, objectives, services.goals_url) as check_ins:
        time.sleep(3)
        down_at, back_at = restart()
        ready_after = {}
        deadline = back_at + 30
        while len(ready_after) < 3 and time.monotonic() < deadline:
            for label, url in (
                ("goals", services.goals_url),
                ("notifier", services.notifier_url),
                ("ledger", services.ledger_url),
            ):
                if label not in ready_after and services.ready(url):
                    ready_after[label] = round(time.monotonic() - back_at, 1)
            time.sleep(0.1)
        time.sleep(3)  # check-ins after the restart, on a ready stack
    stored = stack.stored_events()
    wait_for(lambda: stack.ledger_count() >= len(stored), 90, "the ledger to catch up", every=0.2)
    wait_for(lambda: services.notifier_lag() == 0, 60, "the notifier to catch up", every=0.2)
    measured = {
        "restart": name,
        "down_s": round(back_at - down_at, 1),
        "ready_after_s": ready_after,
        "accepted": {
            "before": check_ins.accepted_between(0, down_at),
            "during": check_ins.accepted_between(down_at, back_at),
            "after": check_ins.accepted_between(back_at, float("inf")),
        },
        "refused": sum(1 for _, outcome in check_ins.outcomes if outcome != 201),
        "ledger_restarts": httpx.get(f"{services.ledger_url}/stats", timeout=2).json()["restarts"],
    }
    print(f"\n{name}: {json.dumps(measured)}")
    return {"measured": measured, "accepted": list(check_ins.accepted), "stored": stored}


@dataclass
class Outcome:
    services: Services
    measured: dict[str, Any]
    accepted: list[str]
    stored: list[tuple[str, int]]
    pids_before: dict[str, int]


@pytest.fixture(scope="module")
def postgres_restart(kafka_bootstrap: str) -> Iterator[Outcome]:
    """Once for the module: the stack as processes on a PostgreSQL of its own, which is stopped
    for 5 s and started again under check-ins."""
    with (
        own_postgres_server() as postgres,
        stack_on(postgres, kafka_bootstrap) as stack,
        running_services(stack) as services,
    ):
        pids = {name: proc.pid for name, proc in services.processes.items()}

        def restart() -> tuple[float, float]:
            down_at = time.monotonic()
            postgres.stop()
            time.sleep(5)  # long enough for every process to meet the outage
            postgres.start()
            return down_at, time.monotonic()

        result = under_load(services, restart, "PostgreSQL restart")
        yield Outcome(services, result["measured"], result["accepted"], result["stored"], pids)


def test_check_ins_before_and_after_a_postgres_restart_are_accepted(
    postgres_restart: Outcome,
) -> None:
    accepted = postgres_restart.measured["accepted"]
    assert accepted["before"] > 0 and accepted["after"] > 0


def test_the_relay_and_the_ledger_wait_out_a_postgres_restart(postgres_restart: Outcome) -> None:
    """The same processes, still running: they waited, nothing restarted them."""
    services = postgres_restart.services
    assert services.alive() == dict.fromkeys(postgres_restart.pids_before, True)
    assert {n: p.pid for n, p in services.processes.items()} == postgres_restart.pids_before


def test_every_accepted_check_in_reaches_the_topic_and_the_ledger_exactly_once(
    postgres_restart: Outcome,
) -> None:
    stack, accepted = postgres_restart.services.stack, postgres_restart.accepted
    on_topic = check_in_ids_on_topic(stack)
    in_ledger = check_in_ids_in_ledger(stack)
    assert len(accepted) == len(set(accepted))
    assert all(on_topic[i] == 1 for i in accepted), "an accepted check-in is missing or doubled"
    assert all(in_ledger[i] == 1 for i in accepted), "an accepted check-in is missing or doubled"
    # Nothing published twice either: the relay followed the store again from where it was.
    versions = Counter(
        (json.loads(m.value())["aggregate_id"], json.loads(m.value())["aggregate_version"])
        for m in stack.read_topic(timeout=20)
    )
    assert max(versions.values()) == 1
    assert sorted(versions) == sorted(postgres_restart.stored)
    assert_applied_exactly_once(stack)


def test_the_notifier_and_the_ledger_are_ready_again_after_a_postgres_restart(
    postgres_restart: Outcome,
) -> None:
    ready_after = postgres_restart.measured["ready_after_s"]
    assert {"notifier", "ledger"} <= set(ready_after), f"not ready within 30 s: {ready_after}"


def test_goals_is_ready_again_after_a_postgres_restart(postgres_restart: Outcome) -> None:
    ready_after = postgres_restart.measured["ready_after_s"]
    assert "goals" in ready_after, f"goals not ready within 30 s of the restart: {ready_after}"


@pytest.fixture
def services(process_stack: Stack) -> Iterator[Services]:
    with running_services(process_stack) as s:
        yield s


def test_kafka_restart_under_the_running_stack(services: Services, kafka_broker: Any) -> None:
    pids = {name: proc.pid for name, proc in services.processes.items()}

    def restart() -> tuple[float, float]:
        down_at = time.monotonic()
        kafka_broker.stop()
        time.sleep(5)
        kafka_broker.start()
        return down_at, time.monotonic()

    result = under_load(services, restart, "Kafka restart")
    measured, accepted = result["measured"], result["accepted"]

    # The command path never touches Kafka: check-ins go on while it is down.
    assert measured["accepted"]["during"] > 0
    assert set(measured["ready_after_s"]) == {"goals", "notifier", "ledger"}
    assert services.alive() == dict.fromkeys(pids, True)
    on_topic = check_in_ids_on_topic(services.stack)
    in_ledger = check_in_ids_in_ledger(services.stack)
    assert all(on_topic[i] >= 1 for i in accepted), "an accepted check-in never reached Kafka"
    assert all(in_ledger[i] == 1 for i in accepted), "an accepted check-in is missing or doubled"
    assert_applied_exactly_once(services.stack)
