"""Distributed tracing across the event backbone (OpenTelemetry).

A trace travels: HTTP server span -> the domain events the request caused (the W3C carrier is
stored with each event under ``trace_context``) -> the relay's span and the ``traceparent``
Kafka header -> the consumer's span. Only W3C Trace Context is carried, never baggage: stored
events are kept for ever and baggage may hold personal data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from eventsourcing.domain import TAggregateID
from eventsourcing.persistence import Mapper, StoredEvent
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "TRACE_CONTEXT_KEY",
    "TraceContextMapper",
    "TracingSettings",
    "add_span_exporter",
    "configure_tracing",
    "context_from_carrier",
    "context_from_headers",
    "event_trace_context",
    "trace_headers",
    "tracer",
]

log = logging.getLogger(__name__)

#: Key under which a stored event keeps the W3C carrier of the span that caused it.
TRACE_CONTEXT_KEY = "trace_context"
_W3C_KEYS = ("traceparent", "tracestate")
# Explicitly W3C rather than the global propagator: the stored and published format is a
# contract (other consumers read `traceparent`), whatever OTEL_PROPAGATORS says.
_W3C = TraceContextTextMapPropagator()


class TracingSettings(BaseSettings):
    """`OKR_TRACING_EXPORTER`, plus the standard OpenTelemetry variables it looks at."""

    model_config = SettingsConfigDict(
        env_prefix="OKR_TRACING_", extra="ignore", populate_by_name=True
    )

    # auto: OTLP when an OTLP endpoint is configured, otherwise spans are made but not exported.
    exporter: Literal["auto", "otlp", "console", "none"] = "auto"
    service_name: str | None = Field(None, validation_alias=AliasChoices("OTEL_SERVICE_NAME"))
    otlp_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    otlp_traces_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )

    def resolved_exporter(self) -> Literal["otlp", "console", "none"]:
        if self.exporter != "auto":
            return self.exporter
        return "otlp" if self.otlp_endpoint or self.otlp_traces_endpoint else "none"

    def traces_endpoint(self) -> str | None:
        """Like the OTLP exporter's own reading of the variables: the signal's URL wins."""
        if self.otlp_traces_endpoint:
            return self.otlp_traces_endpoint
        if self.otlp_endpoint:
            return self.otlp_endpoint.rstrip("/") + "/v1/traces"
        return None


_lock = threading.Lock()


def _sdk_provider() -> TracerProvider | None:
    provider = trace.get_tracer_provider()
    return provider if isinstance(provider, TracerProvider) else None


def configure_tracing(service_name: str, settings: TracingSettings | None = None) -> TracerProvider:
    """Install the process's TracerProvider; later calls return the one already installed.

    OpenTelemetry allows one global provider per process, and a composition root may start
    several contexts, so the first caller's service name and exporter win.
    """
    with _lock:
        existing = _sdk_provider()
        if existing is not None:
            return existing
        settings = settings or TracingSettings()
        # An SDK provider even without an exporter: spans then have real ids, so the events
        # and Kafka messages still carry a trace that downstream services can continue.
        provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: settings.service_name or service_name})
        )
        match settings.resolved_exporter():
            case "otlp":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                exporter = OTLPSpanExporter(endpoint=settings.traces_endpoint())
                provider.add_span_processor(BatchSpanProcessor(exporter))
            case "console":
                provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
            case "none":
                pass
        trace.set_tracer_provider(provider)
        installed = _sdk_provider()
        if installed is None:  # someone installed a non-SDK provider first; keep going untraced
            log.warning("a non-SDK TracerProvider is installed; okr tracing is not exporting")
            return provider
        return installed


def add_span_exporter(exporter: SpanExporter, simple: bool = True) -> TracerProvider:
    """Send every span from now on to `exporter` as well (tests: an InMemorySpanExporter).

    Processors cannot be removed again, so add one exporter per process and clear it."""
    provider = _sdk_provider() or configure_tracing("okr", TracingSettings(exporter="none"))
    processor = SimpleSpanProcessor(exporter) if simple else BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


# ---- stored events ---------------------------------------------------------------------------


def _carrier(context: Context | None = None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=context)  # writes nothing without a valid span
    return carrier


class TraceContextMapper(Mapper[TAggregateID]):
    """Stores the current span's W3C carrier with each event (MAPPER_TOPIC of an application).

    Reading needs nothing special: the key comes back as an attribute of the event, and
    decorated aggregate methods only take the parameters they declare, so replay ignores it.
    """

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        carrier = _carrier()
        if carrier and TRACE_CONTEXT_KEY not in vars(domain_event):
            # A copy, not the caller's event: the saved aggregate's events stay as they were.
            traced = object.__new__(type(domain_event))
            state = {**vars(domain_event), TRACE_CONTEXT_KEY: carrier}
            object.__setattr__(traced, "__dict__", state)
            domain_event = traced
        return super().to_stored_event(domain_event)


def event_trace_context(domain_event: Any) -> dict[str, str] | None:
    """The W3C carrier stored with an event, or None (stored outside any span, or older)."""
    carrier = getattr(domain_event, "__dict__", {}).get(TRACE_CONTEXT_KEY)
    if not isinstance(carrier, Mapping) or not isinstance(carrier.get("traceparent"), str):
        return None
    return {k: v for k, v in carrier.items() if k in _W3C_KEYS and isinstance(v, str)}


def context_from_carrier(carrier: Mapping[str, str] | None) -> Context:
    """The context to start a span in; an empty one (a new trace) when there is no parent.

    Extracting onto an empty context, not the current one, so a missing or broken header
    never makes a consumer's span the child of whatever happened to be current."""
    if not carrier:
        return Context()
    return _W3C.extract(dict(carrier), context=Context())


# ---- Kafka headers (confluent-kafka: list of (str, bytes)) -----------------------------------


def trace_headers(context: Context | None = None) -> list[tuple[str, bytes]]:
    """`traceparent`/`tracestate` headers for the given context, or the current one."""
    return [(key, value.encode("ascii")) for key, value in _carrier(context).items()]


def context_from_headers(
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, Any] | None,
) -> Context:
    """The context carried by a message's headers (confluent-kafka's Message.headers())."""
    if not headers:
        return Context()
    items = headers.items() if isinstance(headers, Mapping) else headers
    carrier: dict[str, str] = {}
    for key, value in items:
        name = key.lower()
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        # Only strings count; the first of duplicated headers wins.
        if name in _W3C_KEYS and name not in carrier and isinstance(value, str):
            carrier[name] = value
    return context_from_carrier(carrier)
