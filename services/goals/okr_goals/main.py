"""Entrypoint of the goals service as its own process:
`uvicorn --factory okr_goals.main:create_app`.

The suite's composition root (okr_suite) mounts the same context next to the others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from okr_events.tracing import configure_tracing
from okr_web import problems as common
from okr_web.problems import problem
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

from .api import build_router
from .problems import install_problem_handlers
from .service import GoalsService
from .settings import GoalsSettings


@dataclass
class GoalsContext:
    """What a composition root needs of a bounded context: routes, start, stop, readiness."""

    settings: GoalsSettings = field(default_factory=GoalsSettings)
    name: str = "goals"
    service: GoalsService | None = None

    def __post_init__(self) -> None:
        self.router: APIRouter = build_router(self._service)

    def _service(self) -> GoalsService:
        if self.service is None:
            raise RuntimeError("the goals context has not been started")
        return self.service

    def start(self) -> None:
        self.service = GoalsService(self.settings)

    def stop(self) -> None:
        if self.service is not None:
            self.service.close()
            self.service = None

    @property
    def ready(self) -> bool:
        return self.service is not None and self.service.ready

    def install_problem_handlers(self, app: FastAPI) -> None:
        install_problem_handlers(app)


class BoundedContext(Protocol):
    """What serve_contexts mounts: GoalsContext, and the other services' contexts."""

    name: str
    router: APIRouter

    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def ready(self) -> bool: ...
    def install_problem_handlers(self, app: FastAPI) -> None: ...


# Probes are polled every few seconds; their spans would drown the traces worth reading.
UNTRACED_URLS = r"^https?://[^/]+/health$,^https?://[^/]+/ready$"


def instrument_psycopg() -> None:
    """Trace every psycopg query, once per process.

    Must run before the contexts start: it wraps psycopg's connect, so only connections opened
    afterwards (the event store's and the views' pools) are traced."""
    instrumentor = PsycopgInstrumentor()  # a singleton
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def serve_contexts(
    title: str, contexts: list[BoundedContext], service_name: str = "okr-goals"
) -> FastAPI:
    """A FastAPI app serving the given contexts, with /health and /ready, traced."""
    configure_tracing(service_name)
    instrument_psycopg()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for context in contexts:
            context.start()
        try:
            yield
        finally:
            for context in reversed(contexts):
                context.stop()

    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan)
    common.install_problem_handlers(app)
    for context in contexts:  # each context maps its own errors to problem+json
        context.install_problem_handlers(app)
    for context in contexts:
        app.include_router(context.router)

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], response_model=None)
    def ready() -> dict[str, object] | JSONResponse:
        """Every context is started and its views are running (readiness)."""
        states = {c.name: c.ready for c in contexts}
        if all(states.values()):
            return {"status": "ready", "contexts": states}
        return problem(503, "not_ready", f"not ready: {states}", contexts=states)

    # One server span per request; ASGI send/receive spans are left out as noise on the
    # check-in hot path.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"]
    )
    return app


def create_app(settings: GoalsSettings | None = None) -> FastAPI:
    return serve_contexts("OKR goals", [GoalsContext(settings or GoalsSettings())], "okr-goals")
