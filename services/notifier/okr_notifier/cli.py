"""`okr-notifier`: operations on the notifier's store.

okr-notifier rebuild          drop the projections and replay every topic from offset 0
                              (--workers N processes on PostgreSQL, each a share of the
                              partitions; default: the cores, at most 4)
okr-notifier daily-checks     run the daily checks due now (optionally --at a moment)
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime

from okr_events.kafka import KafkaSettings
from okr_platform.clock import FakeClock, SystemClock
from tqdm import tqdm

from .application import FollowsApplication
from .rebuild import DEFAULT_WORKERS, NotifierRunning, check_group_idle, rebuild
from .scheduler import DailyChecks
from .service import open_store
from .settings import NotifierSettings


def _rebuild(args: argparse.Namespace) -> int:
    settings = NotifierSettings()
    kafka = KafkaSettings()
    if not args.force:
        try:
            check_group_idle(kafka, settings.group_id)
        except NotifierRunning as error:
            print(f"okr-notifier rebuild: {error}", file=sys.stderr)
            return 2
    store = open_store(settings)
    follows = FollowsApplication(env=settings.event_store_env())
    bar = tqdm(total=0, unit="ev", unit_scale=True, desc="rebuild", disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        result = rebuild(settings, store, follows, kafka, progress=progress, workers=args.workers)
    finally:
        bar.close()
        follows.close()
        store.datastore.close()  # type: ignore[attr-defined]
    print(
        f"rebuilt from {result.events} events in {result.seconds:.1f} s "
        f"({result.events_per_second:,.0f} events/s; {result.dead_lettered} dead letters)"
    )
    return 0


def _daily_checks(args: argparse.Namespace) -> int:
    settings = NotifierSettings()
    store = open_store(settings)
    clock = FakeClock(datetime.fromisoformat(args.at)) if args.at else SystemClock()
    try:
        made = DailyChecks(store, clock).run_due()
    finally:
        store.datastore.close()  # type: ignore[attr-defined]
    print(f"{made} notification(s) at {clock.now().isoformat()}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(
        prog="okr-notifier",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rebuild_cmd = commands.add_parser("rebuild", help="replay every topic into fresh projections")
    rebuild_cmd.add_argument(
        "--force", action="store_true", help="skip the check that the live consumer group is idle"
    )
    rebuild_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    rebuild_cmd.add_argument(
        "--workers",
        type=_positive,
        default=DEFAULT_WORKERS,
        help="replay processes on PostgreSQL, each a share of the partitions (default: "
        f"{DEFAULT_WORKERS}, the cores up to 4; SQLite: always 1)",
    )
    rebuild_cmd.set_defaults(run=_rebuild)
    checks = commands.add_parser("daily-checks", help="run the daily checks due now")
    checks.add_argument("--at", help="as if it were this moment (ISO-8601 with offset)")
    checks.set_defaults(run=_daily_checks)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
