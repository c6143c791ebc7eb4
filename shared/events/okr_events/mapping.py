"""Domain event -> published contract, generically, for any context.

Contract fields are named like the domain event's attributes, so a context only needs a
contract per event (in okr_events.<context>) and one mapper: ``contract_mapper("okr.goals.")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from .base import EventContract
from .registry import UnknownEventType, contract_for

# Attributes every eventsourcing domain event has, and their names in the contract.
_COMMON = {
    "originator_id": "aggregate_id",
    "originator_version": "aggregate_version",
    "timestamp": "occurred_at",
}
# Set by the framework ("created" events) or by tracing (okr_events.tracing); not contract data.
_FRAMEWORK_ONLY = {"originator_topic", "trace_context"}


class ContractError(ValueError):
    """A domain event cannot be published: no contract, or the contract does not fit it."""


def contract_mapper(prefix: str) -> Callable[[Any], EventContract]:
    """A ``to_contract`` for the context whose event types start with ``prefix``."""
    module = "okr_events." + prefix.strip(".").split(".")[-1]

    def to_contract(domain_event: Any) -> EventContract:
        name = type(domain_event).__qualname__
        try:
            contract = contract_for(prefix + type(domain_event).__name__)
        except UnknownEventType as exc:
            raise ContractError(f"{name} has no contract: add one to {module}") from exc
        attributes = vars(domain_event)
        payload = {field: attributes[attr] for attr, field in _COMMON.items() if attr in attributes}
        payload |= {f: attributes[f] for f in contract.model_fields if f in attributes}
        missing = sorted(contract.model_fields.keys() - payload.keys())
        unmapped = sorted(attributes.keys() - _COMMON.keys() - _FRAMEWORK_ONLY - payload.keys())
        if missing or unmapped:
            raise ContractError(
                f"{name} does not fit {contract.cloudevents_type()}: "
                f"missing from the event {missing}, missing from the contract {unmapped}"
            )
        try:
            return contract.model_validate(payload)
        except ValidationError as exc:
            raise ContractError(f"{name} breaks {contract.cloudevents_type()}: {exc}") from exc

    return to_contract
