"""JWT bearer authentication, as every context of the suite does it (docs/architecture.md#auth):
claims sub (member id), org, roles.

HS256 with a secret from settings by default; RS256 with a PEM public key or a JWKS URL.
Routes take the caller through `caller_dependency` (one style for every context)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Protocol

import jwt
from fastapi import Header

from .principal import Principal
from .settings import JWTSettings


class AuthenticationError(Exception):
    """No token, or a token that is forged, expired or missing claims (401)."""

    def __init__(self, detail: str, code: str = "unauthenticated"):
        super().__init__(detail)
        self.detail = detail
        self.code = code


class Authenticator(Protocol):
    """What turns an Authorization header into the caller: a TokenVerifier, or a service that
    delegates to one (a test double may read its own fake tokens)."""

    def principal(self, authorization: str | None) -> Principal: ...


class TokenVerifier:
    def __init__(self, settings: JWTSettings):
        settings.check_secure()  # refuses to start without a real key outside the embedded default
        self.algorithm = settings.jwt_algorithm
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url) if settings.jwt_jwks_url else None
        # check_secure: RS256 without a JWKS URL has a public key; with one, _key is unused.
        self._key: str = (
            settings.hs256_secret()
            if self.algorithm == "HS256"
            else (settings.jwt_public_key or "")
        )

    def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthenticationError("send Authorization: Bearer <token>")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self._key
            claims = jwt.decode(
                token.strip(), key, algorithms=[self.algorithm], options={"require": ["sub", "org"]}
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("the token has expired", "token_expired") from None
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"invalid token: {error}", "invalid_token") from None
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthenticationError("the roles claim must be a list of strings", "invalid_token")
        if not isinstance(claims["sub"], str) or not isinstance(claims["org"], str):
            raise AuthenticationError("sub and org must be strings", "invalid_token")
        return Principal(member_id=claims["sub"], org=claims["org"], roles=frozenset(roles))


def caller_dependency(
    get_authenticator: Callable[[], Authenticator],
) -> Callable[[str | None], Awaitable[Principal]]:
    """The caller from the bearer token, as a FastAPI dependency: a route takes
    `me: Annotated[Principal, Depends(caller_dependency(...))]`. The Authorization header shows
    in OpenAPI as the route's header parameter; a missing, malformed, forged or expired token
    raises AuthenticationError (the 401 problem) before the route's body runs.

    `get_authenticator` is called per request, so a context's service may be built lazily."""

    async def caller(authorization: Annotated[str | None, Header()] = None) -> Principal:
        # async: verifying a JWT is quick CPU work; it saves a hop to the thread pool.
        return get_authenticator().principal(authorization)

    return caller
