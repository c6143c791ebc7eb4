"""Nobody is told twice about the same fact: not when an event is delivered again, not when
two notifier replicas handle it at the same moment (the database's unique key decides)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from okr_events import EXECUTION_SOURCE, EXECUTION_TOPIC, GOALS_SOURCE, GOALS_TOPIC
from okr_events.codec import decode, encode
from okr_events.consuming import EventProcessor, RawMessage
from okr_events.execution import KeyTaskCreated
from okr_goals.contracts import to_contract
from okr_notifier.projection import NotifierProjection
from okr_notifier.service import open_store
from okr_testkit.suite import Suite


def goals_messages(suite: Suite) -> list[RawMessage]:
    """Every event goals recorded, as the Kafka message the relay would publish."""
    goals_app = suite.notifier.feeds[0].app()
    messages = []
    for notification in goals_app.recorder.select_notifications(start=1, limit=10_000):
        contract = to_contract(goals_app.mapper.to_domain_event(notification))
        message = encode(contract, topic=GOALS_TOPIC, source=GOALS_SOURCE)
        messages.append(
            RawMessage(
                GOALS_TOPIC, 0, notification.id - 1, message.key, message.value, message.headers
            )
        )
    return messages


def decoded(raw: RawMessage):
    return decode(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=raw.headers,
    )


def count(suite: Suite, member: str) -> int:
    return len(suite.inbox(member, limit=100)["items"])


def test_a_redelivered_event_tells_nobody_again(suite: Suite):
    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"])
    suite.check_in("bailu", objective, current=30, confidence=1)
    assert count(suite, "mengbo") == 1
    service = suite.service
    # Past the runtime's own dedupe (applied versions): the handler itself, in a new
    # transaction, with the very same check-in event.
    check_in = goals_messages(suite)[-1]
    event = decoded(check_in)
    with service.store.transaction() as tx:
        service.projection.handle(event, tx)
    assert count(suite, "mengbo") == 1


def test_two_replicas_handling_the_same_events_notify_once(suite_factory):
    suite = suite_factory("postgres")
    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"])
    suite.follow("boss", objective["id"])
    suite.check_in("bailu", objective, current=30, confidence=1)
    before = count(suite, "mengbo"), count(suite, "boss")
    messages = goals_messages(suite)[-1:]
    check_in = messages[0]
    event = decoded(check_in)
    stores = [open_store(suite.service.settings) for _ in range(2)]
    handlers = [NotifierProjection("postgres") for _ in range(2)]
    try:
        # Both replicas apply the event at once, bypassing the applied-version check.
        def apply(index: int) -> None:
            with stores[index].transaction() as tx:
                handlers[index].handle(event, tx)

        for _ in range(5):
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(apply, range(2)))
    finally:
        for store in stores:
            store.datastore.close()
    assert (count(suite, "mengbo"), count(suite, "boss")) == before == (1, 1)


def test_key_task_created_reaches_followers_who_asked(suite: Suite):
    objective = suite.org.active_objective("bailu")
    kr = objective["key_results"][0]["id"]
    suite.follow("mengbo", objective["id"], key_task_created=True)
    suite.follow("boss", objective["id"])  # off by default
    suite.settle()
    task = KeyTaskCreated(
        aggregate_id=uuid.uuid4(),
        aggregate_version=1,
        occurred_at=suite.clock.now(),
        actor="bailu",
        org_id=uuid.UUID(suite.service.reads.org_id(_principal("bailu"))),
        objective_id=uuid.UUID(objective["id"]),
        kr_id=kr,
        title="每周回访10家客户",
        creator_id="bailu",
        assignee_id="mengbo",
        due_date=None,
    )
    message = encode(task, topic=EXECUTION_TOPIC, source=EXECUTION_SOURCE)
    processor = EventProcessor(suite.service.projection, suite.service.store, dead_letter=_fail)
    raw = RawMessage(EXECUTION_TOPIC, 0, 0, message.key, message.value, message.headers)
    processor.receive(raw)
    processor.receive(raw)  # delivered twice
    [notice] = suite.inbox("mengbo")["items"]
    assert notice["rule"] == "key_task_created"
    assert notice["params"]["task_title"] == "每周回访10家客户"
    assert notice["params"]["kr_title"] == "获取100家客户的5星好评"
    assert suite.inbox("boss")["items"] == []


def _principal(member: str):
    from okr_platform.principal import Principal

    return Principal(member_id=member, org="acme")


def _fail(event, raw, error) -> None:
    raise AssertionError(f"dead-lettered: {error}")
