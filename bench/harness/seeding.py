"""A goals organisation seeded over HTTP (a department, a lead and members reporting to the
lead, an active cycle, active objectives with three key results each), the check-ins a load
sends to it, and the wait until the service has settled after a load."""

from __future__ import annotations

import itertools
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from okr_goals.auth import mint_development_token
from okr_goals.settings import GoalsSettings

from harness.cpu import process_cpu
from harness.environments import JWT_SECRET
from harness.http_load import http_request
from harness.processes import Service

ORG = "bench"


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


class RotatingCheckIns(CheckIns):
    """Check-ins by each objective's owner, objective after objective (a random KR, value and
    confidence, as `CheckIns` sends them)."""

    def __init__(self, targets: list[Target], host: str, port: int, seed: int) -> None:
        super().__init__(targets, host, port, seed)
        self.rotation = itertools.cycle(targets)

    def next(self) -> bytes:
        target = next(self.rotation)
        kr_id = self.random.choice(target.kr_ids)
        current = round(self.random.uniform(0, 100), 1)
        body = json.dumps({"current": current, "confidence": self.random.randint(1, 5)})
        path = f"/objectives/{target.objective_id}/key-results/{kr_id}/check-ins"
        return http_request("POST", path, self.host, self.port, target.token, body.encode())


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
