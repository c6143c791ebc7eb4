"""Entrypoint of the notifier as its own process: `uvicorn --factory okr_notifier.main:create_app`.

On the distributed stack it consumes Kafka; the suite's embedded root (okr_suite) mounts the
same context and feeds it the goals context's events in process."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI
from okr_events.kafka import KafkaSettings
from okr_platform.clock import Clock
from okr_platform.serving import serve_contexts

from .api import build_router
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
        self.router.add_api_route("/lag", self.lag, methods=["GET"], tags=["operations"])

    def lag(self) -> dict[str, object]:
        """Per consumer: how far behind its topics it is."""
        return {
            "runners": [
                {"runner": type(r).__name__, "lag": r.lag() if hasattr(r, "lag") else None}
                for r in self._service().runners
            ]
        }

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

    def discard_broken_connections(self) -> None:
        if self.service is not None:
            self.service.discard_broken_connections()

    def install_problem_handlers(self, app: FastAPI) -> None:
        """The notifier raises only the shared errors (okr_platform.problems)."""


def create_app(
    settings: NotifierSettings | None = None, *, kafka: KafkaSettings | None = None
) -> FastAPI:
    context = NotifierContext(settings or NotifierSettings(), kafka=kafka)
    return serve_contexts("OKR notifier", [context], "okr-notifier")
