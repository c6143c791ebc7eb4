"""A goals history made directly as contracts (okr_events.goals), in the order the goals
service would have published it: one organisation's directory (registered, departments,
members: one aggregate, increasing versions), a planned and activated cycle, objectives
(created, key results added, activated) and check-ins spread at random over the objectives,
with consistent before/after values and increasing versions per objective."""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from okr_events import goals
from okr_events.base import EventContract

KRS_PER_OBJECTIVE = 2
DEPARTMENTS = 10


@dataclass
class Shape:
    """How big the history is; check-ins fill it up to `events`."""

    events: int
    objectives: int
    members: int
    departments: int = DEPARTMENTS

    @classmethod
    def for_events(cls, events: int) -> Shape:
        objectives = max(1, min(1_000, events // 100))
        members = max(DEPARTMENTS, min(200, events // 500))
        shape = cls(events, objectives, members)
        if shape.check_ins < 0:
            raise ValueError(f"--events must be at least {shape.structural} for this history")
        return shape

    @property
    def structural(self) -> int:
        """Events that are not check-ins: the org's, the cycle's, each objective's first 4."""
        org = 1 + self.departments + self.members
        return org + 2 + self.objectives * (2 + KRS_PER_OBJECTIVE)

    @property
    def check_ins(self) -> int:
        return self.events - self.structural


@dataclass
class ObjectiveState:
    objective_id: uuid.UUID
    owner: str
    version: int
    krs: dict[str, goals.KRValues]

    def progress(self) -> float:
        return sum(kr.progress for kr in self.krs.values()) / len(self.krs)


class History:
    """A realistic goals history: one organisation's directory, a cycle, objectives and their
    check-ins, in the order the goals service would have published them."""

    def __init__(self, shape: Shape, seed: int) -> None:
        self.shape = shape
        self.random = random.Random(seed)
        self.org_id = uuid.UUID(int=self.random.getrandbits(128), version=4)
        self.cycle_id = uuid.UUID(int=self.random.getrandbits(128), version=4)
        self.clock = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)
        self.departments = [f"d{n:02d}" for n in range(shape.departments)]
        self.members = [f"u{n:04d}" for n in range(shape.members)]
        self.objectives: list[ObjectiveState] = []
        self.kinds: Counter[str] = Counter()

    def department_of(self, member: str) -> str:
        return self.departments[int(member[1:]) % len(self.departments)]

    def lead_of(self, department: str) -> str:
        return self.members[self.departments.index(department)]

    def _at(self) -> datetime:
        self.clock += timedelta(seconds=self.random.randint(20, 100))
        return self.clock

    def contracts(self) -> Iterator[EventContract]:
        """Exactly `shape.events` contracts; `kinds` counts them by type afterwards."""
        for contract in itertools.chain(
            self._organisation(), self._cycle(), self._objectives(), self._check_ins()
        ):
            self.kinds[type(contract).__name__] += 1
            yield contract

    def _organisation(self) -> Iterator[EventContract]:
        org = {"aggregate_id": self.org_id, "actor": "root"}
        version = itertools.count(1)
        yield goals.OrganisationRegistered(
            **org,
            aggregate_version=next(version),
            occurred_at=self._at(),
            slug="bench-history",
            name="Bench history",
        )
        for n, department in enumerate(self.departments):
            yield goals.DepartmentAdded(
                **org,
                aggregate_version=next(version),
                occurred_at=self._at(),
                department_id=department,
                name=f"部门 {n}",
                parent_id=None,
                lead_ids=[self.lead_of(department)],
            )
        for member in self.members:
            department = self.department_of(member)
            lead = self.lead_of(department)
            yield goals.MemberAdded(
                **org,
                aggregate_version=next(version),
                occurred_at=self._at(),
                member_id=member,
                name=f"成员 {member}",
                department_id=department,
                manager_id=None if lead == member else lead,
                time_zone="Asia/Shanghai",
                roles=["supervisor"] if lead == member else ["employee"],
                email=None,
            )

    def _cycle(self) -> Iterator[EventContract]:
        cycle = {"aggregate_id": self.cycle_id, "actor": "root"}
        yield goals.CycleCreated(
            **cycle,
            aggregate_version=1,
            occurred_at=self._at(),
            org_id=self.org_id,
            name="2026 Q4",
            kind="quarter",
            start_date=date(2026, 10, 1),
            end_date=date(2026, 12, 31),
        )
        yield goals.CycleActivated(**cycle, aggregate_version=2, occurred_at=self._at())

    def _objectives(self) -> Iterator[EventContract]:
        for n in range(self.shape.objectives):
            owner = self.members[n % len(self.members)]
            objective_id = uuid.UUID(int=self.random.getrandbits(128), version=4)
            common = {"aggregate_id": objective_id, "actor": owner}
            yield goals.ObjectiveCreated(
                **common,
                aggregate_version=1,
                occurred_at=self._at(),
                org_id=self.org_id,
                cycle_id=self.cycle_id,
                title=f"目标 {n}",
                description="",
                level="personal",
                owner_type="member",
                owner_id=owner,
                responsible_ids=[owner],
                department_id=self.department_of(owner),
                visibility="department" if n % 5 == 0 else "public",
                weight=1.0,
                created_for_report=False,
            )
            krs = {}
            for k in range(KRS_PER_OBJECTIVE):
                kr_id = f"kr{n:04d}{k}"
                yield goals.KeyResultAdded(
                    **common,
                    aggregate_version=2 + k,
                    occurred_at=self._at(),
                    kr_id=kr_id,
                    title=f"KR {n}.{k}",
                    kind="metric",
                    unit="number",
                    unit_label=None,
                    start=0.0,
                    target=100.0,
                    current=0.0,
                    owner_id=owner,
                    due_date=None,
                    weight=1.0,
                    late=False,
                )
                krs[kr_id] = goals.KRValues(
                    current=0.0, progress=0.0, confidence=None, risk="normal"
                )
            version = 2 + KRS_PER_OBJECTIVE
            yield goals.ObjectiveActivated(
                **common,
                aggregate_version=version,
                occurred_at=self._at(),
                reason="approval_not_required",
            )
            self.objectives.append(ObjectiveState(objective_id, owner, version, krs))

    def _check_ins(self) -> Iterator[EventContract]:
        rnd = self.random
        for _ in range(self.shape.check_ins):
            objective = rnd.choice(self.objectives)
            kr_id = rnd.choice(list(objective.krs))
            before = objective.krs[kr_id]
            current = round(min(100.0, max(0.0, before.current + rnd.uniform(-5, 12))), 1)
            confidence = rnd.randint(1, 5)
            after = goals.KRValues(
                current=current,
                progress=current / 100.0,
                confidence=confidence,
                risk="normal" if confidence >= 3 else "at_risk",
            )
            progress_before = objective.progress()
            objective.krs[kr_id] = after
            objective.version += 1
            yield goals.KRProgressUpdated(
                aggregate_id=objective.objective_id,
                aggregate_version=objective.version,
                occurred_at=self._at(),
                actor=objective.owner,
                kr_id=kr_id,
                check_in_id=uuid.UUID(int=rnd.getrandbits(128), version=4).hex,
                before=before,
                after=after,
                objective_progress_before=progress_before,
                objective_progress_after=objective.progress(),
                note=rnd.choice(["", "按计划推进", "客户签约延后", "on track"]),
                source="manual",
                late=False,
            )

    def follow_pairs(self, count: int) -> list[tuple[str, ObjectiveState]]:
        """`count` distinct (follower, objective) pairs, never the objective's owner."""
        pairs: set[tuple[str, int]] = set()
        limit = len(self.members) * len(self.objectives) - len(self.objectives)
        rnd = random.Random(len(self.objectives))
        while len(pairs) < min(count, limit):
            n = rnd.randrange(len(self.objectives))
            member = rnd.choice(self.members)
            if member != self.objectives[n].owner:
                pairs.add((member, n))
        return [(member, self.objectives[n]) for member, n in sorted(pairs)]
