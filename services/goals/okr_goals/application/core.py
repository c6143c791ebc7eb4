"""What every area of the goals application shares: the event store, the write loop, the
reference data, the views, and the lookups every use case starts with (the caller's
organisation, a cycle of it, an objective the caller may see)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder, Transcoding
from okr_platform.access import can_see
from okr_platform.errors import NotFound
from okr_platform.principal import Principal
from okr_platform.writes import OptimisticWrites

from ..domain.cycle import Cycle
from ..domain.objective import Objective
from ..domain.organisation import Organisation, organisation_id
from .reference import ReferenceData

if TYPE_CHECKING:
    from ..views import GoalViews


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class GoalsCore(Application[uuid.UUID]):
    name = "goals"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        read_timeout: float = 5.0,
        reference_data_max_age: float = 0.0,
    ) -> None:
        super().__init__(env)
        self.reference = ReferenceData(self.repository, reference_data_max_age)
        self.writes = OptimisticWrites(self.save)
        self.views: GoalViews | None = None  # attached by the service wiring
        self.read_timeout = read_timeout

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def save(self, *objects: Any, **kwargs: Any) -> Any:
        recordings = super().save(*objects, **kwargs)
        for obj in objects:  # what this process changes, it sees at once
            self.reference.forget(getattr(obj, "id", None))
        return recordings

    # ---- lookups -----------------------------------------------------------------------------

    def _find_organisation(self, p: Principal, *, copy: bool = False) -> Organisation | None:
        """The organisation; shared with the cache (read-only) unless a copy is asked for."""
        try:
            org = self.reference.get(organisation_id(p.org), copy=copy)
        except AggregateNotFoundError:
            return None
        assert isinstance(org, Organisation)
        return org

    def _organisation(self, p: Principal) -> Organisation:
        org = self._find_organisation(p)
        if org is None:
            raise NotFound(
                f"organisation {p.org!r} has no directory yet: an admin adds members first",
                field="org",
            )
        return org

    def _cycle(
        self, org: Organisation, cycle_id: uuid.UUID, field: str = "cycle_id", copy: bool = False
    ) -> Cycle:
        try:
            cycle = self.reference.get(cycle_id, copy=copy)
        except AggregateNotFoundError:
            raise NotFound(f"unknown cycle {cycle_id}", field=field) from None
        if not isinstance(cycle, Cycle) or cycle.org_id != org.id:
            raise NotFound(f"unknown cycle {cycle_id}", field=field)
        return cycle

    def _visible_objective(
        self,
        p: Principal,
        org: Organisation,
        objective_id: uuid.UUID,
        *,
        field: str = "objective_id",
        copy: bool = True,
    ) -> Objective:
        """The objective if the caller may see it; a private copy unless copy=False (reads)."""
        try:
            objective: Aggregate = self.repository.get(objective_id, deepcopy_from_cache=copy)
        except AggregateNotFoundError:
            raise NotFound(f"unknown objective {objective_id}", field=field) from None
        # Another organisation's objective or one the caller may not see: the same 404.
        if (
            not isinstance(objective, Objective)
            or objective.org_id != org.id
            or not can_see(
                p,
                org,
                visibility=objective.visibility,
                owner_ids=objective.responsible_ids,
                department_id=objective.department_id,
            )
        ):
            raise NotFound(f"unknown objective {objective_id}", field=field)
        return objective
