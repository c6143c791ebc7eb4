"""A command a context refused to run for another context's event, as an event of its own.

When a context applies another context's event as a command (okr_events.commands) and the
command is refused (the handler raises a domain error: the key result is gone, the objective
is closed), the refusal is recorded in the consuming context's event store, in the same
transaction as the consumer's position: never lost, never retried, and published by the
context's relay like any other of its events.

Each refusal is an aggregate of its own whose id derives from the consumer and the inbound
event (aggregate id + version), so a redelivered event cannot be refused twice: a second
`Refusal` with that id would collide with the first's version 1.

The contract's fields are defined once here (`CommandRefusedContract`); each context that
runs commands declares its own type in its namespace, so its relay's generic mapper
(``contract_mapper("okr.<context>.")``) publishes it with no special case::

    @register
    class CommandRefused(CommandRefusedContract):
        \"\"\"The goals context refused to apply another context's event.\"\"\"

        event_type = "okr.goals.CommandRefused"
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event
from pydantic import Field

from .base import EventContract
from .codec import InboundEvent

#: Namespace of refusal ids (uuid5 of "<consumer>:<inbound aggregate id>:<inbound version>").
REFUSAL_NAMESPACE = uuid.UUID("5d0c4b8e-7a3f-4e61-b2d9-1f6a8c3e9b74")


def refusal_id(consumer: str, inbound_aggregate_id: uuid.UUID, inbound_version: int) -> uuid.UUID:
    """The id of the refusal of one inbound event by one consumer (the same on redelivery)."""
    return uuid.uuid5(REFUSAL_NAMESPACE, f"{consumer}:{inbound_aggregate_id}:{inbound_version}")


class Refusal(Aggregate):
    """One inbound event whose command was refused; it never changes after it is recorded."""

    @event("CommandRefused")
    def __init__(
        self,
        *,
        consumer: str,
        inbound_event_id: str,
        inbound_event_type: str,
        inbound_source: str,
        inbound_aggregate_id: uuid.UUID,
        inbound_aggregate_version: int,
        code: str,
        detail: str,
        field: str | None,
        actor: str,
    ) -> None:
        self.consumer = consumer
        self.inbound_event_id = inbound_event_id
        self.inbound_event_type = inbound_event_type
        self.inbound_source = inbound_source
        self.inbound_aggregate_id = inbound_aggregate_id
        self.inbound_aggregate_version = inbound_aggregate_version
        self.code = code
        self.detail = detail
        self.field = field
        self.actor = actor

    @staticmethod
    def create_id(
        consumer: str, inbound_aggregate_id: uuid.UUID, inbound_aggregate_version: int
    ) -> uuid.UUID:
        return refusal_id(consumer, inbound_aggregate_id, inbound_aggregate_version)

    @classmethod
    def of(cls, consumer: str, inbound: InboundEvent, error: Exception) -> Refusal:
        """The refusal of ``inbound`` by ``consumer`` because of ``error``: its ``code`` and
        ``detail`` (and ``field``) as a domain error carries them, else its class and text.
        The actor is the inbound event's: whoever's action the command was refused for."""
        return cls(
            consumer=consumer,
            inbound_event_id=inbound.event_id,
            inbound_event_type=inbound.type,
            inbound_source=inbound.source,
            inbound_aggregate_id=inbound.aggregate_id,
            inbound_aggregate_version=inbound.aggregate_version,
            code=str(getattr(error, "code", None) or type(error).__name__),
            detail=str(getattr(error, "detail", None) or error)[:2000],
            field=_text_or_none(getattr(error, "field", None)),
            actor=inbound.contract.actor,
        )


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class CommandRefusedContract(EventContract):
    """Base of every context's ``CommandRefused`` contract (not registered itself): a command
    the context refused to run for another context's event. The aggregate is the refusal
    (its id derives from ``consumer`` and the inbound aggregate id and version); the actor is
    the inbound event's."""

    consumer: str = Field(description="The consumer (command processor) that refused it.")
    inbound_event_id: str = Field(description="CloudEvents id of the inbound event.")
    inbound_event_type: str = Field(description='Its CloudEvents type, e.g. "okr.x.Y.v1".')
    inbound_source: str = Field(description="Its CloudEvents source, e.g. /okr/reviews.")
    inbound_aggregate_id: uuid.UUID = Field(description="The aggregate the inbound event is of.")
    inbound_aggregate_version: int = Field(ge=1, description="Its version in that aggregate.")
    code: str = Field(description='Why, as a stable code (a domain error\'s, e.g. "not_found").')
    detail: str = Field(description="Why, for people.")
    field: str | None = Field(description="The inbound field at fault, if one is.")
