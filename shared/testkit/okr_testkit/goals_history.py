"""Random goals histories for the tests of every consumer of goals' events (the replica, the
notifier's projection, rebuilds): okr_events.goals contracts as goals publishes them (increasing
versions per aggregate), and the InboundEvents a consumer receives for them."""

from __future__ import annotations

import random
import uuid
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from okr_events import GOALS_SOURCE, goals
from okr_events.base import EventContract
from okr_events.codec import InboundEvent
from okr_events.envelope import stable_event_id

TOPIC = "okr.goals.events.v1"


def inbound(contracts: Iterable[EventContract], partitions: int = 1) -> list[InboundEvent]:
    """The contracts as a consumer receives them: keyed by aggregate, so each aggregate's
    events are in one partition, in order."""
    offsets = [0] * partitions
    events = []
    for contract in contracts:
        partition = zlib.crc32(contract.aggregate_id.bytes) % partitions
        events.append(
            InboundEvent(
                contract=contract,
                event_id=stable_event_id(contract.aggregate_id, contract.aggregate_version),
                source=GOALS_SOURCE,
                type=type(contract).cloudevents_type(),
                topic=TOPIC,
                partition=partition,
                offset=offsets[partition],
            )
        )
        offsets[partition] += 1
    return events


class Clocked:
    """Versions per aggregate and a clock that ticks a minute per event."""

    def __init__(self) -> None:
        self.clock = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
        self.versions: dict[uuid.UUID, int] = {}

    def common(self, aggregate: uuid.UUID, actor: str = "admin") -> dict[str, Any]:
        self.versions[aggregate] = self.versions.get(aggregate, 0) + 1
        self.clock += timedelta(minutes=1)
        return {
            "aggregate_id": aggregate,
            "aggregate_version": self.versions[aggregate],
            "occurred_at": self.clock,
            "actor": actor,
        }


def kr_added(
    at: Clocked, objective: uuid.UUID, kr_id: str, *, target: float = 100.0, weight: float = 1.0
) -> goals.KeyResultAdded:
    return goals.KeyResultAdded(
        **at.common(objective),
        kr_id=kr_id,
        title=f"KR {kr_id}",
        kind="metric",
        unit="number",
        unit_label=None,
        start=0.0,
        target=target,
        current=0.0,
        owner_id="m1",
        due_date=date(2026, 12, 15),
        weight=weight,
        late=False,
    )


def check_in(
    at: Clocked,
    objective: uuid.UUID,
    kr_id: str,
    before: float,
    after: float,
    target: float,
    objective_before: float,
    objective_after: float,
    confidence: int | None = 4,
) -> goals.KRProgressUpdated:
    return goals.KRProgressUpdated(
        **at.common(objective),
        kr_id=kr_id,
        check_in_id=uuid.uuid4().hex,
        before=goals.KRValues(
            current=before, progress=min(1.0, before / target), confidence=None, risk="normal"
        ),
        after=goals.KRValues(
            current=after, progress=min(1.0, after / target), confidence=confidence, risk="normal"
        ),
        objective_progress_before=objective_before,
        objective_progress_after=objective_after,
        note="",
        source="manual",
        late=False,
    )


class RandomHistory:
    """An organisation whose directory grows and changes, settings changes, two cycles, and
    objectives whose events interleave at random with the directory's: KRs added, edited
    (weight, title, owner, due date), retargeted and removed, status changes, check-ins."""

    def __init__(self, seed: int, objectives: int = 8, steps: int = 400) -> None:
        self.random = random.Random(seed)
        self.at = Clocked()
        self.org = uuid.UUID(int=seed * 1000 + 1)
        self.cycles = [uuid.UUID(int=seed * 1000 + 2), uuid.UUID(int=seed * 1000 + 3)]
        self.objectives = [uuid.UUID(int=seed * 1000 + 100 + n) for n in range(objectives)]
        self.steps = steps
        self.members: list[str] = []
        self.krs: dict[uuid.UUID, dict[str, float]] = {}  # active KRs -> current value

    def contracts(self) -> Iterator[EventContract]:
        org = self.org
        yield goals.OrganisationRegistered(**self.at.common(org), slug="acme", name="Acme")
        for n, parent in enumerate([None, "d0", "d0"]):
            yield goals.DepartmentAdded(
                **self.at.common(org),
                department_id=f"d{n}",
                name=f"部门 {n}",
                parent_id=parent,
                lead_ids=[],
            )
        for n, cycle in enumerate(self.cycles):
            yield goals.CycleCreated(
                **self.at.common(cycle),
                org_id=org,
                name=f"2026 Q{n + 3}",
                kind="quarter",
                start_date=date(2026, 7 + 3 * n, 1),
                end_date=date(2026, 9 + 3 * n, 30),
            )
        for _ in range(4):
            yield self._member_added()
        for objective in self.objectives:
            self.krs[objective] = {}
            yield goals.ObjectiveCreated(
                **self.at.common(objective),
                org_id=org,
                cycle_id=self.random.choice(self.cycles),
                title=f"目标 {objective.int % 1000}",
                description="",
                level="personal",
                owner_type="member",
                owner_id="m0",
                responsible_ids=["m0"],
                department_id=self.random.choice([None, "d1"]),
                visibility=self.random.choice(["public", "department", "private"]),
                weight=1.0,
                created_for_report=False,
            )
            yield self._kr_added(objective)
        for _ in range(self.steps):
            if self.random.random() < 0.1:
                yield self._directory_step()
            else:
                yield self._objective_step(self.random.choice(self.objectives))

    def _member_added(self) -> EventContract:
        member = f"m{len(self.members)}"
        manager = self.random.choice(self.members) if self.members else None
        self.members.append(member)
        return goals.MemberAdded(
            **self.at.common(self.org),
            member_id=member,
            name=f"成员 {member}",
            department_id=self.random.choice(["d0", "d1", "d2"]),
            manager_id=manager,
            time_zone="Asia/Shanghai",
            roles=["employee"],
            email=f"{member}@example.com",
        )

    def _directory_step(self) -> EventContract:
        roll = self.random.random()
        if roll < 0.3:
            return self._member_added()
        if roll < 0.5:
            return goals.SettingsChanged(
                **self.at.common(self.org),
                changes={"progress_warning_threshold": 0.6},
                settings={"progress_warning_threshold": self.random.choice([0.6, 0.8])},
            )
        member = self.random.choice(self.members)
        changes = self.random.choice(
            [
                {"email": f"{member}.new@example.com"},
                {"active": False},
                {"roles": ["supervisor", "employee"], "department_id": "d2"},
            ]
        )
        return goals.MemberUpdated(**self.at.common(self.org), member_id=member, changes=changes)

    def _kr_added(self, objective: uuid.UUID) -> EventContract:
        kr_id = f"kr{self.at.versions.get(objective, 0) + 1}"
        self.krs[objective][kr_id] = 0.0
        weight = float(self.random.randint(1, 3))
        return kr_added(self.at, objective, kr_id, weight=weight)

    def _objective_step(self, objective: uuid.UUID) -> EventContract:
        krs = self.krs[objective]
        kr_id = self.random.choice(sorted(krs))
        common = self.at.common
        roll = self.random.random()
        if roll < 0.08:
            return self._kr_added(objective)
        if roll < 0.12:
            return goals.KeyResultEdited(
                **common(objective),
                kr_id=kr_id,
                changes={
                    "weight": float(self.random.randint(1, 4)),
                    "title": f"改 {kr_id}",
                    "owner_id": self.random.choice(["m1", "m2"]),
                    "due_date": "2026-12-31",
                },
                previous={},
                late=False,
            )
        if roll < 0.16:
            return goals.KeyResultTargetChanged(
                **common(objective),
                kr_id=kr_id,
                old_target=100.0,
                new_target=float(self.random.randint(50, 150)),
                reason="scope",
                progress_before=0.0,
                late=False,
            )
        if roll < 0.19 and len(krs) > 1:
            del krs[kr_id]
            return goals.KeyResultRemoved(**common(objective), kr_id=kr_id, reason="merged")
        if roll < 0.22:
            return goals.ObjectiveActivated(**common(objective), reason="approval_not_required")
        if roll < 0.24:
            return goals.ObjectiveEdited(
                **common(objective),
                changes={"title": f"新 {objective.int % 1000}", "visibility": "public"},
                previous={},
                late=False,
            )
        before = krs[kr_id]
        after = krs[kr_id] = round(min(150.0, before + self.random.uniform(0, 9)), 1)
        return check_in(
            self.at,
            objective,
            kr_id,
            before,
            after,
            100.0,
            0.0,
            min(1.0, after / 200),
            confidence=self.random.randint(1, 5),
        )
