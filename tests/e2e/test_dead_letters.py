"""Messages a consumer cannot use go to `<topic>.dlq` with the reason, and the partition moves on;
re-published events change nothing."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer
from eventsourcing.persistence import Tracking
from okr_events.codec import InboundEvent, header_dict
from okr_events.consuming import Tx, position_name
from okr_events.kafka_consumer import PositionsAheadOfTopic
from okr_events.ledger import Ledger
from test_resilience import assert_applied_exactly_once, check_in

from conftest import Stack, wait_for


def produce(stack: Stack, messages: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": stack.bootstrap})
    for message in messages:
        producer.produce(stack.topic, **message)
    assert producer.flush(10) == 0


def test_poison_messages_land_in_the_dlq_and_the_consumer_keeps_going(stack: Stack) -> None:
    org = stack.org()
    objective = org.active_objective()
    key = objective["id"].encode()
    good = _headers_of_a_real_message(stack, objective)
    bad_payload = good  # valid headers, a payload breaking the contract
    unknown_type = [(n, b"okr.goals.NoSuchEvent.v1" if n == "ce_type" else v) for n, v in good]
    produce(
        stack,
        [
            {"key": key, "value": b"not json at all"},  # no CloudEvents headers
            {"key": key, "value": b'{"aggregate_id": 1}', "headers": bad_payload},
            {"key": key, "value": b"{}", "headers": unknown_type},
        ],
    )
    ledger = stack.ledger_thread()
    check_in(org, objective, 77)  # published after the poison: must still be applied

    stored = stack.stored_events()
    wait_for(lambda: stack.ledger_count() == len(stored), 30, "the ledger to get past the poison")
    dead = wait_for(
        lambda: len(m := stack.read_topic(stack.topic + ".dlq", timeout=2)) >= 3 and m,
        30,
        "three dead letters",
    )
    reasons = sorted(header_dict(m.headers())["dlq_error_class"] for m in dead)
    assert reasons == ["DecodeError"] * 3
    for message in dead:
        headers = header_dict(message.headers())
        assert headers["dlq_topic"] == stack.topic
        assert headers["dlq_consumer_group"] == ledger.group_id
        assert int(headers["dlq_offset"]) >= 0
        assert headers["dlq_error"]
        assert message.key() == key  # the original message, as it was
    assert ledger.processor.dead_lettered == 3
    assert_applied_exactly_once(stack)


class FailsOnThirteen(Ledger):
    """A handler with a bug: it cannot apply a check-in to 13."""

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        after = getattr(event.contract, "after", None)
        if after is not None and after.current == 13:
            raise RuntimeError("cannot apply 13")
        super().handle(event, tx)


def test_a_handler_that_keeps_failing_dead_letters_after_retries(stack: Stack) -> None:
    org = stack.org()
    objective = org.active_objective()
    stack.relay_thread()
    ledger = stack.ledger_thread(FailsOnThirteen(), max_retries=2, retry_backoff=0.01)
    for value in (12, 13, 14):
        check_in(org, objective, value)
    stored = stack.stored_events()
    wait_for(lambda: stack.ledger_count() == len(stored) - 1, 30, "the other events applied")
    [dead] = wait_for(
        lambda: stack.read_topic(stack.topic + ".dlq", timeout=2), 30, "a dead letter"
    )
    headers = header_dict(dead.headers())
    assert headers["dlq_error_class"] == "RuntimeError"
    assert headers["dlq_error"] == "cannot apply 13"
    assert headers["ce_type"] == "okr.goals.KRProgressUpdated.v1"
    assert ledger.processor.dead_lettered == 1


def test_republished_events_change_nothing(stack: Stack) -> None:
    org = stack.org()
    objective = org.active_objective()
    check_in(org, objective, 5)
    relay = stack.relay_thread()
    stored = stack.stored_events()
    wait_for(lambda: relay.position >= len(stored), 30, "the relay")
    original = stack.read_topic()
    # What a relay crash looks like downstream: the same events again, at new offsets.
    produce(
        stack,
        [{"key": m.key(), "value": m.value(), "headers": m.headers()} for m in original],
    )
    ledger = stack.ledger_thread()
    wait_for(lambda: ledger.processor.duplicates == len(original), 30, "the duplicates to be seen")
    assert ledger.processor.applied == len(stored)
    assert_applied_exactly_once(stack)


def _headers_of_a_real_message(stack: Stack, objective: dict[str, Any]) -> list[Any]:
    """Headers the relay really wrote, to build realistic bad messages from."""
    relay = stack.relay_thread()
    stored = stack.stored_events()
    wait_for(lambda: relay.position >= len(stored), 30, "the relay")
    return list(stack.read_topic()[-1].headers())


def test_positions_beyond_the_end_of_the_topic_stop_the_consumer_loudly(stack: Stack) -> None:
    """A recreated topic (or another cluster) must not be read silently from the start."""
    store = stack.ledger_store()
    store.setup(Ledger.create_statements)
    store.insert_tracking(Tracking(position_name(stack.topic, 0), 1000))
    ledger = stack.ledger_thread()
    error = wait_for(lambda: ledger.error, 30, "the consumer to refuse")
    assert isinstance(error, PositionsAheadOfTopic)
    assert "up to offset 999, but the partition ends at 0" in str(error)
