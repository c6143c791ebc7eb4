"""Tracing: a request's server span, the trace context stored with the events it caused (read
back as the relay will, from the notification log), psycopg spans in the same trace on
PostgreSQL, and the Kafka header helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, UUIDAsHex
from okr_events.tracing import (
    TRACE_CONTEXT_KEY,
    TraceContextMapper,
    TracingSettings,
    add_span_exporter,
    configure_tracing,
    context_from_carrier,
    context_from_headers,
    event_trace_context,
    trace_headers,
    tracer,
)
from okr_goals.application import GoalsApplication
from okr_goals.domain.objective import Objective
from okr_platform.principal import Principal
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

CHECK_IN_ROUTE = "/objectives/{objective_id}/key-results/{kr_id}/check-ins"
PSYCOPG_SCOPE = "opentelemetry.instrumentation.psycopg"


@cache
def _exporter() -> InMemorySpanExporter:
    # Processors cannot be removed from the process's provider: one exporter, cleared per test.
    exporter = InMemorySpanExporter()
    add_span_exporter(exporter)
    return exporter


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = _exporter()
    exporter.clear()
    yield exporter
    exporter.clear()


def trace_id_of(traceparent: str) -> int:
    return int(traceparent.split("-")[1], 16)


def parent_id_of(traceparent: str) -> int:
    return int(traceparent.split("-")[2], 16)


def server_spans(spans: InMemorySpanExporter, route: str) -> list[ReadableSpan]:
    return [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.SERVER and (s.attributes or {}).get("http.route") == route
    ]


def stored_events_of(app: GoalsApplication, aggregate_id: uuid.UUID) -> list[Any]:
    """Decoded from the notification log, as the relay reads them."""
    notifications = app.recorder.select_notifications(start=None, limit=10_000)
    return [app.mapper.to_domain_event(n) for n in notifications if n.originator_id == aggregate_id]


# ---- through HTTP: server span -> stored event -> psycopg spans -----------------------------


def test_check_in_stores_the_trace_of_its_request(org, spans):
    o = org.active_objective()
    kr_id = o["key_results"][0]["id"]
    spans.clear()

    r = org.client.post(
        f"/objectives/{o['id']}/key-results/{kr_id}/check-ins",
        json={"current": 60, "confidence": 4, "note": "本周新增20家好评"},
        headers=org.h("bailu"),
    )
    assert r.status_code == 201, r.text
    version = r.json()["objective"]["version"]
    [server] = server_spans(spans, CHECK_IN_ROUTE)
    assert server.context is not None and server.parent is None  # no traceparent was sent
    assert server.resource.attributes["service.name"]

    reader = GoalsApplication(env=org.settings.event_store_env())
    try:
        oid = uuid.UUID(o["id"])
        events = stored_events_of(reader, oid)
        assert [e.originator_version for e in events] == list(range(1, version + 1))
        checked_in = events[-1]
        assert type(checked_in).__name__ == "KRProgressUpdated"
        carrier = event_trace_context(checked_in)
        assert carrier is not None, vars(checked_in)
        assert trace_id_of(carrier["traceparent"]) == server.context.trace_id
        # Stored under the server span itself (send/receive spans are not made).
        assert parent_id_of(carrier["traceparent"]) == server.context.span_id
        # Every event of the objective came from a request; the earlier ones from other traces.
        earlier = [event_trace_context(e) for e in events[:-1]]
        assert all(earlier)
        assert server.context.trace_id not in {trace_id_of(c["traceparent"]) for c in earlier if c}

        # The aggregate still replays from the store, the extra attribute ignored.
        objective = reader.repository.get(oid)
        assert isinstance(objective, Objective)
        assert objective.version == version
        assert not hasattr(objective, TRACE_CONTEXT_KEY)
        assert objective.key_results[kr_id].current == 60
    finally:
        reader.close()

    # Operational metadata stays out of the audit history (and the activity view).
    history = org.client.get(f"/objectives/{o['id']}/history", headers=org.h("bailu")).json()
    assert len(history) == version
    assert all(TRACE_CONTEXT_KEY not in h["payload"] for h in history)
    assert history[-1]["payload"]["note"] == "本周新增20家好评"
    activity = org.client.get(f"/objectives/{o['id']}/activity", headers=org.h("bailu")).json()
    assert len(activity) == version
    assert all(TRACE_CONTEXT_KEY not in str(a) for a in activity)

    if not org.settings.embedded:
        db_spans = [
            s
            for s in spans.get_finished_spans()
            if s.instrumentation_scope is not None
            and s.instrumentation_scope.name == PSYCOPG_SCOPE
            and s.context is not None
            and s.context.trace_id == server.context.trace_id
        ]
        assert db_spans, "no psycopg span in the request's trace"
        assert all(s.kind is SpanKind.CLIENT for s in db_spans)
        statements = {str((s.attributes or {}).get("db.statement", "")): s for s in db_spans}
        # The write transaction: the table lock that orders notification ids, the NOTIFY and
        # the INSERT (the library passes its query by keyword, which the instrumentation does
        # not read: that span has no db.statement and is named after the database).
        schema = org.settings.postgres_schema
        lock = statements[f'LOCK TABLE "{schema}"."goals_events" IN EXCLUSIVE MODE']
        notify = statements['NOTIFY "goals_events"']
        insert = statements[""]
        for write in (lock, notify, insert):
            assert write.parent is not None and write.parent.span_id == server.context.span_id
        assert insert.name == org.settings.postgres_dbname
        assert any(sql.startswith(f'SELECT * FROM "{schema}"."goals_events"') for sql in statements)


def test_incoming_traceparent_is_continued_into_the_events(org, spans):
    o = org.objective()
    caller = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    headers = org.h("bailu") | {
        k: v.decode() for k, v in trace_headers(trace.set_span_in_context(NonRecordingSpan(caller)))
    }
    r = org.client.post(f"/objectives/{o['id']}/submit", headers=headers)
    assert r.status_code == 200, r.text

    reader = GoalsApplication(env=org.settings.event_store_env())
    try:
        submitted = stored_events_of(reader, uuid.UUID(o["id"]))[-1]
    finally:
        reader.close()
    carrier = event_trace_context(submitted)
    assert carrier is not None
    assert trace_id_of(carrier["traceparent"]) == caller.trace_id
    [server] = server_spans(spans, "/objectives/{objective_id}/submit")
    assert server.parent is not None and server.parent.span_id == caller.span_id


def test_events_written_outside_any_span_carry_no_trace_context(org, spans):
    o = org.active_objective()
    kr_id = o["key_results"][0]["id"]
    assert not trace.get_current_span().get_span_context().is_valid

    writer = GoalsApplication(env=org.settings.event_store_env())
    try:
        oid = uuid.UUID(o["id"])
        objective, _ = writer.check_in(
            Principal(member_id="bailu", org="acme"), oid, kr_id, current=30
        )
        last = stored_events_of(writer, oid)[-1]
        assert last.originator_version == objective.version
        assert TRACE_CONTEXT_KEY not in vars(last)
        assert event_trace_context(last) is None
        assert writer.repository.get(oid).key_results[kr_id].current == 30
    finally:
        writer.close()


def test_probes_are_not_traced(sqlite_org, spans):
    assert sqlite_org.client.get("/health").status_code == 200
    assert sqlite_org.client.get("/ready").status_code == 200
    assert sqlite_org.client.get("/objectives", headers=sqlite_org.h("bailu")).status_code == 200
    routes = [
        (s.attributes or {}).get("http.route")
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.SERVER
    ]
    assert routes == ["/objectives"]


# ---- the mapper on its own -------------------------------------------------------------------


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name


def test_mapper_stores_a_copy_and_leaves_the_event_alone(spans):
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    mapper: TraceContextMapper[uuid.UUID] = TraceContextMapper(transcoder=transcoder)
    dog = Dog(name="旺财")
    [registered] = dog.collect_events()
    with tracer("test").start_as_current_span("save") as span:
        stored = mapper.to_stored_event(registered)
        ids = span.get_span_context()
    assert TRACE_CONTEXT_KEY not in vars(registered)  # the aggregate's own event is untouched
    decoded = mapper.to_domain_event(stored)
    carrier = event_trace_context(decoded)
    assert carrier is not None
    assert (trace_id_of(carrier["traceparent"]), parent_id_of(carrier["traceparent"])) == (
        ids.trace_id,
        ids.span_id,
    )
    copy = decoded.mutate(None)
    assert isinstance(copy, Dog) and copy.name == "旺财"

    # Outside a span nothing is added; an event that already has one keeps it.
    assert TRACE_CONTEXT_KEY not in vars(
        mapper.to_domain_event(mapper.to_stored_event(dog_event()))
    )
    with tracer("test").start_as_current_span("again"):
        again = mapper.to_domain_event(mapper.to_stored_event(decoded))
    assert event_trace_context(again) == carrier


def dog_event() -> Any:
    [registered] = Dog(name="小黑").collect_events()
    return registered


@pytest.mark.parametrize(
    "value",
    [None, "00-abc", {}, {"traceparent": 1}, ["traceparent"]],
)
def test_event_trace_context_tolerates_anything_stored(value):
    e = dog_event()
    e.__dict__[TRACE_CONTEXT_KEY] = value
    assert event_trace_context(e) is None


# ---- Kafka headers ---------------------------------------------------------------------------


def test_headers_round_trip_keeps_the_trace(spans):
    with tracer("test").start_as_current_span("relay") as relay:
        headers = trace_headers()
    assert [k for k, _ in headers] == ["traceparent"]
    assert all(isinstance(v, bytes) for _, v in headers)

    context = context_from_headers(headers)
    remote = trace.get_current_span(context).get_span_context()
    assert remote.is_valid and remote.is_remote
    assert (remote.trace_id, remote.span_id) == (
        relay.get_span_context().trace_id,
        relay.get_span_context().span_id,
    )
    with tracer("test").start_as_current_span("consume", context=context) as consumer:
        pass
    assert consumer.get_span_context().trace_id == relay.get_span_context().trace_id
    [finished] = [s for s in spans.get_finished_spans() if s.name == "consume"]
    assert (
        finished.parent is not None and finished.parent.span_id == relay.get_span_context().span_id
    )


def test_headers_carry_tracestate_and_tolerate_str_none_and_case():
    parent = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("okr", "goals")]),
    )
    headers = trace_headers(trace.set_span_in_context(NonRecordingSpan(parent)))
    assert dict(headers) == {
        "traceparent": b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": b"okr=goals",
    }
    mixed: list[tuple[str, Any]] = [
        ("content-type", b"application/json"),
        ("ce_id", None),
        ("TraceParent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("tracestate", None),
        ("tracestate", b"okr=goals"),
        ("traceparent", b"00-ffffffffffffffffffffffffffffffff-00f067aa0ba902b7-01"),  # ignored
    ]
    extracted = trace.get_current_span(context_from_headers(mixed)).get_span_context()
    assert (extracted.trace_id, extracted.span_id) == (parent.trace_id, parent.span_id)
    assert extracted.trace_state.get("okr") == "goals"


@pytest.mark.parametrize(
    "headers",
    [None, [], [("ce_id", b"1")], [("traceparent", None)], [("traceparent", b"garbage")]],
)
def test_headers_without_a_trace_start_a_new_one(headers, spans):
    # Even inside a span: a message without a parent must not join the current trace.
    with tracer("test").start_as_current_span("poll loop"):
        context = context_from_headers(headers)
    assert not trace.get_current_span(context).get_span_context().is_valid


def test_no_headers_outside_a_span():
    assert trace_headers() == []
    assert not trace.get_current_span(context_from_carrier(None)).get_span_context().is_valid


# ---- settings and the provider ---------------------------------------------------------------

OTEL_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OKR_TRACING_EXPORTER",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_auto_exporter_is_none_without_an_endpoint(clean_env):
    settings = TracingSettings()
    assert (settings.resolved_exporter(), settings.service_name) == ("none", None)


def test_auto_exporter_is_otlp_with_the_standard_variables(clean_env):
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    clean_env.setenv("OTEL_SERVICE_NAME", "goals-eu")
    settings = TracingSettings()
    assert settings.resolved_exporter() == "otlp"
    assert settings.traces_endpoint() == "http://collector:4318/v1/traces"
    assert settings.service_name == "goals-eu"
    clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:4318/traces")
    assert TracingSettings().traces_endpoint() == "http://other:4318/traces"


def test_explicit_exporter_wins(clean_env):
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    clean_env.setenv("OKR_TRACING_EXPORTER", "none")
    assert TracingSettings().resolved_exporter() == "none"
    clean_env.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    clean_env.setenv("OKR_TRACING_EXPORTER", "console")
    assert TracingSettings().resolved_exporter() == "console"
    assert TracingSettings(exporter="otlp").resolved_exporter() == "otlp"


def test_configure_tracing_twice_keeps_the_first_provider():
    first = configure_tracing("okr-goals")
    again = configure_tracing("something-else", TracingSettings(exporter="console"))
    assert again is first is trace.get_tracer_provider()
