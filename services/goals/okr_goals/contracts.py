"""Domain event -> published contract: the generic mapping of okr_events, for goals' events."""

from __future__ import annotations

from okr_events.mapping import ContractError, contract_mapper

to_contract = contract_mapper("okr.goals.")

__all__ = ["ContractError", "to_contract"]
