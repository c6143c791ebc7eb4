"""The projection applied in big batches (as a rebuild does: writes pending in the batch, rules
off) gives exactly the tables it gives one event at a time (as the live consumer does: rules
on), on SQLite and PostgreSQL, for a history that mixes every kind of objective change with
check-ins, within and across batches."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from okr_events import GOALS_SOURCE, goals
from okr_events.base import EventContract
from okr_events.codec import InboundEvent
from okr_events.consumer_store import open_consumer_store
from okr_events.consuming import ConsumerStore
from okr_events.envelope import stable_event_id
from okr_notifier import schema
from okr_notifier.projection import NotifierProjection
from okr_notifier.rebuild import snapshot
from psycopg import sql

TOPIC = "okr.goals.events.v1"


class MixedHistory:
    """An organisation, a cycle and objectives whose events interleave at random: KRs added,
    edited (weight, title), retargeted and removed, status changes and check-ins."""

    def __init__(self, seed: int, objectives: int = 8, steps: int = 400) -> None:
        self.random = random.Random(seed)
        self.clock = datetime(2026, 10, 1, tzinfo=UTC)
        self.org, self.cycle = uuid.UUID(int=seed + 1), uuid.UUID(int=seed + 2)
        self.count, self.steps = objectives, steps
        self.versions: dict[uuid.UUID, int] = {}
        self.krs: dict[uuid.UUID, dict[str, float]] = {}  # active KRs -> current value

    def _at(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def _common(self, objective: uuid.UUID) -> dict[str, Any]:
        self.versions[objective] += 1
        return {
            "aggregate_id": objective,
            "aggregate_version": self.versions[objective],
            "occurred_at": self._at(),
            "actor": "m0",
        }

    def contracts(self) -> Iterator[EventContract]:
        org = {"aggregate_id": self.org, "actor": "root"}
        yield goals.OrganisationRegistered(
            **org, aggregate_version=1, occurred_at=self._at(), slug="o", name="Org"
        )
        cycle = {"aggregate_id": self.cycle, "actor": "root"}
        yield goals.CycleCreated(
            **cycle,
            aggregate_version=1,
            occurred_at=self._at(),
            org_id=self.org,
            name="Q4",
            kind="quarter",
            start_date=date(2026, 10, 1),
            end_date=date(2026, 12, 31),
        )
        for n in range(self.count):
            objective = uuid.UUID(int=1000 + n)
            self.versions[objective], self.krs[objective] = 0, {}
            yield goals.ObjectiveCreated(
                **self._common(objective),
                org_id=self.org,
                cycle_id=self.cycle,
                title=f"目标 {n}",
                description="",
                level="personal",
                owner_type="member",
                owner_id="m0",
                responsible_ids=["m0"],
                department_id=None,
                visibility="public",
                weight=1.0,
                created_for_report=False,
            )
            yield self._kr_added(objective)
        for _ in range(self.steps):
            yield self._step(self.random.choice(list(self.versions)))

    def _kr_added(self, objective: uuid.UUID) -> EventContract:
        kr_id = f"kr{self.versions[objective]}"
        self.krs[objective][kr_id] = 0.0
        return goals.KeyResultAdded(
            **self._common(objective),
            kr_id=kr_id,
            title=f"KR {kr_id}",
            kind="metric",
            unit="number",
            unit_label=None,
            start=0.0,
            target=100.0,
            current=0.0,
            owner_id="m0",
            due_date=None,
            weight=float(self.random.randint(1, 3)),
            late=False,
        )

    def _step(self, objective: uuid.UUID) -> EventContract:
        krs = self.krs[objective]
        kr_id = self.random.choice(sorted(krs))
        roll = self.random.random()
        if roll < 0.08:
            return self._kr_added(objective)
        if roll < 0.12:
            return goals.KeyResultEdited(
                **self._common(objective),
                kr_id=kr_id,
                changes={"weight": float(self.random.randint(1, 4)), "title": f"改 {kr_id}"},
                previous={},
                late=False,
            )
        if roll < 0.16:
            return goals.KeyResultTargetChanged(
                **self._common(objective),
                kr_id=kr_id,
                old_target=100.0,
                new_target=float(self.random.randint(50, 150)),
                reason="scope",
                progress_before=0.0,
                late=False,
            )
        if roll < 0.19 and len(krs) > 1:
            del krs[kr_id]
            return goals.KeyResultRemoved(**self._common(objective), kr_id=kr_id, reason="merged")
        if roll < 0.22:
            return goals.ObjectiveActivated(**self._common(objective), reason="approved")
        before = krs[kr_id]
        after = krs[kr_id] = round(min(150.0, before + self.random.uniform(0, 9)), 1)
        return goals.KRProgressUpdated(
            **self._common(objective),
            kr_id=kr_id,
            check_in_id=uuid.UUID(int=self.random.getrandbits(128)).hex,
            before=goals.KRValues(current=before, progress=0.0, confidence=None, risk="normal"),
            after=goals.KRValues(
                current=after,
                progress=min(1.0, after / 100),
                confidence=self.random.randint(1, 5),
                risk="normal",
            ),
            objective_progress_before=0.0,
            objective_progress_after=min(1.0, after / 200),
            note="",
            source="manual",
            late=False,
        )


def inbound(contracts: Iterator[EventContract]) -> list[InboundEvent]:
    return [
        InboundEvent(
            contract=contract,
            event_id=stable_event_id(contract.aggregate_id, contract.aggregate_version),
            source=GOALS_SOURCE,
            type=type(contract).cloudevents_type(),
            topic=TOPIC,
            partition=0,
            offset=offset,
        )
        for offset, contract in enumerate(contracts)
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[Any, Any, str]]:
    """Two empty notifier stores of one dialect."""
    if request.param == "sqlite":
        yield (
            open_consumer_store("single", sqlite_path=str(tmp_path / "single.sqlite3")),
            open_consumer_store("batch", sqlite_path=str(tmp_path / "batch.sqlite3")),
            "sqlite",
        )
        return
    dsn = request.getfixturevalue("postgres_dsn")
    names = [f"t_batch_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    opened = [open_consumer_store(n, postgres_conninfo=dsn, schema=n) for n in names]
    try:
        yield opened[0], opened[1], "postgres"
    finally:
        for store in opened:
            store.datastore.close()  # type: ignore[attr-defined]
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.mark.parametrize("batch_size", [7, 5000])
def test_batches_give_the_tables_single_events_give(
    stores: tuple[ConsumerStore, ConsumerStore, schema.Dialect], batch_size: int
) -> None:
    single, batched, dialect = stores
    events = inbound(MixedHistory(seed=batch_size).contracts())
    kinds = {type(event.contract).__name__ for event in events}
    assert {"KeyResultRemoved", "KeyResultEdited", "KeyResultTargetChanged"} <= kinds

    live = NotifierProjection(dialect)  # rules on, as the live consumer
    single.setup(live.create_statements)
    for event in events:
        assert single.apply_batch([event], lambda fresh, tx: live.handle(fresh[0], tx)) == 1

    rebuilding = NotifierProjection(dialect, rules_enabled=False)
    batched.setup(rebuilding.create_statements)
    for start in range(0, len(events), batch_size):
        chunk = events[start : start + batch_size]
        assert batched.apply_batch(chunk, rebuilding.handle_batch) == len(chunk)

    expected = snapshot(single)
    assert len(expected["progress_history"]) > len(events) // 2
    assert snapshot(batched) == expected
