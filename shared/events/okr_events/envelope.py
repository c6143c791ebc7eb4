"""CloudEvents 1.0 structured-mode envelope around a contract.

The envelope carries routing metadata (type, source, subject) outside the payload, so a broker
or consumer can filter and dedupe without knowing every contract.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from .base import EventContract
from .registry import contract_for_cloudevents_type

_EVENT_ID_NAMESPACE = uuid.UUID("0b5f3f6e-2d8a-4c7e-9a51-6c1e5b7d2f90")


class InvalidEventData(ValueError):
    """An envelope's data does not satisfy the contract its type names."""


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode.

    Unknown attributes are kept, not refused: CloudEvents lets producers and brokers add
    extension attributes, and consumers must tolerate them.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str = Field(min_length=1, description="Unique per source; consumers dedupe on it.")
    source: str = Field(min_length=1, description="URI-reference of the producer, e.g. /okr/goals")
    type: str = Field(min_length=1, description='Event type with version, e.g. "okr.goals.X.v1".')
    subject: str | None = Field(default=None, description="The aggregate id, as a string.")
    time: AwareDatetime
    specversion: Literal["1.0"] = "1.0"
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    data: dict[str, Any]


def stable_event_id(aggregate_id: uuid.UUID, version: int) -> str:
    """The CloudEvents ``id`` of the event at ``version`` of ``aggregate_id``.

    Derived only from the stream position, so publishing the same recorded event twice (a
    relay retry, a replay) yields the same id: consumers dedupe on (source, id).
    """
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}"))


def envelope(contract: EventContract, *, event_id: str, source: str) -> CloudEvent:
    """Wrap a contract for publishing."""
    return CloudEvent(
        id=event_id,
        source=source,
        type=contract.cloudevents_type(),
        subject=str(contract.aggregate_id),
        time=contract.occurred_at,
        dataschema=contract.schema_uri(),
        data=contract.model_dump(mode="json"),
    )


def open_envelope(ce: CloudEvent) -> EventContract:
    """The contract inside ``ce``: raises UnknownEventType or InvalidEventData."""
    contract_cls = contract_for_cloudevents_type(ce.type)
    try:
        contract = contract_cls.model_validate(ce.data)
    except ValidationError as exc:
        raise InvalidEventData(
            f"event {ce.id!r} from {ce.source!r}: data does not match {ce.type}: {exc}"
        ) from exc
    if ce.subject is not None and ce.subject != str(contract.aggregate_id):
        raise InvalidEventData(
            f"event {ce.id!r} from {ce.source!r}: subject {ce.subject!r} is not the "
            f"data's aggregate_id {str(contract.aggregate_id)!r}"
        )
    return contract
