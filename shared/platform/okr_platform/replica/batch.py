"""One batch's view of the replica: writes coalesced until something must read them.

A rebuild replays every event ever published, and most of them are check-ins, so the commonest
path touches no row twice per batch and reads nothing: its KR and objective updates, KRs added
and status changes wait here and are written by `flush` (insert_many and update_many: COPY on
PostgreSQL) at the end of the batch, or before anything that reads or writes those rows
directly. Reads that would see pending writes go through the batch (`progress_of`,
`kr_title`, `fill_target`), which knows what is pending.

A consuming context's own appliers share the batch with the replica's (docs/replica.md): they
read through it, and `flush` before reading the replica's tables themselves."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from okr_events.codec import InboundEvent
from okr_events.consumer_store import chunks, in_clause
from okr_events.consuming import Tx

from .facts import FactsChange

KR_KEYS = ("objective_id", "kr_id")
KR_COLUMNS = (
    "objective_id", "kr_id", "title", "kind", "unit", "unit_label", "start_value", "target",
    "current_value", "progress", "confidence", "risk", "weight", "active", "owner_id",
    "due_date",
)  # fmt: skip
KR_CHECK_IN_COLUMNS = ("current_value", "progress", "confidence", "risk")
_UNKNOWN: Any = object()


@dataclass
class ObjectiveProgress:
    """An objective's progress and its active KRs' (weight, progress), as of this batch."""

    progress: float
    krs: dict[str, tuple[float, float]]


@dataclass
class ReplicaBatch:
    """The replica's pending writes of one batch, and what it has read since the last flush."""

    tx: Tx
    #: Pending rows, by key: KRs added, KRs checked in, objectives' progress, statuses.
    kr_inserts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    kr_updates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    objective_progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: KR targets known in this batch (added or retargeted here, or read at a flush).
    targets: dict[tuple[str, str], float | None] = field(default_factory=dict)
    #: Objectives' progress read since the last flush, kept current by pending KR adds.
    progress: dict[str, ObjectiveProgress | None] = field(default_factory=dict)
    #: Organisations whose directory changed in this batch (their applied version is
    #: written at its end, so a cache keyed by it must read them afresh: reads.DirectoryCache).
    orgs_changed: set[str] = field(default_factory=set)
    #: Rows waiting for a KR's target (`fill_target`), filled at the next flush.
    _untargeted: list[tuple[MutableMapping[str, Any], str, tuple[str, str]]] = field(
        default_factory=list
    )

    def flush(self) -> None:
        """Write everything pending. Rows waiting for a target get it first (read before any
        write of this flush, so it is the target as of those rows)."""
        self._fill_targets()
        self.tx.insert_many(
            "key_results",
            KR_COLUMNS,
            list(self.kr_inserts.values()),
            on_conflict="ON CONFLICT (objective_id, kr_id) DO NOTHING",
        )
        self.kr_inserts.clear()
        self.tx.update_many(
            "key_results", KR_KEYS, KR_CHECK_IN_COLUMNS, list(self.kr_updates.values())
        )
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
        self.progress.clear()  # what was read is overtaken by what was just written

    # ---- reads through the batch -------------------------------------------------------------

    def progress_of(self, objective_id: str) -> ObjectiveProgress | None:
        """The objective's progress and active KRs as stored, plus the KRs added in this
        batch (read once per objective between flushes; pending check-ins are overlaid by
        `kr_progress`). None if the objective is unknown."""
        if objective_id not in self.progress:
            rows = self.tx.execute(
                """SELECT o.progress AS objective_progress, k.kr_id, k.weight, k.progress
                FROM objectives o
                LEFT JOIN key_results k ON k.objective_id = o.objective_id AND k.active = 1
                WHERE o.objective_id = :objective_id""",
                {"objective_id": objective_id},
            )
            self.progress[objective_id] = (
                ObjectiveProgress(
                    rows[0]["objective_progress"],
                    {r["kr_id"]: (r["weight"], r["progress"]) for r in rows if r["kr_id"]},
                )
                if rows
                else None
            )
        return self.progress[objective_id]

    def kr_progress(self, objective_id: str, kr_id: str, stored: float) -> float:
        """A KR's progress with this batch's pending check-in, if any."""
        update = self.kr_updates.get((objective_id, kr_id))
        return update["progress"] if update else stored

    def kr_title(self, objective_id: str, kr_id: str) -> str:
        """The KR's title (pending or stored); its id if the replica does not know it."""
        pending = self.kr_inserts.get((objective_id, kr_id))
        if pending is not None:
            return str(pending["title"])
        rows = self.tx.execute(
            "SELECT title FROM key_results WHERE objective_id = :o AND kr_id = :k",
            {"o": objective_id, "k": kr_id},
        )
        return rows[0]["title"] if rows else kr_id

    def fill_target(
        self, row: MutableMapping[str, Any], objective_id: str, kr_id: str, column: str = "target"
    ) -> None:
        """Set ``row[column]`` to the KR's target as of now: at once when this batch knows
        it, else at the next flush, with one read per MAX_IN objectives for every row waiting
        (a check-in's own applier reads nothing). The caller writes ``row`` after the flush."""
        target = self.targets.get((objective_id, kr_id), _UNKNOWN)
        if target is _UNKNOWN:
            self._untargeted.append((row, column, (objective_id, kr_id)))
        else:
            row[column] = target

    def _fill_targets(self) -> None:
        if not self._untargeted:
            return
        objectives = sorted({key[0] for _, _, key in self._untargeted})
        for chunk in chunks(objectives):
            clause, params = in_clause(chunk, "o")
            for kr in self.tx.execute(
                "SELECT objective_id, kr_id, target FROM key_results WHERE objective_id IN "
                + clause,
                params,
            ):
                self.targets.setdefault((kr["objective_id"], kr["kr_id"]), kr["target"])
        for row, column, key in self._untargeted:
            row[column] = self.targets.get(key)
        self._untargeted.clear()


#: One contract's applier: (the contract, its event, the batch) -> what it changed.
Applier = Callable[[Any, InboundEvent, ReplicaBatch], FactsChange]
