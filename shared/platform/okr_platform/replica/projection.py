"""`GoalsReplica`: the handler that keeps a context's replica of goals' facts.

Mounted alone it is an okr_events EventHandler (`handle`, `handle_batch`, `create_statements`).
Composed with a context's own appliers, the context's handler drives it event by event through
`apply` on a shared `ReplicaBatch` (docs/replica.md#composing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from okr_events.codec import InboundEvent
from okr_events.consuming import Tx

from . import schema
from .batch import Applier, ReplicaBatch
from .directory_appliers import APPLIERS as DIRECTORY_APPLIERS
from .facts import FactsChange
from .key_result_appliers import APPLIERS as KEY_RESULT_APPLIERS
from .objective_appliers import APPLIERS as OBJECTIVE_APPLIERS

#: Goals' contract -> the replica's applier. Every other contract is not the replica's.
APPLIERS: dict[type[Any], Applier] = {
    **DIRECTORY_APPLIERS,
    **OBJECTIVE_APPLIERS,
    **KEY_RESULT_APPLIERS,
}


class GoalsReplica:
    """Goals' directory, settings, cycles, objectives and key results, copied into the
    consuming context's own database."""

    name = "okr-goals-replica"

    def __init__(self) -> None:
        self.create_statements: Sequence[str] = schema.statements()

    def batch(self, tx: Tx) -> ReplicaBatch:
        """A batch over ``tx``: apply events to it, then `ReplicaBatch.flush` it."""
        return ReplicaBatch(tx)

    def applier(self, contract_type: type[Any]) -> Applier | None:
        """The applier of a contract, for a handler that dispatches once per contract type
        (`apply` is the same, looked up per event); None if the replica does not copy it."""
        return APPLIERS.get(contract_type)

    def apply(self, event: InboundEvent, batch: ReplicaBatch) -> FactsChange | None:
        """Apply one event to the batch; what it changed, or None for a contract that is not
        goals' (or not one the replica copies: alignment)."""
        apply = APPLIERS.get(type(event.contract))
        return apply(event.contract, event, batch) if apply is not None else None

    def handle(self, event: InboundEvent, tx: Tx) -> None:
        self.handle_batch([event], tx)

    def handle_batch(self, events: Sequence[InboundEvent], tx: Tx) -> None:
        batch = self.batch(tx)
        for event in events:
            self.apply(event, batch)
        batch.flush()
