"""What every goals route shares: the caller (a FastAPI dependency), If-Match and ETag, the
changes of a PATCH body, and the error statuses each kind of route declares in OpenAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Response
from okr_platform.auth import caller_dependency
from okr_platform.errors import InvalidInput
from okr_platform.openapi import problem_responses
from okr_platform.principal import Principal
from pydantic import BaseModel

from ..service import GoalsService

ServiceGetter = Callable[[], GoalsService]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='the version from the ETag, e.g. "3"; * for any'),
]

# Every goals route authenticates (401); the router declares it once.
AUTHENTICATED = problem_responses(401)
# A command on an objective: not allowed (403), unknown or invisible (404), not in this state
# or contention (409), stale If-Match (412), invalid (422).
OBJECTIVE_COMMAND = problem_responses(403, 404, 409, 412, 422)
# A read the views serve: they may be behind or stopped (503).
VIEWS_READ = problem_responses(422, 503)


def principal_dependency(
    get_service: ServiceGetter,
) -> Callable[[str | None], Awaitable[Principal]]:
    """The caller from the bearer token (the kit's caller_dependency; 401 problem otherwise)."""
    return caller_dependency(lambda: get_service().verifier)


def parse_if_match(if_match: str | None) -> int | None:
    """If-Match carries the version from an ETag: "5", W/"5" or 5; * means any."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not (value.isascii() and value.isdigit()):  # "²" is a digit to str.isdigit
        raise InvalidInput('If-Match must be a version ETag such as "3"', field="If-Match")
    return int(value)


def with_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def changes_of(model: BaseModel) -> dict[str, Any]:
    """The fields a PATCH body sent (at least one)."""
    changes = model.model_dump(exclude_unset=True)
    if not changes:
        raise InvalidInput("send at least one field to change", field="body")
    return changes
