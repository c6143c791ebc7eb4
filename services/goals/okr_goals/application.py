"""The goals application: its use cases, each a short method (DESIGN: eventsourcing examples).

Every command loads the aggregates it needs, checks who is asking (domain.access), calls one
aggregate command and saves. Reads of lists go to the views (views.py); reads of one
objective go to its own event stream, which is also what auditors replay.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding
from okr_platform.errors import (
    Conflict,
    DomainError,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    StaleVersion,
)

from .domain.access import (
    Principal,
    can_approve,
    can_edit,
    can_see,
    is_admin,
    leads_department,
    manages_directly,
)
from .domain.cycle import Cycle
from .domain.objective import Objective
from .domain.organisation import Organisation, OrgSettings, organisation_id

if TYPE_CHECKING:
    from .views import GoalViews

T = TypeVar("T")
# Writers of one aggregate in this process queue on a lock (no wasted work); writers in other
# processes collide on the version and retry on a fresh copy, so no update is lost.
MAX_RETRIES = 10
LOCK_STRIPES = 256


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class ViewsUnavailable(RuntimeError):
    """The read side did not catch up in time (503)."""


class GoalsApplication(Application[uuid.UUID]):
    name = "goals"

    def __init__(
        self,
        env: dict[str, str] | None = None,
        read_timeout: float = 5.0,
        reference_data_max_age: float = 0.0,
    ) -> None:
        super().__init__(env)
        # Organisation and cycles, as read for checks: id -> (read at, aggregate).
        self._reference: dict[uuid.UUID, tuple[float, Any]] = {}
        self._reference_max_age = reference_data_max_age
        self.views: GoalViews | None = None  # attached by the service wiring
        self.read_timeout = read_timeout
        self._write_locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    def _write_lock(self, aggregate_id: uuid.UUID) -> threading.Lock:
        return self._write_locks[aggregate_id.int % LOCK_STRIPES]

    def _reference_data(self, aggregate_id: uuid.UUID, copy: bool) -> Any:
        """A directory or cycle aggregate. Read-only callers get a recent shared copy without a
        round trip to the store; writers always get a fresh private copy."""
        if copy:
            return self.repository.get(aggregate_id)
        now = time.monotonic()
        recent = self._reference.get(aggregate_id)
        if recent is not None and now - recent[0] < self._reference_max_age:
            return recent[1]
        aggregate: Any = self.repository.get(aggregate_id, deepcopy_from_cache=False)
        self._reference[aggregate_id] = (now, aggregate)
        return aggregate

    def save(self, *objects: Any, **kwargs: Any) -> Any:
        recordings = super().save(*objects, **kwargs)
        for obj in objects:  # what this process changes, it sees at once
            self._reference.pop(getattr(obj, "id", None), None)  # type: ignore[arg-type]
        return recordings

    @staticmethod
    def _back_off(attempt: int) -> None:
        time.sleep(0.002 * (attempt + 1))

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # ---- directory ---------------------------------------------------------------------------

    def add_department(
        self,
        p: Principal,
        *,
        name: str,
        parent_id: str | None,
        lead_ids: list[str],
        department_id: str | None = None,
    ) -> Organisation:
        def add(org: Organisation) -> None:
            org.add_department(
                department_id or uuid.uuid4().hex,
                name.strip(),
                parent_id,
                lead_ids,
                actor=p.member_id,
            )

        return self._change_directory(p, add)

    def add_member(
        self,
        p: Principal,
        *,
        member_id: str,
        name: str,
        department_id: str | None,
        manager_id: str | None,
        time_zone: str,
        roles: list[str],
        email: str | None,
    ) -> Organisation:
        def add(org: Organisation) -> None:
            org.add_member(
                member_id,
                name.strip(),
                department_id,
                manager_id,
                time_zone,
                roles,
                email,
                actor=p.member_id,
            )

        return self._change_directory(p, add)

    def update_member(
        self,
        p: Principal,
        member_id: str,
        changes: dict[str, Any],
        expected_version: int | None = None,
    ) -> Organisation:
        # Members may keep their own contact details and time zone; the rest is for admins.
        self_service = {"name", "time_zone", "email"}
        admin_needed = not (member_id == p.member_id and set(changes) <= self_service)
        return self._change_directory(
            p,
            lambda org: org.update_member(member_id, changes, actor=p.member_id),
            expected_version=expected_version,
            admin_only=admin_needed,
        )

    def change_settings(
        self, p: Principal, changes: dict[str, Any], expected_version: int | None = None
    ) -> Organisation:
        return self._change_directory(
            p,
            lambda org: org.change_settings(changes, actor=p.member_id),
            expected_version=expected_version,
        )

    def directory(self, p: Principal) -> Organisation:
        """The caller's organisation; an empty one if nobody has set it up yet."""
        org = self._find_organisation(p)
        return org if org is not None else Organisation(p.org, p.org, actor="system")

    def _find_organisation(self, p: Principal, *, copy: bool = False) -> Organisation | None:
        """The organisation; shared with the cache (read-only) unless a copy is asked for."""
        try:
            org = self._reference_data(organisation_id(p.org), copy)
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

    def _change_directory(
        self,
        p: Principal,
        change: Callable[[Organisation], None],
        *,
        expected_version: int | None = None,
        admin_only: bool = True,
    ) -> Organisation:
        with self._write_lock(organisation_id(p.org)):
            return self._change_directory_locked(p, change, expected_version, admin_only)

    def _change_directory_locked(
        self,
        p: Principal,
        change: Callable[[Organisation], None],
        expected_version: int | None,
        admin_only: bool,
    ) -> Organisation:
        for attempt in range(MAX_RETRIES):
            org = self._find_organisation(p, copy=True)
            if org is None:
                if not is_admin(p, None):
                    raise Forbidden("only an admin can set up the organisation's directory")
                # The organisation comes into being with its first directory change.
                org = Organisation(p.org, p.org, actor=p.member_id)
            if admin_only and not is_admin(p, org):
                raise Forbidden("only an admin can change the directory and settings")
            self._check_version(org, expected_version)
            change(org)
            if self._saved(org, expected_version):
                return org
            self._back_off(attempt)
        raise Conflict("too many concurrent changes; try again", code="contention")

    # ---- cycles ------------------------------------------------------------------------------

    def plan_cycle(
        self, p: Principal, *, name: str, kind: str, start_date: date, end_date: date
    ) -> Cycle:
        org = self._organisation(p)
        if not is_admin(p, org):
            raise Forbidden("only an admin manages cycles")
        cycle = Cycle.plan(org.id, name, kind, start_date, end_date, actor=p.member_id)
        self.save(cycle)
        return cycle

    def transition_cycle(
        self, p: Principal, cycle_id: uuid.UUID, to: str, expected_version: int | None = None
    ) -> Cycle:
        org = self._organisation(p)
        if not is_admin(p, org):
            raise Forbidden("only an admin manages cycles")
        cycle = self._cycle(org, cycle_id, copy=True)
        self._check_version(cycle, expected_version)
        cycle.transition(to, actor=p.member_id)
        if not self._saved(cycle, expected_version):
            raise StaleVersion("the cycle changed meanwhile; reload and retry")
        return cycle

    def get_cycle(self, p: Principal, cycle_id: uuid.UUID) -> Cycle:
        return self._cycle(self._organisation(p), cycle_id)

    def _cycle(
        self, org: Organisation, cycle_id: uuid.UUID, field: str = "cycle_id", copy: bool = False
    ) -> Cycle:
        try:
            cycle = self._reference_data(cycle_id, copy)
        except AggregateNotFoundError:
            raise NotFound(f"unknown cycle {cycle_id}", field=field) from None
        if not isinstance(cycle, Cycle) or cycle.org_id != org.id:
            raise NotFound(f"unknown cycle {cycle_id}", field=field)
        return cycle

    # ---- objectives: creating ----------------------------------------------------------------

    def create_objective(
        self,
        p: Principal,
        *,
        cycle_id: uuid.UUID,
        title: str,
        description: str = "",
        level: str | None = None,
        owner_type: str = "member",
        owner_id: str | None = None,
        responsible_ids: list[str] | None = None,
        visibility: str = "public",
        weight: float = 1.0,
        key_results: list[dict[str, Any]] | None = None,
        align_to: list[dict[str, Any]] | None = None,
    ) -> Objective:
        """Create an objective, optionally with its KRs and alignments in the same commit."""
        org = self._organisation(p)
        cycle = self._cycle(org, cycle_id)
        if cycle.state not in ("planning", "active"):
            raise IllegalTransition(
                f"cycle is {cycle.state!r}: objectives are set in planning or active cycles",
                field="cycle_id",
            )
        owner_id = owner_id or p.member_id
        created_for_report = False
        if owner_type == "member":
            owner = org.member(owner_id, field="owner_id")
            department_id = owner.department_id
            if owner_id != p.member_id:
                created_for_report = manages_directly(org, p.member_id, [owner_id])
                if not (created_for_report or is_admin(p, org)):
                    raise Forbidden(
                        "you may create objectives for yourself and your direct reports only"
                    )
        elif owner_type == "department":
            org.department(owner_id, field="owner_id")
            department_id = owner_id
            for member in responsible_ids or []:
                org.member(member, field="responsible_ids")
            if not (is_admin(p, org) or leads_department(org, p.member_id, owner_id)):
                raise Forbidden("only the department's leads or an admin set its objectives")
        else:
            raise InvalidInput("owner_type must be 'member' or 'department'", field="owner_type")
        objective = Objective.draft(
            org_id=org.id,
            cycle_id=cycle.id,
            title=title,
            description=description,
            level=level or ("personal" if owner_type == "member" else "department"),
            owner_type=owner_type,
            owner_id=owner_id,
            responsible_ids=responsible_ids,
            department_id=department_id,
            visibility=visibility,
            weight=weight,
            created_for_report=created_for_report,
            actor=p.member_id,
        )
        for index, kr in enumerate(key_results or []):
            try:
                objective.add_key_result(**kr, actor=p.member_id)
            except DomainError as error:
                error.field = f"key_results.{index}.{error.field}" if error.field else None
                raise
        for link in align_to or []:
            self._align(p, org, objective, link["objective_id"], link.get("kr_id"))
        self.save(objective)
        return objective

    # ---- objectives: changing ----------------------------------------------------------------

    def edit_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        changes: dict[str, Any],
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.edit(changes, actor=p.member_id, late=late),
        )

    def add_key_result(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        fields: dict[str, Any],
        expected_version: int | None = None,
    ) -> tuple[Objective, str]:
        return self._change_objective_returning(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.add_key_result(**fields, actor=p.member_id, late=late),
        )

    def edit_key_result(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        kr_id: str,
        changes: dict[str, Any],
        reason: str | None = None,
        expected_version: int | None = None,
    ) -> Objective:
        def edit(o: Objective, org: Organisation, late: bool) -> None:
            plain = {k: v for k, v in changes.items() if k != "target"}
            if plain:
                o.edit_key_result(kr_id, plain, actor=p.member_id, late=late)
            if "target" in changes:
                o.change_target(kr_id, changes["target"], reason or "", p.member_id, late=late)

        return self._change_objective(p, objective_id, expected_version, edit)

    def remove_key_result(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        kr_id: str,
        reason: str,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.remove_key_result(kr_id, reason, actor=p.member_id),
        )

    def check_in(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        kr_id: str,
        *,
        current: float | None = None,
        confidence: int | None = None,
        risk: str | None = None,
        note: str = "",
        source: str = "manual",
        expected_version: int | None = None,
    ) -> tuple[Objective, str]:
        def check_in(o: Objective, org: Organisation, late: bool) -> str:
            return o.check_in(
                kr_id,
                current=current,
                confidence=confidence,
                risk=risk,
                note=note,
                source=source,
                actor=p.member_id,
                late=late,
            )

        return self._change_objective_returning(
            p, objective_id, expected_version, check_in, kr_owner_may=kr_id
        )

    def align_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        parent_objective_id: uuid.UUID,
        parent_kr_id: str | None = None,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: self._align(p, org, o, parent_objective_id, parent_kr_id),
        )

    def unalign_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        parent_objective_id: uuid.UUID,
        parent_kr_id: str | None = None,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.unalign(parent_objective_id, parent_kr_id, p.member_id),
        )

    def _align(
        self,
        p: Principal,
        org: Organisation,
        objective: Objective,
        parent_id: uuid.UUID | str,
        parent_kr_id: str | None,
    ) -> None:
        parent_id = uuid.UUID(str(parent_id))
        if parent_id == objective.id:
            raise Conflict(
                "an objective cannot align to itself",
                field="parent_objective_id",
                code="alignment_cycle",
            )
        parent = self._visible_objective(p, org, parent_id, field="parent_objective_id", copy=False)
        if parent_kr_id is not None:
            parent.key_result(parent_kr_id)
        child_cycle = self._cycle(org, objective.cycle_id)
        parent_cycle = self._cycle(org, parent.cycle_id)
        if not (
            parent_cycle.start_date <= child_cycle.start_date
            and parent_cycle.end_date >= child_cycle.end_date
        ):
            raise InvalidInput(
                "a parent objective must be in the same or an enclosing cycle",
                field="parent_objective_id",
            )
        if objective.id in self._ancestors(parent):
            raise Conflict(
                "aligning here would make the alignment graph cyclic",
                field="parent_objective_id",
                code="alignment_cycle",
            )
        objective.align(parent_id, parent_kr_id, actor=p.member_id)

    def _ancestors(self, objective: Objective) -> set[uuid.UUID]:
        """Every objective reachable upwards through alignments (read from the event store)."""
        seen: set[uuid.UUID] = set()
        frontier = list(objective.parent_objective_ids)
        while frontier:
            current = frontier.pop()
            if current in seen:
                continue
            seen.add(current)
            try:
                parent: Objective = self.repository.get(current, deepcopy_from_cache=False)
            except AggregateNotFoundError:
                continue
            frontier.extend(parent.parent_objective_ids)
        return seen

    # ---- objectives: lifecycle ---------------------------------------------------------------

    def submit_objective(
        self, p: Principal, objective_id: uuid.UUID, expected_version: int | None = None
    ) -> Objective:
        def submit(o: Objective, org: Organisation, late: bool) -> None:
            o.submit(self._approval_required(org, o), actor=p.member_id)

        return self._change_objective(p, objective_id, expected_version, submit)

    def _approval_required(self, org: Organisation, o: Objective) -> bool:
        """Approval when the org wants it, unless the supervisor wrote it for their report or
        nobody above the owners could approve (DOMAIN §3, §5)."""
        has_approver = any(org.manager_chain(m) for m in o.responsible_ids)
        return org.settings.approval_required and not o.created_for_report and has_approver

    def approve_objective(
        self, p: Principal, objective_id: uuid.UUID, expected_version: int | None = None
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.approve(actor=p.member_id),
            approver_only=True,
        )

    def reject_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        reason: str,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.reject(reason, actor=p.member_id),
            approver_only=True,
        )

    def cancel_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        reason: str,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.cancel(reason, actor=p.member_id),
        )

    def start_scoring(
        self, p: Principal, objective_id: uuid.UUID, expected_version: int | None = None
    ) -> Objective:
        return self._change_objective(
            p, objective_id, expected_version, lambda o, org, late: o.start_scoring(p.member_id)
        )

    def mark_scored(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        score: float,
        expected_version: int | None = None,
    ) -> Objective:
        return self._change_objective(
            p,
            objective_id,
            expected_version,
            lambda o, org, late: o.mark_scored(score, p.member_id),
            approver_only=True,
        )

    def close_objective(
        self, p: Principal, objective_id: uuid.UUID, expected_version: int | None = None
    ) -> Objective:
        return self._change_objective(
            p, objective_id, expected_version, lambda o, org, late: o.close(p.member_id)
        )

    # ---- the one place objectives are loaded, authorised, changed and saved ------------------

    def _change_objective(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        expected_version: int | None,
        change: Callable[[Objective, Organisation, bool], None],
        *,
        approver_only: bool = False,
    ) -> Objective:
        objective, _ = self._change_objective_returning(
            p, objective_id, expected_version, change, approver_only=approver_only
        )
        return objective

    def _change_objective_returning(
        self,
        p: Principal,
        objective_id: uuid.UUID,
        expected_version: int | None,
        change: Callable[[Objective, Organisation, bool], T],
        *,
        approver_only: bool = False,
        kr_owner_may: str | None = None,
    ) -> tuple[Objective, T]:
        with self._write_lock(objective_id):
            for attempt in range(MAX_RETRIES):
                org = self._organisation(p)
                objective = self._visible_objective(p, org, objective_id)
                self._authorise_change(p, org, objective, approver_only, kr_owner_may)
                self._check_version(objective, expected_version)
                late = self._late_update(p, org, objective)
                result = change(objective, org, late)
                if self._saved(objective, expected_version):
                    return objective, result
                self._back_off(attempt)
        raise Conflict("too many concurrent changes; try again", code="contention")

    def _authorise_change(
        self,
        p: Principal,
        org: Organisation,
        o: Objective,
        approver_only: bool,
        kr_owner_may: str | None,
    ) -> None:
        owners = o.responsible_ids
        if approver_only:
            if not can_approve(p, org, owners):
                raise Forbidden("only the owner's direct manager or an admin may do this")
            return
        if o.status == "pending_approval":
            # While awaiting approval only the approver may edit, and only if allowed (§5).
            approver = can_approve(p, org, owners)
            if not (is_admin(p, org) or (approver and org.settings.approver_may_edit)):
                raise IllegalTransition(
                    "objective is awaiting approval; only the approver may change it now",
                    field="status",
                )
            return
        if can_edit(p, org, owners):
            return
        if kr_owner_may is not None:
            kr = o.key_results.get(kr_owner_may)
            if kr is not None and kr.owner_id == p.member_id:
                return
        raise Forbidden("you may change your own objectives and your direct reports' only")

    def _late_update(self, p: Principal, org: Organisation, o: Objective) -> bool:
        """After a cycle closes, objectives are read-only; an admin's change is recorded as late."""
        cycle = self._cycle(org, o.cycle_id)
        closed = cycle.state in ("closed", "archived")
        if closed and not is_admin(p, org):
            raise IllegalTransition(
                f"cycle is {cycle.state!r}: its objectives are read-only", field="cycle_id"
            )
        return is_admin(p, org) and (closed or o.status in ("scoring", "scored", "closed"))

    def _check_version(self, aggregate: Any, expected_version: int | None) -> None:
        if expected_version is not None and aggregate.version != expected_version:
            raise StaleVersion(
                f"version {expected_version} is stale; the current version is {aggregate.version}",
                field="If-Match",
            )

    def _saved(self, aggregate: Any, expected_version: int | None) -> bool:
        """Save; False when another writer got there first (the caller retries on fresh state)."""
        try:
            self.save(aggregate)
        except IntegrityError:
            if expected_version is not None:
                raise StaleVersion(
                    "the aggregate changed meanwhile; reload and retry", field="If-Match"
                ) from None
            return False
        return True

    # ---- objectives: reading -----------------------------------------------------------------

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

    # ---- reads served by the views -----------------------------------------------------------

    def _views(self) -> GoalViews:
        """The views, caught up with every event recorded before this query began."""
        if self.views is None:
            raise ViewsUnavailable("the goals views are not running")
        position = self.recorder.max_notification_id()
        if not self.views.wait_until(position, self.read_timeout):
            raise ViewsUnavailable("the goals views are behind; try again shortly")
        return self.views

    def list_cycles(self, p: Principal) -> list[dict[str, Any]]:
        return self._views().cycles(str(organisation_id(p.org)))

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

    def settings_of(self, p: Principal) -> OrgSettings:
        return self.directory(p).settings
