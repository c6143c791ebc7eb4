"""A goals command over HTTP becomes exactly one Kafka message, with the right key, CloudEvents
headers and a payload valid against its published JSON Schema; one trace covers the request,
the relay and the consumer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import jsonschema
from okr_events.codec import header_dict
from okr_events.envelope import stable_event_id
from okr_events.tracing import add_span_exporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conftest import Stack, wait_for

SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "events" / "schemas"
EXPORTER = InMemorySpanExporter()
add_span_exporter(EXPORTER)


def test_a_check_in_becomes_exactly_one_valid_message(stack: Stack) -> None:
    org = stack.org()
    objective = org.active_objective()
    kr = objective["key_results"][0]
    relay = stack.relay_thread()

    response = org.client.post(
        f"/objectives/{objective['id']}/key-results/{kr['id']}/check-ins",
        json={"current": 40, "confidence": 4, "note": "40 家五星"},
        headers=org.h("bailu"),
    )
    assert response.status_code == 201, response.text
    version = response.json()["objective"]["version"]
    stored = stack.stored_events()
    wait_for(lambda: relay.position >= len(stored), 20, "the relay to publish every event")

    messages = stack.read_topic()
    assert len(messages) == len(stored)  # one message per recorded event, no more
    ids = [header_dict(m.headers())["ce_id"] for m in messages]
    assert len(set(ids)) == len(ids)

    check_in_id = stable_event_id(uuid.UUID(objective["id"]), version)
    [message] = [m for m in messages if header_dict(m.headers())["ce_id"] == check_in_id]
    headers = header_dict(message.headers())
    assert message.key() == objective["id"].encode()
    assert headers["ce_type"] == "okr.goals.KRProgressUpdated.v1"
    assert headers["ce_source"] == "/okr/goals"
    assert headers["ce_subject"] == objective["id"]
    assert headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    assert headers["ce_dataschema"] == "urn:okr:events:schema:okr.goals.KRProgressUpdated.v1"
    assert headers["ce_time"].endswith("+00:00")
    assert headers["traceparent"].startswith("00-")

    payload = json.loads(message.value())
    schema = json.loads((SCHEMAS / "okr.goals.KRProgressUpdated.v1.json").read_text())
    jsonschema.validate(payload, schema, cls=jsonschema.Draft202012Validator)
    assert payload["aggregate_id"] == objective["id"]
    assert payload["aggregate_version"] == version
    assert payload["after"]["current"] == 40
    assert payload["actor"] == "bailu"


def test_one_trace_from_the_http_request_through_the_relay_to_the_consumer(stack: Stack) -> None:
    org = stack.org()
    objective = org.active_objective()
    kr = objective["key_results"][0]
    stack.relay_thread()
    ledger = stack.ledger_thread()
    # The backlog (the organisation's events) is applied as a batch: one span linked to their
    # traces. Once it is applied, the check-in arrives alone and gets a span of its own, a
    # child of the relay's.
    stored = len(stack.stored_events())
    wait_for(lambda: stack.ledger_count() == stored, 30, "the ledger to apply the backlog")
    backlog = [
        s
        for s in EXPORTER.get_finished_spans()
        if s.attributes.get("messaging.destination.name") == stack.topic
    ]
    published = {s.context.span_id for s in backlog if s.name.endswith(" publish")}
    reached = set()
    for span in backlog:
        if span.name.endswith(" process"):
            reached |= {link.context.span_id for link in span.links}
            if span.parent is not None:
                reached.add(span.parent.span_id)
    assert len(published) == stored
    assert published <= reached  # every event's trace reaches its consumer span
    EXPORTER.clear()

    response = org.client.post(
        f"/objectives/{objective['id']}/key-results/{kr['id']}/check-ins",
        json={"current": 55},
        headers=org.h("bailu"),
    )
    assert response.status_code == 201, response.text
    version = response.json()["objective"]["version"]
    event_id = stable_event_id(uuid.UUID(objective["id"]), version)

    def consumer_span():
        for span in EXPORTER.get_finished_spans():
            if (
                span.name.endswith(" process")
                and span.attributes.get("messaging.message.id") == event_id
            ):
                return span
        return None

    consumed = wait_for(consumer_span, 30, "the ledger to apply the check-in")
    spans = EXPORTER.get_finished_spans()
    server = [s for s in spans if s.kind.name == "SERVER" and "check-ins" in s.name]
    assert len(server) == 1
    trace_id = server[0].context.trace_id
    publish = [s for s in spans if s.name.endswith(" publish") and s.context.trace_id == trace_id]
    assert len(publish) == 1
    assert publish[0].parent is not None
    assert consumed.context.trace_id == trace_id
    assert consumed.parent.span_id == publish[0].context.span_id
    assert ledger.processor.applied >= 1
