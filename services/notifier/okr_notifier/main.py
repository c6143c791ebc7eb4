"""Entrypoint of the notifier as its own process: `uvicorn --factory okr_notifier.main:create_app`.

On the distributed stack it consumes Kafka; the suite's embedded root (okr_suite) mounts the
same context and feeds it the goals context's events in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from okr_events.kafka import KafkaSettings
from okr_events.tracing import configure_tracing
from okr_web.problems import problem
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from .api import build_router
from .clock import Clock
from .problems import install_problem_handlers
from .service import InProcessFeed, NotifierService
from .settings import NotifierSettings
from .webhook_api import build_webhook_router


@dataclass
class NotifierContext:
    """The notifier as a bounded context a composition root can mount."""

    settings: NotifierSettings = field(default_factory=NotifierSettings)
    feeds: list[InProcessFeed] = field(default_factory=list)
    clock: Clock | None = None  # tests inject a FakeClock
    kafka: KafkaSettings | None = None  # default: OKR_KAFKA_* from the environment
    name: str = "notifier"
    service: NotifierService | None = None

    def __post_init__(self) -> None:
        self.router = APIRouter()
        self.router.include_router(build_router(self._service))
        self.router.include_router(build_webhook_router(self._service))

    def _service(self) -> NotifierService:
        if self.service is None:
            raise RuntimeError("the notifier context has not been started")
        return self.service

    def start(self) -> None:
        self.service = NotifierService(
            self.settings, feeds=self.feeds, clock=self.clock, kafka=self.kafka
        )
        self.service.start()

    def stop(self) -> None:
        if self.service is not None:
            self.service.close()
            self.service = None

    @property
    def ready(self) -> bool:
        return self.service is not None and self.service.ready

    def install_problem_handlers(self, app: FastAPI) -> None:
        install_problem_handlers(app)


def create_app(
    settings: NotifierSettings | None = None, *, kafka: KafkaSettings | None = None
) -> FastAPI:
    configure_tracing("okr-notifier")
    context = NotifierContext(settings or NotifierSettings(), kafka=kafka)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context.start()
        app.state.notifier = context.service
        try:
            yield
        finally:
            context.stop()

    app = FastAPI(title="OKR notifier", version="0.1.0", lifespan=lifespan)
    app.state.context = context
    context.install_problem_handlers(app)
    app.include_router(context.router)

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], response_model=None)
    def ready() -> dict[str, object] | JSONResponse:
        """Started, and its consumers are running (readiness)."""
        if context.ready:
            return {"status": "ready"}
        return problem(503, "not_ready", "the notifier's consumers are not running")

    @app.get("/lag", tags=["operations"])
    def lag() -> dict[str, object]:
        """Per consumer: how far behind its topics it is."""
        service = context._service()
        return {
            "runners": [
                {"runner": type(r).__name__, "lag": r.lag() if hasattr(r, "lag") else None}
                for r in service.runners
            ]
        }

    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=r"^https?://[^/]+/health$,^https?://[^/]+/ready$"
    )
    return app
