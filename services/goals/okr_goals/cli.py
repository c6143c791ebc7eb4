"""`okr` command line: development tokens and the demo dataset.

okr token <member> [--org demo] [--role admin ...]
okr demo [--org demo]
"""

from __future__ import annotations

import argparse
import sys

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

    settings = GoalsSettings()
    if args.command == "token":
        print(mint_development_token(settings, args.member, args.org, args.roles))
        return 0
    from .demo import load_demo

    print(load_demo(settings, args.org), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
