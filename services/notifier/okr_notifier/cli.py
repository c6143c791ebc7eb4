"""`okr-notifier`: operations on the notifier's store.

okr-notifier rebuild          drop the projections and replay every topic from offset 0
                              (--workers N processes on PostgreSQL, each a share of the
                              partitions; default: the cores, at most 4)
okr-notifier daily-checks     run the daily checks due now (optionally --at a moment)

What stops a command (a bad setting, PostgreSQL or Kafka away) is one line on stderr and exit
code 1; a rebuild refused because the live notifier runs exits with 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime

import psycopg
from okr_events.kafka import KafkaSettings
from okr_events.outages import one_line
from okr_platform.cli import CommandFailed, run_command, settings_from_environment
from okr_platform.clock import FakeClock, SystemClock
from tqdm import tqdm

from .application import FollowsApplication
from .rebuild import DEFAULT_WORKERS, NotifierRunning, check_group_idle, rebuild
from .scheduler import DailyChecks
from .service import open_store
from .settings import NotifierSettings

#: Seconds a command waits for PostgreSQL or Kafka to answer before it gives up.
CONNECT_TIMEOUT = 5


def _check_database(settings: NotifierSettings) -> None:
    """Fail at once, in one line, when the notifier's PostgreSQL does not answer."""
    if settings.embedded:
        return
    try:
        with psycopg.connect(settings.postgres_conninfo(), connect_timeout=CONNECT_TIMEOUT) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        raise CommandFailed(
            f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port} (database "
            f"{settings.postgres_dbname}) does not answer: {one_line(error)}"
        ) from None


def _check_kafka(kafka: KafkaSettings) -> None:
    """Fail at once, in one line, when no Kafka broker answers."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**kafka.common(), "log_level": 0})
    try:
        admin.list_topics(timeout=CONNECT_TIMEOUT)
    except KafkaException as error:
        raise CommandFailed(
            f"Kafka at {kafka.bootstrap_servers} does not answer: {one_line(error)}"
        ) from None


def _rebuild(args: argparse.Namespace) -> int:
    settings = settings_from_environment(NotifierSettings)
    kafka = settings_from_environment(KafkaSettings)
    _check_database(settings)
    _check_kafka(kafka)
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
    settings = settings_from_environment(NotifierSettings)
    _check_database(settings)
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
    return run_command(f"okr-notifier {args.command}", lambda: int(args.run(args)))


if __name__ == "__main__":
    sys.exit(main())
