"""A parallel rebuild (worker processes, each a share of the partitions) gives exactly the
projections, positions and applied versions of a rebuild in one process, on real PostgreSQL
and Kafka, rebuild after rebuild; a worker's failure is raised in the caller with its
traceback."""

from __future__ import annotations

import itertools
import multiprocessing
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from okr_events import GOALS_SOURCE, goals
from okr_events.base import EventContract
from okr_events.codec import encode
from okr_events.consuming import ConsumerStore
from okr_events.kafka import KafkaSettings, ensure_topics
from okr_notifier.application import FollowsApplication
from okr_notifier.domain.follow import Follow
from okr_notifier.rebuild import RebuildWorkerFailed, rebuild, snapshot
from okr_notifier.service import open_store
from okr_notifier.settings import NotifierSettings
from okr_testkit.notifier import postgres_settings
from psycopg import sql

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

PARTITIONS = 6
OBJECTIVES = 12
CHECK_INS = 300


class History:
    """A small goals history: an organisation, a cycle, objectives with two KRs each, some
    edits, target changes and removals, and check-ins (consistent versions per aggregate)."""

    def __init__(self) -> None:
        self.random = random.Random(7)
        self.org = uuid.uuid4()
        self.cycle = uuid.uuid4()
        self.objectives: dict[uuid.UUID, int] = {}  # id -> last version
        self.clock = datetime(2026, 10, 1, tzinfo=UTC)

    def _at(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def contracts(self) -> Iterator[EventContract]:
        org = {"aggregate_id": self.org, "actor": "root"}
        yield goals.OrganisationRegistered(
            **org, aggregate_version=1, occurred_at=self._at(), slug="o", name="Org"
        )
        members = [f"m{n}" for n in range(6)]
        for version, member in enumerate(members, start=2):
            yield goals.MemberAdded(
                **org,
                aggregate_version=version,
                occurred_at=self._at(),
                member_id=member,
                name=f"成员 {member}",
                department_id="d",
                manager_id=None,
                time_zone="Asia/Shanghai",
                roles=["employee"],
                email=None,
            )
        cycle = {"aggregate_id": self.cycle, "actor": "root"}
        yield goals.CycleCreated(
            **cycle,
            aggregate_version=1,
            occurred_at=self._at(),
            org_id=self.org,
            name="2026 Q4",
            kind="quarter",
            start_date=date(2026, 10, 1),
            end_date=date(2026, 12, 31),
        )
        yield goals.CycleActivated(**cycle, aggregate_version=2, occurred_at=self._at())
        for n in range(OBJECTIVES):
            yield from self._objective(n, members[n % len(members)])
        yield from self._check_ins()

    def _objective(self, n: int, owner: str) -> Iterator[EventContract]:
        objective = uuid.uuid4()
        common = {"aggregate_id": objective, "actor": owner}
        version = itertools.count(1)
        yield goals.ObjectiveCreated(
            **common,
            aggregate_version=next(version),
            occurred_at=self._at(),
            org_id=self.org,
            cycle_id=self.cycle,
            title=f"目标 {n}",
            description="",
            level="personal",
            owner_type="member",
            owner_id=owner,
            responsible_ids=[owner],
            department_id="d",
            visibility="public",
            weight=1.0,
            created_for_report=False,
        )
        for k in range(2):
            yield goals.KeyResultAdded(
                **common,
                aggregate_version=next(version),
                occurred_at=self._at(),
                kr_id=f"kr{k}",
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
        yield goals.ObjectiveActivated(
            **common,
            aggregate_version=next(version),
            occurred_at=self._at(),
            reason="approval_not_required",
        )
        if n % 3 == 0:
            yield goals.ObjectiveEdited(
                **common,
                aggregate_version=next(version),
                occurred_at=self._at(),
                changes={"title": f"新标题 {n}"},
                previous={"title": f"目标 {n}"},
                late=False,
            )
            yield goals.KeyResultTargetChanged(
                **common,
                aggregate_version=next(version),
                occurred_at=self._at(),
                kr_id="kr1",
                old_target=100.0,
                new_target=80.0,
                reason="scope",
                progress_before=0.0,
                late=False,
            )
        self.objectives[objective] = next(version) - 1

    def _check_ins(self) -> Iterator[EventContract]:
        values: dict[tuple[uuid.UUID, str], float] = {}
        for _ in range(CHECK_INS):
            objective = self.random.choice(list(self.objectives))
            kr = self.random.choice(["kr0", "kr1"])
            before = values.get((objective, kr), 0.0)
            after = min(100.0, before + self.random.randint(1, 9))
            values[(objective, kr)] = after
            self.objectives[objective] += 1
            yield goals.KRProgressUpdated(
                aggregate_id=objective,
                aggregate_version=self.objectives[objective],
                occurred_at=self._at(),
                actor="m0",
                kr_id=kr,
                check_in_id=uuid.uuid4().hex,
                before=goals.KRValues(
                    current=before, progress=before / 100, confidence=None, risk="normal"
                ),
                after=goals.KRValues(
                    current=after, progress=after / 100, confidence=3, risk="normal"
                ),
                objective_progress_before=0.0,
                objective_progress_after=0.5,
                note="",
                source="manual",
                late=False,
            )


def produce(kafka: KafkaSettings, topic: str, contracts: Iterator[EventContract]) -> int:
    """As the relay does (key = aggregate id), idempotently: a retried send can neither repeat
    nor reorder a partition's messages."""
    producer = Producer(
        {"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 5, "enable.idempotence": True}
    )
    n = 0
    for contract in contracts:
        message = encode(contract, topic=topic, source=GOALS_SOURCE)
        producer.produce(topic, key=message.key, value=message.value, headers=message.headers)
        n += 1
    assert producer.flush(30) == 0
    return n


def partition_sizes(kafka: KafkaSettings, topic: str) -> list[int]:
    consumer = Consumer(kafka.common() | {"group.id": f"count-{uuid.uuid4().hex}"})
    try:
        marks = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in range(PARTITIONS)
        ]
    finally:
        consumer.close()
    return [high - low for low, high in marks]


@pytest.fixture
def notifier_settings(
    postgres_dsn: str, kafka_bootstrap: str, kafka_topic_prefix: str
) -> Iterator[NotifierSettings]:
    """The notifier on a schema of its own, consuming a fresh 6-partition goals topic."""
    topic = f"{kafka_topic_prefix}okr.goals.events.v1"
    schema = f"t_rebuild_{uuid.uuid4().hex[:10]}"
    settings = postgres_settings(postgres_dsn, schema, topics=[topic], group_id=schema)
    try:
        yield settings
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_partitions=PARTITIONS)


def state(store: ConsumerStore, topic: str) -> tuple[Any, ...]:
    """The projections, the positions and the applied versions."""
    applied = store.query("SELECT aggregate_id, version FROM consumer_applied_versions")
    return (
        snapshot(store),
        [store.next_offset(topic, p) for p in range(PARTITIONS)],
        sorted((row["aggregate_id"], row["version"]) for row in applied),
    )


def rebuild_workers() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("okr-notifier-")]


def test_a_two_worker_rebuild_equals_a_one_worker_rebuild(
    notifier_settings: NotifierSettings, kafka: KafkaSettings
) -> None:
    topic = notifier_settings.topics[0]
    ensure_topics(kafka, [topic])
    history = History()
    events = produce(kafka, topic, history.contracts())
    sizes = partition_sizes(kafka, topic)
    assert sum(sizes[0::2]) and sum(sizes[1::2])  # both workers have something to replay
    store = open_store(notifier_settings)
    follows = FollowsApplication(env=notifier_settings.event_store_env())
    try:
        follows.save(
            *(Follow.start(history.org, "m1", objective, None) for objective in history.objectives)
        )
        one = rebuild(notifier_settings, store, follows, kafka, batch_size=50, workers=1)
        alone = state(store, topic)

        calls: list[tuple[int, int]] = []
        two = rebuild(
            notifier_settings,
            store,
            follows,
            kafka,
            batch_size=50,
            workers=2,
            progress=lambda done, total: calls.append((done, total)),
        )
        assert state(store, topic) == alone
        # Again: the workers open their stores after the drop, which keeps the tracking
        # table's migration marker (else the library renames the table, once).
        again = rebuild(notifier_settings, store, follows, kafka, batch_size=50, workers=2)
        assert state(store, topic) == alone
        backups = store.query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name LIKE :backup",
            {"backup": "bkup%"},
        )
        assert not backups
    finally:
        follows.close()
        store.datastore.close()  # type: ignore[attr-defined]

    for result in (one, two, again):
        assert (result.events, result.applied, result.duplicates) == (events, events, 0)
        assert result.dead_lettered == 0
    projections = alone[0]
    assert len(projections["objectives"]) == OBJECTIVES
    assert len(projections["follows"]) == OBJECTIVES
    assert len(projections["progress_history"]) >= 2 * CHECK_INS
    assert calls[-1] == (events, events)
    assert all(total == events for _, total in calls)  # summed once every worker said its total
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert not rebuild_workers()


def test_a_failing_worker_is_raised_in_the_caller_with_its_traceback(
    notifier_settings: NotifierSettings, kafka: KafkaSettings
) -> None:
    # A topic that does not exist (the brokers do not create topics on demand).
    settings = notifier_settings.model_copy(update={"topics": ["okr.no-such-topic.v1"]})
    store = open_store(settings)
    follows = FollowsApplication(env=settings.event_store_env())
    try:
        with pytest.raises(RebuildWorkerFailed) as failure:
            rebuild(settings, store, follows, kafka, workers=2)
    finally:
        follows.close()
        store.datastore.close()  # type: ignore[attr-defined]
    assert "Traceback" in str(failure.value)
    assert "KafkaException" in str(failure.value)
    assert not rebuild_workers()
