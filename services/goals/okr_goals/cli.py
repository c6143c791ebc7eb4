"""`okr` command line: development tokens and the demo dataset.

okr token <member> [--org demo] [--role admin ...]
okr demo [--org demo]

What stops a command (a bad setting, the database or Kafka away) is one line on stderr and exit
code 1.
"""

from __future__ import annotations

import argparse
import sys

from okr_events.outages import is_outage, one_line, settings_problem, what_failed
from okr_platform.errors import DomainError
from okr_platform.settings import InsecureConfiguration
from pydantic import ValidationError

from .auth import mint_development_token
from .settings import GoalsSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="okr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print a development JWT for a member")
    token.add_argument("member")
    token.add_argument("--org", default="demo")
    token.add_argument(
        "--role",
        action="append",
        default=[],
        dest="roles",
        choices=["employee", "supervisor", "admin"],
    )
    demo = commands.add_parser("demo", help="load the seed's organisation and board")
    demo.add_argument("--org", default="demo")
    args = parser.parse_args(argv)
    tool = f"okr {args.command}"
    try:
        return run(args)
    except ValidationError as error:
        print(f"{tool}: {settings_problem(error, GoalsSettings)}", file=sys.stderr)
    except (CommandFailed, InsecureConfiguration, DomainError) as error:
        print(f"{tool}: {error}", file=sys.stderr)
    except Exception as error:
        if not is_outage(error):
            raise  # a bug: its traceback
        print(f"{tool}: {what_failed(error)} unavailable: {one_line(error)}", file=sys.stderr)
    return 1


class CommandFailed(RuntimeError):
    """A command could not do its work for a reason its message explains."""


def run(args: argparse.Namespace) -> int:
    settings = GoalsSettings()
    if args.command == "token":
        print(mint_development_token(settings, args.member, args.org, args.roles))
        return 0
    from .demo import DatabaseUnreachable, load_demo  # here: `okr token` stays quick

    try:
        print(load_demo(settings, args.org), file=sys.stderr)
    except DatabaseUnreachable as error:
        raise CommandFailed(f"{error}; is the stack up? (`make up`, `make ps`)") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
