"""OKR suite event contracts: what services publish, independent of any service's domain."""

from . import goals
from .base import EventContract, JsonObject
from .envelope import CloudEvent, InvalidEventData, envelope, open_envelope, stable_event_id
from .goals import GOALS_SOURCE, GOALS_TOPIC
from .registry import (
    REGISTRY,
    UnknownEventType,
    all_contracts,
    contract_for,
    contract_for_cloudevents_type,
    register,
    unregister,
)

__all__ = [
    "GOALS_SOURCE",
    "GOALS_TOPIC",
    "REGISTRY",
    "CloudEvent",
    "EventContract",
    "InvalidEventData",
    "JsonObject",
    "UnknownEventType",
    "all_contracts",
    "contract_for",
    "contract_for_cloudevents_type",
    "envelope",
    "goals",
    "open_envelope",
    "register",
    "stable_event_id",
    "unregister",
]
