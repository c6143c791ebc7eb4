"""The goals application: its use cases, each a short method, by area (one module each).

Every command loads the aggregates it needs, checks who is asking (okr_platform.access), calls one
aggregate command and saves through the write loop (okr_platform.writes). Reads of lists go
to the views (okr_goals.views); reads of one objective go to its own event stream, which is
also what auditors replay.

One class, `GoalsApplication`, is what routes and tests use: the areas are mixins over
`GoalsCore` (one event store, one write loop, one reference-data cache, the lookups every use
case starts with), so a use case is a method of the application, not a forwarding stub."""

from __future__ import annotations

from .core import DateAsISO, GoalsCore
from .cycles import CycleUseCases
from .directory import DirectoryUseCases
from .lifecycle import LifecycleUseCases
from .objectives import ObjectiveUseCases
from .reads import ReadUseCases

__all__ = ["DateAsISO", "GoalsApplication", "GoalsCore"]


class GoalsApplication(
    DirectoryUseCases, CycleUseCases, ObjectiveUseCases, LifecycleUseCases, ReadUseCases
):
    name = "goals"  # the library would name it after the class: its tables and log say "goals"
