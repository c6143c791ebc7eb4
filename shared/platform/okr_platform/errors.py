"""The domain errors every context raises. Each carries a stable `code`, a human `detail` and
the offending `field`; `STATUS_OF` is the one map from error class to HTTP status, which
`okr_platform.problems` turns into problem+json. Domain code may import this module (no
framework in it)."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a command was refused. Nothing was recorded."""

    code = "domain_error"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    """The command's data breaks a domain rule (422)."""

    code = "invalid_input"


class NotFound(DomainError):
    """Unknown id, or an id the caller may not see (404)."""

    code = "not_found"


class IllegalTransition(DomainError):
    """The aggregate's current state does not allow this command (409)."""

    code = "illegal_transition"


class Conflict(DomainError):
    """The command conflicts with existing state, e.g. a duplicate or an alignment cycle (409)."""

    code = "conflict"


class Forbidden(DomainError):
    """The caller is known but may not do this (403)."""

    code = "forbidden"


class StaleVersion(DomainError):
    """The caller's If-Match version is not the aggregate's current version (412)."""

    code = "stale_version"


class ReadSideBehind(RuntimeError):
    """The read side (a context's views, a projection) did not catch up with what the request
    saw or wrote in time, or is not running: try again shortly (503 `views_unavailable`). Not a
    DomainError: the command, if any, was recorded."""

    code = "views_unavailable"


# The first class an error is an instance of gives its status (problems.install_problem_handlers).
STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    IllegalTransition: 409,
    Conflict: 409,
    Forbidden: 403,
    StaleVersion: 412,
}
