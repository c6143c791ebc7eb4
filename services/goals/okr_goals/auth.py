"""Development tokens for `okr token` and the tests. Verifying tokens is okr_platform.auth's, the
same for every service of the suite (docs/architecture.md#auth)."""

from __future__ import annotations

from datetime import timedelta

import jwt
from okr_platform.clock import SystemClock

from .settings import GoalsSettings


def mint_development_token(
    settings: GoalsSettings, member_id: str, org: str, roles: list[str]
) -> str:
    """A token signed with the configured HS256 secret, for `okr token` and the tests."""
    # The wall clock, not the goals service's: verifiers (PyJWT) judge iat and exp by it.
    now = SystemClock().now()
    claims = {
        "sub": member_id,
        "org": org,
        "roles": roles,
        "iat": now,
        "exp": now + timedelta(hours=settings.jwt_token_ttl_hours),
    }
    return jwt.encode(claims, settings.hs256_secret(), algorithm="HS256")
