"""`okr` command line: development tokens and the demo dataset.

okr token <member> [--org demo] [--role admin ...]
okr demo [--org demo]

What stops a command (a bad setting, the database or Kafka away) is one line on stderr and exit
code 1.
"""

from __future__ import annotations

import argparse
import sys

from okr_events.vocabulary import ROLES
from okr_platform.cli import CommandFailed, run_command, settings_from_environment

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
        choices=ROLES,
    )
    demo = commands.add_parser("demo", help="load the seed's organisation and board")
    demo.add_argument("--org", default="demo")
    args = parser.parse_args(argv)
    return run_command(f"okr {args.command}", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    settings = settings_from_environment(GoalsSettings)
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
