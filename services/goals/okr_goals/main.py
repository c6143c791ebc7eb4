"""Entrypoint of the goals service as its own process:
`uvicorn --factory okr_goals.main:create_app`.

The suite's composition root (okr_suite) mounts the same context next to the others."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI
from okr_platform.clock import Clock
from okr_platform.serving import serve_contexts

from .api import build_router
from .service import GoalsService
from .settings import GoalsSettings


@dataclass
class GoalsContext:
    """The goals context as a composition root mounts it (okr_platform.serving.BoundedContext)."""

    settings: GoalsSettings = field(default_factory=GoalsSettings)
    clock: Clock | None = None  # None: the system clock; tests inject a FakeClock
    name: str = "goals"
    service: GoalsService | None = None

    def __post_init__(self) -> None:
        self.router: APIRouter = build_router(self._service)

    def _service(self) -> GoalsService:
        if self.service is None:
            raise RuntimeError("the goals context has not been started")
        return self.service

    def start(self) -> None:
        self.service = GoalsService(self.settings, clock=self.clock)

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
        """Goals raises only the shared errors (okr_platform.problems)."""


def create_app(settings: GoalsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    context = GoalsContext(settings or GoalsSettings(), clock=clock)
    return serve_contexts("OKR goals", [context], "okr-goals")
