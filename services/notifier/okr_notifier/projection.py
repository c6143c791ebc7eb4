"""The notifier's consumer: its replica of goals' facts, its own projections, its reminders.

One handler for every topic it reads (goals, execution, and its own follow events). For each
event, in one batch (one transaction):

1. the shared replica of goals' facts (okr_platform.replica.GoalsReplica) applies it to the
   directory, settings, cycles, objectives and KR tables, and says what it changed (a
   `FactsChange`);
2. the notifier's own projections follow from that: progress history (history.py) and follows
   (follows_table.py);
3. unless it is rebuilding, the reminders (reminders.py) ask the rules (domain/rules.py) whom
   to tell.

Speed: a rebuild replays every event ever published. The replica's `ReplicaBatch` keeps its
writes pending until the end of the batch (or until something must read them), the history
keeps its rows until then too, and a check-in reads nothing (docs/performance.md#notifier).

Rebuilds replay partitions in parallel (rebuild.py): every applier, the replica's and the
notifier's own, reads and writes only the rows of its own event's aggregate (the reminders,
which read across aggregates, are off during a rebuild)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from okr_events.codec import InboundEvent
from okr_events.consuming import Tx
from okr_platform.replica import GoalsReplica
from okr_platform.replica.batch import Applier

from . import follows_table, history, schema
from .history import ProgressHistory
from .reminders import Reminders


class _Plan(NamedTuple):
    """What the notifier does with one contract type: looked up once per type, not per
    event (the dispatch is a measurable part of a check-in's cost in a rebuild)."""

    replica: Applier | None  # the replica's applier (goals' facts)
    history: history.Recorder | None  # the progress history's rows, from its FactsChange
    follows: Callable[[Any, Tx], None] | None  # the follows table (the notifier's own events)


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
        self.replica = GoalsReplica()
        self.reminders = Reminders(on_notified or (lambda: None))
        self._plans: dict[type[Any], _Plan] = {}

    @property
    def on_notified(self) -> Callable[[], None]:
        """Called after a transaction that stored notifications has committed."""
        return self.reminders.on_notified

    @on_notified.setter
    def on_notified(self, callback: Callable[[], None]) -> None:
        self.reminders.on_notified = callback

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        self.handle_batch([event], tx)

    def handle_batch(self, events: Sequence[InboundEvent], tx: Tx) -> None:
        batch = self.replica.batch(tx)
        progress_history = ProgressHistory(batch)
        plans, reminders = self._plans, self.reminders if self.rules_enabled else None
        for event in events:
            contract = event.contract
            plan = plans.get(type(contract)) or self._plan(type(contract))
            change = None
            if plan.replica is not None:
                change = plan.replica(contract, event, batch)
                if plan.history is not None:
                    plan.history(progress_history, contract, change)
            elif plan.follows is not None:
                plan.follows(contract, tx)
            if reminders is not None:
                reminders.remind_of(event, change, batch)
        batch.flush()  # fills the history's targets: before its rows are written
        progress_history.flush()

    def _plan(self, contract_type: type[Any]) -> _Plan:
        plan = self._plans[contract_type] = _Plan(
            self.replica.applier(contract_type),
            history.RECORDERS.get(contract_type),
            follows_table.APPLIERS.get(contract_type),
        )
        return plan
