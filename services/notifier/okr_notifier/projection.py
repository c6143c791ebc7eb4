"""The notifier's consumer: keeps its copy of the goals context and raises work notifications.

One handler for every topic it reads (goals, execution, and its own follow events). For each
event it updates the projections (directory, cycles, objectives and KRs, progress history,
follows) and, unless it is rebuilding, asks the rules (domain/rules.py) whom to tell.

Speed: a rebuild replays every event ever published, so the commonest event (a check-in)
touches no row twice per batch. Its KR and objective updates, KRs added and status changes
are coalesced in memory (`_Batch`) and written at the end of the batch (insert_many and
update_many: COPY on PostgreSQL), or before anything that reads them.

Rebuilds replay partitions in parallel (rebuild.py): every applier must read and write only
the rows of its own event's aggregate (the rules, which read across aggregates, are off
during a rebuild)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from okr_events import execution, goals, notifier
from okr_events.base import EventContract
from okr_events.codec import InboundEvent
from okr_events.consumer_store import chunks, in_clause
from okr_events.consuming import Tx
from okr_events.notifier import ReminderSettings
from okr_platform.clock import utc_text
from okr_platform.directory import Department, Directory, Member
from okr_platform.progress import metric_progress, weighted_progress

from . import schema
from .domain import rules
from .domain.rules import Change, ObjectiveFacts
from .webhooks.delivery_queue import enqueue_deliveries

log = logging.getLogger(__name__)


@dataclass
class _Progress:
    """An objective's progress and its active KRs' (weight, progress), as of this batch."""

    progress: float
    krs: dict[str, tuple[float, float]]


@dataclass
class _Batch:
    """Writes of one batch that are coalesced until something needs to read them (`flush`).

    Appliers that read key_results or objectives flush first, or read through the batch
    (`progress_of`, `kr_title`), which knows what is pending."""

    tx: Tx
    kr_inserts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    kr_updates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    objective_progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: KR targets known in this batch; a history row of a KR not among them waits in
    #: `untargeted` until flush reads them all at once.
    targets: dict[tuple[str, str], float | None] = field(default_factory=dict)
    untargeted: list[dict[str, Any]] = field(default_factory=list)
    #: Objectives' progress read since the last flush, kept current by pending KR adds.
    progress: dict[str, _Progress | None] = field(default_factory=dict)
    orgs_changed: set[str] = field(default_factory=set)  # their directory changed here

    def flush(self) -> None:
        self._fill_targets()
        self.tx.insert_many(
            "key_results",
            KR_COLUMNS,
            list(self.kr_inserts.values()),
            on_conflict="ON CONFLICT (objective_id, kr_id) DO NOTHING",
        )
        self.kr_inserts.clear()
        self.tx.update_many("key_results", KR_KEYS, KR_VALUES, list(self.kr_updates.values()))
        self.kr_updates.clear()
        self.tx.update_many(
            "objectives",
            ("objective_id",),
            ("progress", "updated_at"),
            list(self.objective_progress.values()),
        )
        self.objective_progress.clear()
        self.tx.update_many(
            "objectives", ("objective_id",), ("status",), list(self.statuses.values())
        )
        self.statuses.clear()
        self.tx.insert_many(
            "progress_history",
            HISTORY_COLUMNS,
            self.history,
            on_conflict="ON CONFLICT (objective_id, kr_id, version) DO NOTHING",
        )
        self.history.clear()
        self.progress.clear()  # what was read is overtaken by what was just written

    def progress_of(self, objective_id: str) -> _Progress | None:
        """The objective's progress and active KRs as stored, plus the KRs added in this
        batch (read once per objective between flushes; check-ins are overlaid by the
        caller). None if the objective is unknown."""
        if objective_id not in self.progress:
            rows = self.tx.execute(
                """SELECT o.progress AS objective_progress, k.kr_id, k.weight, k.progress
                FROM objectives o
                LEFT JOIN key_results k ON k.objective_id = o.objective_id AND k.active = 1
                WHERE o.objective_id = :objective_id""",
                {"objective_id": objective_id},
            )
            self.progress[objective_id] = (
                _Progress(
                    rows[0]["objective_progress"],
                    {r["kr_id"]: (r["weight"], r["progress"]) for r in rows if r["kr_id"]},
                )
                if rows
                else None
            )
        return self.progress[objective_id]

    def kr_title(self, objective_id: str, kr_id: str) -> str:
        pending = self.kr_inserts.get((objective_id, kr_id))
        if pending is not None:
            return str(pending["title"])
        rows = self.tx.execute(
            "SELECT title FROM key_results WHERE objective_id = :o AND kr_id = :k",
            {"o": objective_id, "k": kr_id},
        )
        return rows[0]["title"] if rows else kr_id

    def kr_history(self, row: dict[str, Any]) -> None:
        """Add a check-in's KR row; its ``target`` is the KR's as of the row."""
        target = self.targets.get((row["objective_id"], row["kr_id"]), _UNKNOWN)
        if target is _UNKNOWN:
            self.untargeted.append(row)
        else:
            row["target"] = target
        self.history.append(row)

    def _fill_targets(self) -> None:
        """The targets of the rows in `untargeted`, read with one query per MAX_IN objectives
        (before any write of this flush, so they are the targets as of those rows)."""
        if not self.untargeted:
            return
        objectives = sorted({row["objective_id"] for row in self.untargeted})
        for chunk in chunks(objectives):
            clause, params = in_clause(chunk, "o")
            for kr in self.tx.execute(
                "SELECT objective_id, kr_id, target FROM key_results WHERE objective_id IN "
                + clause,
                params,
            ):
                self.targets.setdefault((kr["objective_id"], kr["kr_id"]), kr["target"])
        for row in self.untargeted:
            row["target"] = self.targets.get((row["objective_id"], row["kr_id"]))
        self.untargeted.clear()


_UNKNOWN: Any = object()
KR_KEYS = ("objective_id", "kr_id")
KR_COLUMNS = (
    "objective_id", "kr_id", "title", "kind", "unit", "unit_label", "start_value", "target",
    "current_value", "progress", "confidence", "risk", "weight", "active",
)  # fmt: skip
KR_VALUES = ("current_value", "progress", "confidence", "risk")
HISTORY_COLUMNS = (
    "objective_id", "kr_id", "version", "at", "actor", "source", "check_in_id",
    "value_before", "value_after", "target", "progress_before", "progress_after",
    "confidence_before", "confidence_after", "risk_after", "note",
)  # fmt: skip

Applier = Callable[["NotifierProjection", Any, InboundEvent, _Batch], None]
_APPLIERS: dict[type[Any], Applier] = {}


def applies(*contracts: type[Any]) -> Callable[[Applier], Applier]:
    def register(function: Applier) -> Applier:
        for contract in contracts:
            _APPLIERS[contract] = function
        return function

    return register


class NotifierProjection:
    """The EventHandler of the notifier (see okr_events.consuming)."""

    name = "okr-notifier"

    def __init__(
        self,
        dialect: schema.Dialect,
        *,
        rules_enabled: bool = True,
        on_notified: Callable[[], None] | None = None,
    ) -> None:
        self.create_statements = schema.statements(dialect)
        self.rules_enabled = rules_enabled
        self.on_notified = on_notified or (lambda: None)
        self._directories: dict[str, tuple[int, Directory]] = {}

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        self.handle_batch([event], tx)

    def handle_batch(self, events: Sequence[InboundEvent], tx: Tx) -> None:
        batch = _Batch(tx)
        for event in events:
            apply = _APPLIERS.get(type(event.contract))
            if apply is not None:
                apply(self, event.contract, event, batch)
        batch.flush()

    # ---- rules --------------------------------------------------------------------------------

    def remind(
        self,
        batch: _Batch,
        objective_id: str,
        change: Change | None,
        event: InboundEvent,
        *,
        then: Callable[[ObjectiveFacts], Change | None] | None = None,
    ) -> None:
        """Tell the objective's followers about ``change`` and about what ``then`` makes of
        the objective's facts after it (a check-in's progress warning): one read of the
        facts, followers and directory for both. Silent while rebuilding."""
        if not self.rules_enabled or (change is None and then is None):
            return
        batch.flush()
        found = objective_facts(batch.tx, objective_id)
        if found is None:
            return
        facts, org_version = found
        followers = followers_of(batch.tx, objective_id)
        if not followers:
            return
        changes = [change, then(facts) if then else None]
        directory = self.directory(batch, facts.org_id, org_version)
        actor = event.contract.actor
        notices = [
            notice
            for each in changes
            if each is not None
            for notice in rules.notices_for(
                Change(
                    each.rule,
                    each.message_key,
                    {"actor_name": member_name(directory, actor), **each.params},
                ),
                objective=facts,
                followers=followers,
                directory=directory,
                fact_id=event.event_id,
                actor=actor,
            )
        ]
        created = utc_text(event.contract.occurred_at)
        if store_notices(batch.tx, notices, created):
            batch.tx.after_commit(self.on_notified)  # a woken reader must see the rows

    def directory(self, batch: _Batch, org_id: str, org_version: int | None) -> Directory:
        """The org's members and departments, cached across batches while the org's applied
        version is unchanged: the version, not invalidation by this process's appliers,
        because another replica may apply the org's partition. Within a batch the applied
        versions are written at its end, so an org changed in this batch is read afresh."""
        cached = self._directories.get(org_id)
        fresh = org_id not in batch.orgs_changed
        if fresh and cached is not None and cached[0] == org_version:
            return cached[1]
        directory = load_directory(batch.tx, org_id)
        if fresh and org_version is not None:
            self._directories[org_id] = (org_version, directory)
        return directory


# ---- queries the rules use ----------------------------------------------------------------------


#: The columns facts_from_row reads: an objective with its cycle, threshold and confidence
#: (the lowest of its active KRs'). Callers add columns after SELECT and a WHERE clause.
OBJECTIVE_FACTS = """SELECT o.objective_id, o.org_id, o.title, o.status, o.visibility,
    o.owner_ids, o.department_id, o.progress, c.start_date, c.end_date, g.threshold,
    (SELECT MIN(k.confidence) FROM key_results k
        WHERE k.objective_id = o.objective_id AND k.active = 1) AS confidence
FROM objectives o
LEFT JOIN cycles c ON c.cycle_id = o.cycle_id
LEFT JOIN orgs g ON g.org_id = o.org_id"""


#: The facts, and the applied version of the objective's organisation (what its directory
#: is as of: the directory cache's key).
_FACTS_FOR_RULES = OBJECTIVE_FACTS.replace(
    "SELECT ",
    """SELECT (SELECT a.version FROM consumer_applied_versions a
        WHERE a.aggregate_id = o.org_id) AS org_version, """,
    1,
)


def objective_facts(tx: Tx, objective_id: str) -> tuple[ObjectiveFacts, int | None] | None:
    rows = tx.execute(
        _FACTS_FOR_RULES + " WHERE o.objective_id = :objective_id",
        {"objective_id": objective_id},
    )
    return (facts_from_row(rows[0]), rows[0]["org_version"]) if rows else None


def facts_from_row(row: Any) -> ObjectiveFacts:
    return ObjectiveFacts(
        objective_id=row["objective_id"],
        org_id=row["org_id"],
        title=row["title"],
        status=row["status"],
        visibility=row["visibility"],
        owner_ids=tuple(json.loads(row["owner_ids"])),
        department_id=row["department_id"],
        progress=row["progress"],
        confidence=row["confidence"],
        cycle_start=date.fromisoformat(row["start_date"]) if row["start_date"] else None,
        cycle_end=date.fromisoformat(row["end_date"]) if row["end_date"] else None,
        threshold=row["threshold"] if row["threshold"] is not None else 0.7,
    )


def followers_of(tx: Tx, objective_id: str) -> list[tuple[str, ReminderSettings]]:
    rows = tx.execute(
        """SELECT follower_id, settings FROM follows
        WHERE objective_id = :objective_id AND active = 1 ORDER BY follower_id""",
        {"objective_id": objective_id},
    )
    return [
        (row["follower_id"], ReminderSettings.model_validate_json(row["settings"])) for row in rows
    ]


def load_directory(tx: Tx, org_id: str) -> Directory:
    members = {
        row["member_id"]: Member(
            member_id=row["member_id"],
            name=row["name"],
            department_id=row["department_id"],
            manager_id=row["manager_id"],
            time_zone=row["time_zone"],
            roles=frozenset(json.loads(row["roles"])),
            active=bool(row["active"]),
        )
        for row in tx.execute("SELECT * FROM members WHERE org_id = :org_id", {"org_id": org_id})
    }
    # Leads are not kept yet: nothing here decides "manage a department's objectives".
    departments = {
        row["department_id"]: Department(
            department_id=row["department_id"], name=row["name"], parent_id=row["parent_id"]
        )
        for row in tx.execute(
            "SELECT department_id, name, parent_id FROM departments WHERE org_id = :org_id",
            {"org_id": org_id},
        )
    }
    return Directory(members, departments)


def member_name(directory: Directory, member_id: str) -> str:
    member = directory.members.get(member_id)
    return member.name if member else member_id


def store_notices(tx: Tx, notices: Sequence[rules.Notice], created_at: str) -> int:
    """Insert notifications; one whose dedupe key exists is silently not inserted again."""
    stored = 0
    for notice in notices:
        rows = tx.execute(
            """INSERT INTO notifications (org_id, recipient_id, objective_id, rule,
                dedupe_key, message_key, params, link, created_at, raised_at)
            VALUES (:org_id, :recipient_id, :objective_id, :rule, :dedupe_key,
                :message_key, :params, :link, :created_at, :raised_at)
            ON CONFLICT (dedupe_key) DO NOTHING RETURNING id""",
            {
                "org_id": notice.org_id,
                "recipient_id": notice.recipient_id,
                "objective_id": notice.objective_id,
                "rule": notice.rule,
                "dedupe_key": notice.dedupe_key,
                "message_key": notice.message_key,
                "params": json.dumps(notice.params, ensure_ascii=False),
                "link": notice.link,
                "created_at": created_at,
                "raised_at": utc_text(datetime.now(UTC)),
            },
        )
        if rows:
            stored += 1
            enqueue_deliveries(tx, rows[0]["id"], notice.org_id, notice.recipient_id, created_at)
    return stored


# ---- the directory and settings ----------------------------------------------------------------


@applies(goals.OrganisationRegistered)
def _org_registered(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.flush()
    b.tx.execute(
        """INSERT INTO orgs (org_id, slug, name) VALUES (:org_id, :slug, :name)
        ON CONFLICT (org_id) DO UPDATE SET slug = excluded.slug, name = excluded.name""",
        {"org_id": str(c.aggregate_id), "slug": c.slug, "name": c.name},
    )


@applies(goals.SettingsChanged)
def _settings_changed(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    threshold = c.settings.get("progress_warning_threshold")
    if threshold is not None:
        b.tx.execute(
            "UPDATE orgs SET threshold = :threshold WHERE org_id = :org_id",
            {"threshold": float(threshold), "org_id": str(c.aggregate_id)},
        )


@applies(goals.DepartmentAdded)
def _department_added(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.orgs_changed.add(str(c.aggregate_id))
    b.tx.execute(
        """INSERT INTO departments (org_id, department_id, name, parent_id)
        VALUES (:org_id, :department_id, :name, :parent_id)
        ON CONFLICT (org_id, department_id) DO UPDATE SET name = excluded.name,
            parent_id = excluded.parent_id""",
        {
            "org_id": str(c.aggregate_id),
            "department_id": c.department_id,
            "name": c.name,
            "parent_id": c.parent_id,
        },
    )


@applies(goals.MemberAdded)
def _member_added(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.orgs_changed.add(str(c.aggregate_id))
    b.tx.execute(
        """INSERT INTO members (org_id, member_id, name, department_id, manager_id, time_zone,
            roles, active)
        VALUES (:org_id, :member_id, :name, :department_id, :manager_id, :time_zone, :roles, 1)
        ON CONFLICT (org_id, member_id) DO UPDATE SET name = excluded.name,
            department_id = excluded.department_id, manager_id = excluded.manager_id,
            time_zone = excluded.time_zone, roles = excluded.roles, active = 1""",
        {
            "org_id": str(c.aggregate_id),
            "member_id": c.member_id,
            "name": c.name,
            "department_id": c.department_id,
            "manager_id": c.manager_id,
            "time_zone": c.time_zone,
            "roles": json.dumps(sorted(c.roles)),
        },
    )


_MEMBER_COLUMNS = ("name", "department_id", "manager_id", "time_zone", "roles", "active")


@applies(goals.MemberUpdated)
def _member_updated(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.orgs_changed.add(str(c.aggregate_id))
    changes = {k: v for k, v in c.changes.items() if k in _MEMBER_COLUMNS}
    if "roles" in changes:
        changes["roles"] = json.dumps(sorted(changes["roles"]))
    if "active" in changes:
        changes["active"] = 1 if changes["active"] else 0
    if not changes:
        return
    assignments = ", ".join(f"{column} = :{column}" for column in changes)  # known names only
    b.tx.execute(
        f"UPDATE members SET {assignments} WHERE org_id = :org_id AND member_id = :member_id",
        {**changes, "org_id": str(c.aggregate_id), "member_id": c.member_id},
    )


# ---- cycles -------------------------------------------------------------------------------------


@applies(goals.CycleCreated)
def _cycle_created(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.tx.execute(
        """INSERT INTO cycles (cycle_id, org_id, name, start_date, end_date, status)
        VALUES (:cycle_id, :org_id, :name, :start_date, :end_date, 'planning')
        ON CONFLICT (cycle_id) DO NOTHING""",
        {
            "cycle_id": str(c.aggregate_id),
            "org_id": str(c.org_id),
            "name": c.name,
            "start_date": c.start_date.isoformat(),
            "end_date": c.end_date.isoformat(),
        },
    )


_CYCLE_STATUS = {
    goals.CycleActivated: "active",
    goals.CycleScoringStarted: "scoring",
    goals.CycleClosed: "closed",
    goals.CycleArchived: "archived",
}


@applies(*_CYCLE_STATUS)
def _cycle_moved(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.tx.execute(
        "UPDATE cycles SET status = :status WHERE cycle_id = :cycle_id",
        {"status": _CYCLE_STATUS[type(c)], "cycle_id": str(c.aggregate_id)},
    )


# ---- objectives and key results -----------------------------------------------------------------


@applies(goals.ObjectiveCreated)
def _objective_created(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.tx.execute(
        """INSERT INTO objectives (objective_id, org_id, cycle_id, title, level, owner_type,
            owner_id, owner_ids, department_id, visibility, weight, status, progress, updated_at)
        VALUES (:objective_id, :org_id, :cycle_id, :title, :level, :owner_type, :owner_id,
            :owner_ids, :department_id, :visibility, :weight, 'draft', 0, :at)
        ON CONFLICT (objective_id) DO NOTHING""",
        {
            "objective_id": str(c.aggregate_id),
            "org_id": str(c.org_id),
            "cycle_id": str(c.cycle_id),
            "title": c.title,
            "level": c.level,
            "owner_type": c.owner_type,
            "owner_id": c.owner_id,
            "owner_ids": json.dumps(c.responsible_ids),
            "department_id": c.department_id,
            "visibility": c.visibility,
            "weight": c.weight,
            "at": utc_text(c.occurred_at),
        },
    )


_OBJECTIVE_COLUMNS = ("title", "level", "visibility", "weight", "department_id")


@applies(goals.ObjectiveEdited)
def _objective_edited(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    changes = {k: v for k, v in c.changes.items() if k in _OBJECTIVE_COLUMNS}
    if changes:
        assignments = ", ".join(f"{column} = :{column}" for column in changes)
        b.tx.execute(
            f"UPDATE objectives SET {assignments} WHERE objective_id = :objective_id",
            {**changes, "objective_id": str(c.aggregate_id)},
        )
    fields = ", ".join(sorted(c.changes))
    p.remind(
        b,
        str(c.aggregate_id),
        Change(rules.OBJECTIVE_CHANGED, "objective_changed.edited", {"fields": fields}),
        e,
    )


@applies(goals.KeyResultAdded)
def _kr_added(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    """Pending until the flush (a rebuild adds thousands of KRs per batch): the objective's
    progress is recomputed from the batch's view of its KRs (`_Batch.progress_of`)."""
    objective_id = str(c.aggregate_id)
    progress = (
        (1.0 if c.current else 0.0)
        if c.kind == "boolean"
        else metric_progress(c.start, c.target, c.current)
    )
    known = b.progress_of(objective_id)
    b.kr_inserts.setdefault(
        (objective_id, c.kr_id),
        {
            "objective_id": objective_id,
            "kr_id": c.kr_id,
            "title": c.title,
            "kind": c.kind,
            "unit": c.unit,
            "unit_label": c.unit_label,
            "start_value": c.start,
            "target": c.target,
            "current_value": c.current,
            "progress": progress,
            "confidence": None,
            "risk": "normal",
            "weight": c.weight,
            "active": 1,
        },
    )
    if known is not None:
        known.krs.setdefault(c.kr_id, (c.weight, progress))  # as the insert: DO NOTHING
    b.targets[(objective_id, c.kr_id)] = c.target
    history_row(b, c, c.kr_id, "kr_added", None, c.current, c.target, None, progress)
    objective_progress_changed(b, c, "kr_added")
    p.remind(
        b,
        objective_id,
        Change(rules.OBJECTIVE_CHANGED, "objective_changed.kr_added", {"kr_title": c.title}),
        e,
    )


_KR_COLUMNS = {"title": "title", "weight": "weight", "unit_label": "unit_label"}


@applies(goals.KeyResultEdited)
def _kr_edited(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.flush()  # it writes key_results directly: a KR added in this batch must be there
    objective_id = str(c.aggregate_id)
    changes = {_KR_COLUMNS[k]: v for k, v in c.changes.items() if k in _KR_COLUMNS}
    if changes:
        assignments = ", ".join(f"{column} = :{column}" for column in changes)
        b.tx.execute(
            f"""UPDATE key_results SET {assignments}
            WHERE objective_id = :objective_id AND kr_id = :kr_id""",
            {**changes, "objective_id": objective_id, "kr_id": c.kr_id},
        )
    if "weight" in changes:
        objective_progress_changed(b, c, "kr_weight_changed")
    p.remind(
        b,
        objective_id,
        Change(
            rules.OBJECTIVE_CHANGED,
            "objective_changed.kr_edited",
            {"kr_title": b.kr_title(objective_id, c.kr_id), "fields": ", ".join(c.changes)},
        ),
        e,
    )


@applies(goals.KeyResultTargetChanged)
def _target_changed(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.flush()
    objective_id = str(c.aggregate_id)
    rows = b.tx.execute(
        """SELECT start_value, current_value, title FROM key_results
        WHERE objective_id = :objective_id AND kr_id = :kr_id""",
        {"objective_id": objective_id, "kr_id": c.kr_id},
    )
    if not rows:
        return
    kr = rows[0]
    progress = metric_progress(kr["start_value"], c.new_target, kr["current_value"])
    b.tx.execute(
        """UPDATE key_results SET target = :target, progress = :progress
        WHERE objective_id = :objective_id AND kr_id = :kr_id""",
        {
            "target": c.new_target,
            "progress": progress,
            "objective_id": objective_id,
            "kr_id": c.kr_id,
        },
    )
    b.targets[(objective_id, c.kr_id)] = c.new_target
    history_row(
        b,
        c,
        c.kr_id,
        "target_change",
        kr["current_value"],
        kr["current_value"],
        c.new_target,
        c.progress_before,
        progress,
        note=c.reason,
    )
    objective_progress_changed(b, c, "target_change")
    p.remind(
        b,
        objective_id,
        Change(
            rules.OBJECTIVE_CHANGED,
            "objective_changed.target_changed",
            {
                "kr_title": kr["title"],
                "old_target": c.old_target,
                "new_target": c.new_target,
                "reason": c.reason,
            },
        ),
        e,
    )


@applies(goals.KeyResultRemoved)
def _kr_removed(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.flush()
    objective_id = str(c.aggregate_id)
    rows = b.tx.execute(
        """SELECT current_value, target, progress FROM key_results
        WHERE objective_id = :objective_id AND kr_id = :kr_id""",
        {"objective_id": objective_id, "kr_id": c.kr_id},
    )
    b.tx.execute(
        "UPDATE key_results SET active = 0 WHERE objective_id = :objective_id AND kr_id = :kr_id",
        {"objective_id": objective_id, "kr_id": c.kr_id},
    )
    if rows:  # the KR's series ends here (the operations report leaves it out after this)
        kr = rows[0]
        history_row(
            b,
            c,
            c.kr_id,
            "kr_removed",
            kr["current_value"],
            kr["current_value"],
            kr["target"],
            kr["progress"],
            kr["progress"],
            note=c.reason,
        )
    objective_progress_changed(b, c, "kr_removed")
    p.remind(
        b,
        objective_id,
        Change(
            rules.OBJECTIVE_CHANGED,
            "objective_changed.kr_removed",
            {"kr_title": b.kr_title(objective_id, c.kr_id), "reason": c.reason},
        ),
        e,
    )


@applies(goals.KRProgressUpdated)
def _check_in(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    """The hot path: no read unless rules run (see the module docstring)."""
    objective_id = str(c.aggregate_id)
    after, before = c.after, c.before
    at = utc_text(c.occurred_at)
    b.kr_updates[(objective_id, c.kr_id)] = {
        "objective_id": objective_id,
        "kr_id": c.kr_id,
        "current_value": after.current,
        "progress": after.progress,
        "confidence": after.confidence,
        "risk": after.risk,
    }
    b.objective_progress[objective_id] = {
        "objective_id": objective_id,
        "progress": c.objective_progress_after,
        "updated_at": at,
    }
    common = {
        "objective_id": objective_id,
        "version": c.aggregate_version,
        "at": at,
        "actor": c.actor,
        "source": c.source,
        "check_in_id": c.check_in_id,
        "note": c.note,
    }
    b.kr_history(
        {
            **common,
            "kr_id": c.kr_id,
            "value_before": before.current,
            "value_after": after.current,
            "progress_before": before.progress,
            "progress_after": after.progress,
            "confidence_before": before.confidence,
            "confidence_after": after.confidence,
            "risk_after": after.risk,
        }
    )
    b.history.append(
        {
            **common,
            "kr_id": "",
            "value_before": None,
            "value_after": None,
            "target": None,
            "progress_before": c.objective_progress_before,
            "progress_after": c.objective_progress_after,
            "confidence_before": None,
            "confidence_after": None,
            "risk_after": None,
        }
    )
    if not p.rules_enabled:
        return
    p.remind(
        b,
        objective_id,
        Change(
            rules.PROGRESS_UPDATED,
            "progress_updated",
            {
                "kr_title": b.kr_title(objective_id, c.kr_id),
                "progress_before": before.progress,
                "progress_after": after.progress,
                "value_before": before.current,
                "value_after": after.current,
                "confidence_before": before.confidence,
                "confidence_after": after.confidence,
                "risk_after": after.risk,
                "note": c.note,
                "source": c.source,
            },
        ),
        e,
        then=lambda facts: rules.progress_warning(facts, c.occurred_at),
    )


_OBJECTIVE_STATUS: dict[type[EventContract], str] = {
    goals.ObjectiveSubmittedForApproval: "pending_approval",
    goals.ObjectiveActivated: "active",
    goals.ObjectiveApproved: "active",
    goals.ObjectiveRejected: "draft",
    goals.ObjectiveScoringStarted: "scoring",
    goals.ObjectiveScored: "scored",
    goals.ObjectiveClosed: "closed",
    goals.ObjectiveCancelled: "cancelled",
}


@applies(*_OBJECTIVE_STATUS)
def _objective_moved(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    status = _OBJECTIVE_STATUS[type(c)]
    objective_id = str(c.aggregate_id)
    b.statuses[objective_id] = {"objective_id": objective_id, "status": status}
    p.remind(
        b,
        objective_id,
        Change(rules.OBJECTIVE_CHANGED, "objective_changed.status", {"status": status}),
        e,
    )


@applies(goals.ObjectiveAligned, goals.ObjectiveUnaligned)
def _alignment(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    kind = "aligned" if isinstance(c, goals.ObjectiveAligned) else "unaligned"
    p.remind(
        b,
        str(c.aggregate_id),
        Change(
            rules.OBJECTIVE_CHANGED,
            f"objective_changed.{kind}",
            {"parent_objective_id": str(c.parent_objective_id), "parent_kr_id": c.parent_kr_id},
        ),
        e,
    )


# ---- execution ----------------------------------------------------------------------------------


@applies(execution.KeyTaskCreated)
def _key_task_created(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    objective_id = str(c.objective_id)
    p.remind(
        b,
        objective_id,
        Change(
            rules.KEY_TASK_CREATED,
            "key_task_created",
            {
                "task_title": c.title,
                "task_id": str(c.aggregate_id),
                "kr_title": b.kr_title(objective_id, c.kr_id),
                "assignee_id": c.assignee_id,
            },
        ),
        e,
    )


# ---- the notifier's own follow events -----------------------------------------------------------


@applies(notifier.FollowStarted)
def _follow_started(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.tx.execute(
        """INSERT INTO follows (follow_id, org_id, follower_id, objective_id, active, settings,
            since)
        VALUES (:follow_id, :org_id, :follower_id, :objective_id, 1, :settings, :since)
        ON CONFLICT (follow_id) DO NOTHING""",
        {
            "follow_id": str(c.aggregate_id),
            "org_id": str(c.org_id),
            "follower_id": c.follower_id,
            "objective_id": str(c.objective_id),
            "settings": json.dumps(c.settings),
            "since": utc_text(c.occurred_at),
        },
    )


@applies(notifier.FollowSettingsChanged, notifier.FollowResumed)
def _follow_settings(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    resumed = isinstance(c, notifier.FollowResumed)
    b.tx.execute(
        f"""UPDATE follows SET settings = :settings, active = 1
            {", since = :since" if resumed else ""}
        WHERE follow_id = :follow_id""",
        {
            "settings": json.dumps(c.settings),
            "follow_id": str(c.aggregate_id),
            **({"since": utc_text(c.occurred_at)} if resumed else {}),
        },
    )


@applies(notifier.FollowStopped)
def _follow_stopped(p: NotifierProjection, c: Any, e: InboundEvent, b: _Batch) -> None:
    b.tx.execute(
        "UPDATE follows SET active = 0 WHERE follow_id = :follow_id",
        {"follow_id": str(c.aggregate_id)},
    )


# ---- helpers ------------------------------------------------------------------------------------


def history_row(
    b: _Batch,
    c: Any,
    kr_id: str,
    source: str,
    value_before: float | None,
    value_after: float | None,
    target: float | None,
    progress_before: float | None,
    progress_after: float,
    note: str = "",
) -> None:
    b.history.append(
        {
            "objective_id": str(c.aggregate_id),
            "kr_id": kr_id,
            "version": c.aggregate_version,
            "at": utc_text(c.occurred_at),
            "actor": c.actor,
            "source": source,
            "check_in_id": None,
            "value_before": value_before,
            "value_after": value_after,
            "target": target,
            "progress_before": progress_before,
            "progress_after": progress_after,
            "confidence_before": None,
            "confidence_after": None,
            "risk_after": None,
            "note": note,
        }
    )


def objective_progress_changed(b: _Batch, c: Any, source: str) -> None:
    """Recompute an objective's progress from its active KRs after a structural change: the
    batch's view of them (`_Batch.progress_of`) with its pending check-ins overlaid."""
    objective_id = str(c.aggregate_id)
    known = b.progress_of(objective_id)
    if known is None:
        return
    pending = b.objective_progress.get(objective_id)
    before = pending["progress"] if pending else known.progress
    after = weighted_progress(
        (weight, _pending_progress(b, objective_id, kr_id, progress))
        for kr_id, (weight, progress) in sorted(known.krs.items())  # one order, live or not
    )
    b.objective_progress[objective_id] = {
        "objective_id": objective_id,
        "progress": after,
        "updated_at": utc_text(c.occurred_at),
    }
    if after != before:
        history_row(b, c, "", source, None, None, None, before, after)


def _pending_progress(b: _Batch, objective_id: str, kr_id: str, stored: float) -> float:
    update = b.kr_updates.get((objective_id, kr_id))
    return update["progress"] if update else stored
