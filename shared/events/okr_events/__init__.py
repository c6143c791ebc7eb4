"""OKR suite event contracts: what services publish, independent of any service's domain."""

from . import execution, goals, notifier
from .base import EventContract, JsonObject
from .envelope import CloudEvent, InvalidEventData, envelope, open_envelope, stable_event_id
from .execution import EXECUTION_SOURCE, EXECUTION_TOPIC
from .goals import GOALS_SOURCE, GOALS_TOPIC
from .notifier import NOTIFIER_SOURCE, NOTIFIER_TOPIC
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
    "EXECUTION_SOURCE",
    "EXECUTION_TOPIC",
    "GOALS_SOURCE",
    "GOALS_TOPIC",
    "NOTIFIER_SOURCE",
    "NOTIFIER_TOPIC",
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
    "execution",
    "goals",
    "notifier",
    "open_envelope",
    "register",
    "stable_event_id",
    "unregister",
]
