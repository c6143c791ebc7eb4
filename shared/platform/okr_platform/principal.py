"""The authenticated caller, as every service's token verifier returns it
(docs/architecture.md#auth)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: JWT claims `sub` (member id), `org` (slug) and `roles`."""

    member_id: str
    org: str
    roles: frozenset[str] = field(default_factory=frozenset)
