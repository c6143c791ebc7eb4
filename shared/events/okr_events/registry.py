"""Every known contract, by CloudEvents type, so consumers can decode what they receive."""

from __future__ import annotations

from typing import TypeVar

from .base import EventContract

C = TypeVar("C", bound=type[EventContract])

#: CloudEvents type ("okr.goals.KRProgressUpdated.v1") -> contract class.
REGISTRY: dict[str, type[EventContract]] = {}
#: Event type -> version -> contract class (the relay looks one up per event it publishes).
_VERSIONS: dict[str, dict[int, type[EventContract]]] = {}


class UnknownEventType(KeyError):
    """No contract is registered for an event type (or for that version of it)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def register(contract: C) -> C:
    """Class decorator: make a contract discoverable. Re-registering a type is a bug."""
    if not isinstance(getattr(contract, "event_type", None), str) or contract.version < 1:
        raise TypeError(f"{contract.__name__} needs a str event_type and a version >= 1")
    key = contract.cloudevents_type()
    existing = REGISTRY.get(key)
    if existing is not None and existing is not contract:
        raise ValueError(f"{key} is already registered by {existing.__qualname__}")
    REGISTRY[key] = contract
    _VERSIONS.setdefault(contract.event_type, {})[contract.version] = contract
    return contract


def unregister(contract: type[EventContract]) -> None:
    """Forget a contract (tests that register throwaway versions clean up with this)."""
    key = contract.cloudevents_type()
    if REGISTRY.get(key) is contract:
        del REGISTRY[key]
        _VERSIONS[contract.event_type].pop(contract.version, None)


def contract_for(event_type: str, version: int | None = None) -> type[EventContract]:
    """The contract of ``event_type`` ("okr.goals.KRProgressUpdated"); latest when no version."""
    versions = _VERSIONS.get(event_type, {})
    if not versions:
        raise UnknownEventType(f"no contract registered for event type {event_type!r}")
    if version is None:
        return versions[max(versions)]
    if version not in versions:
        raise UnknownEventType(
            f"no contract for {event_type!r} version {version}; known: {sorted(versions)}"
        )
    return versions[version]


def contract_for_cloudevents_type(ce_type: str) -> type[EventContract]:
    """The contract of a CloudEvents type ("okr.goals.KRProgressUpdated.v1")."""
    try:
        return REGISTRY[ce_type]
    except KeyError:
        raise UnknownEventType(f"no contract registered for CloudEvents type {ce_type!r}") from None


def all_contracts() -> list[type[EventContract]]:
    """Every registered contract, ordered by CloudEvents type (stable for schema export)."""
    return [REGISTRY[key] for key in sorted(REGISTRY)]
