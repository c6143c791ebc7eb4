"""Domain errors. Each carries a stable code; the API maps the class to an HTTP status."""

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
