"""Domain event -> published contract, generically: contract fields are named like the event's
attributes, so adding an event only needs a contract in okr_events.goals."""

from __future__ import annotations

from typing import Any

from okr_events import EventContract, UnknownEventType, contract_for
from pydantic import ValidationError

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


def to_contract(domain_event: Any) -> EventContract:
    name = type(domain_event).__qualname__
    try:
        contract = contract_for("okr.goals." + type(domain_event).__name__)
    except UnknownEventType as exc:
        raise ContractError(f"{name} has no contract: add one to okr_events.goals") from exc
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
