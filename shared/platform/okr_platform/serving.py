"""How every context is served: the composition protocol (`BoundedContext`) and
`serve_contexts`, the one FastAPI app factory with /health, /ready, problem+json and tracing.

A service's own process serves its one context (`okr_goals.main`, `okr_notifier.main`); the
suite's embedded root (`okr_suite.main`) serves them all in one process. A context is a router
plus start/stop/ready; nothing here knows which contexts exist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from okr_events.tracing import configure_tracing
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

from . import problems
from .openapi import problem_responses


class BoundedContext(Protocol):
    """What serve_contexts mounts: a context's routes, its start and stop, its readiness."""

    name: str
    router: APIRouter

    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def ready(self) -> bool: ...
    def discard_broken_connections(self) -> None:
        """Drop the dead connections of the context's database pools (after an outage)."""
        ...

    def install_problem_handlers(self, app: FastAPI) -> None:
        """Handlers for the errors only this context raises (the shared ones are installed)."""
        ...


# Probes are polled every few seconds; their spans would drown the traces worth reading.
UNTRACED_URLS = r"^https?://[^/]+/health$,^https?://[^/]+/ready$"


def instrument_psycopg() -> None:
    """Trace every psycopg query, once per process.

    Must run before the contexts start: it wraps psycopg's connect, so only connections opened
    afterwards (the event store's and the read models' pools) are traced."""
    instrumentor = PsycopgInstrumentor()  # a singleton
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def serve_contexts(title: str, contexts: list[BoundedContext], service_name: str) -> FastAPI:
    """A FastAPI app serving the given contexts, with /health and /ready, traced."""
    configure_tracing(service_name)
    instrument_psycopg()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started: list[BoundedContext] = []
        try:
            for context in contexts:
                context.start()
                started.append(context)
            yield
        finally:
            for context in reversed(started):
                context.stop()

    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan)

    def discard_broken_connections() -> None:
        for context in contexts:
            context.discard_broken_connections()

    problems.install_problem_handlers(app, discard_broken_connections)
    for context in contexts:  # each context maps the errors only it raises
        context.install_problem_handlers(app)
    for context in contexts:
        app.include_router(context.router)

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], response_model=None, responses=problem_responses(503))
    def ready() -> dict[str, object] | JSONResponse:
        """Every context is started and its read side and consumers are running (readiness)."""
        states = {context.name: context.ready for context in contexts}
        if all(states.values()):
            return {"status": "ready", "contexts": states}
        return problems.problem(503, "not_ready", f"not ready: {states}", contexts=states)

    # One server span per request; ASGI send/receive spans are left out as noise on the
    # check-in hot path.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"]
    )
    return app
