"""How every command line of the suite fails: one clear line on stderr and exit code 1 for what
stops a command (a bad setting, an unreachable database or broker, a refused command), a
traceback only for a bug. `okr`, `okr-notifier` and the contexts to come use it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from okr_events.outages import is_outage, one_line, settings_problem, what_failed
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from .errors import DomainError
from .settings import InsecureConfiguration

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class CommandFailed(RuntimeError):
    """A command could not do its work for a reason its message explains."""


def settings_from_environment(settings: type[SettingsT]) -> SettingsT:
    """The settings from the environment; a bad one is a CommandFailed naming its variable."""
    try:
        return settings()
    except ValidationError as error:
        raise CommandFailed(settings_problem(error, settings)) from None


def run_command(tool: str, command: Callable[[], int]) -> int:
    """Run `command`; what stops it is one line `<tool>: <why>` on stderr and exit code 1."""
    try:
        return command()
    except (CommandFailed, InsecureConfiguration, DomainError) as error:
        print(f"{tool}: {error}", file=sys.stderr)
    except Exception as error:
        if not is_outage(error):
            raise  # a bug: its traceback
        print(f"{tool}: {what_failed(error)} unavailable: {one_line(error)}", file=sys.stderr)
    return 1
