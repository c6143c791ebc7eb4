"""The notifier's errors as problem+json (DESIGN "Errors"); what every service answers the same
way (401, invalid requests, unknown routes, 500) is okr_web.problems."""

from __future__ import annotations

from fastapi import FastAPI
from okr_web import problems as common
from okr_web.problems import install_domain_error_handler

from .domain.errors import DomainError, Forbidden, InvalidInput, NotFound

STATUS_OF: dict[type[Exception], int] = {InvalidInput: 422, NotFound: 404, Forbidden: 403}


def install_problem_handlers(app: FastAPI) -> None:
    common.install_problem_handlers(app)
    install_domain_error_handler(app, DomainError, STATUS_OF)
