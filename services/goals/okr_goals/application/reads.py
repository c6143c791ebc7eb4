"""Reads: one objective from its own event stream (now, at a version, as of a moment; its
history, which is what auditors replay), and lists from the views, caught up with the
request first (the runtime's read-your-writes wait; okr_platform.errors.ReadSideBehind, a
503, when they are not)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from okr_platform.access import can_see, may_act
from okr_platform.errors import NotFound, ReadSideBehind
from okr_platform.principal import Principal

from ..domain.objective import Objective
from ..domain.organisation import organisation_id
from .core import GoalsCore

if TYPE_CHECKING:
    from ..views import GoalViews


class ReadUseCases(GoalsCore):
    def get_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> Objective:
        """The objective now, at a past version, or as it was at a past moment."""
        org = self._organisation(p)
        current = self._visible_objective(p, org, objective_id, copy=False)
        if as_of is not None:
            version = self._version_at(objective_id, as_of)
        if version is None or version == current.version:
            return current
        if not 1 <= version <= current.version:
            raise NotFound(
                f"objective has versions 1 to {current.version}, not {version}", field="version"
            )
        return self.repository.get(objective_id, version=version)

    def _version_at(self, objective_id: uuid.UUID, as_of: datetime) -> int:
        version = None
        for stored in self.events_of(objective_id):
            if stored.timestamp > as_of:
                break
            version = stored.originator_version
        if version is None:
            raise NotFound("the objective did not exist yet at that time", field="as_of")
        return version

    def events_of(self, aggregate_id: uuid.UUID) -> list[Any]:
        return list(self.repository.event_store.get(aggregate_id))

    def history(self, p: Principal, objective_id: uuid.UUID) -> list[Any]:
        """The objective's ordered raw events (what an auditor replays)."""
        self._visible_objective(p, self._organisation(p), objective_id, copy=False)
        return self.events_of(objective_id)

    def _views(self) -> GoalViews:
        """The views, caught up with every event recorded before this query began."""
        if self.views is None:
            raise ReadSideBehind("the goals views are not running")
        position = self.recorder.max_notification_id()
        if not self.views.wait_until(position, self.read_timeout):
            raise ReadSideBehind("the goals views are behind; try again shortly")
        return self.views

    def list_cycles(self, p: Principal) -> list[dict[str, Any]]:
        views = self._views()
        if not may_act(p, self._find_organisation(p)):
            return []
        return views.cycles(str(organisation_id(p.org)))

    def list_objectives(
        self,
        p: Principal,
        *,
        cycle_id: str | None = None,
        department_id: str | None = None,
        owner_id: str | None = None,
        status: str | None = None,
        level: str | None = None,
    ) -> list[dict[str, Any]]:
        """Objectives the caller may see, filtered; department includes sub-departments."""
        views = self._views()
        org = self._find_organisation(p)
        if org is None:
            return []
        departments = sorted(org.department_subtree(department_id)) if department_id else None
        rows = views.objectives(
            str(org.id),
            cycle_id=cycle_id,
            department_ids=departments,
            status=status,
            level=level,
        )
        return [
            row
            for row in rows
            if (owner_id is None or owner_id in row["responsible_ids"])
            and can_see(
                p,
                org,
                visibility=row["visibility"],
                owner_ids=row["responsible_ids"],
                department_id=row["department_id"],
            )
        ]

    def activity(self, p: Principal, objective_id: uuid.UUID) -> list[dict[str, Any]]:
        self._visible_objective(p, self._organisation(p), objective_id, copy=False)
        return self._views().activity(str(objective_id))
