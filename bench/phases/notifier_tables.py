"""What bench_notifier reads of the notifier's schema: its positions on a topic and a
recipient's check-in notifications, and the waits until it has caught up and notified."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from harness.infrastructure import Postgres
from harness.kafka_topics import high_watermarks
from harness.processes import check_children
from okr_events.kafka import KafkaSettings
from psycopg import sql


class NotifierTables:
    """Reads the notifier's schema: its positions and its notifications."""

    def __init__(self, pg: Postgres, schema: str) -> None:
        self.conn = psycopg.connect(pg.conninfo(), autocommit=True)
        self.schema = schema

    def positions(self, topic: str) -> dict[int, int]:
        """Partition -> next offset the notifier applies of `topic` (its stored tracking,
        application_name "<topic>:<partition>"; its own follow events are tracked there too)."""
        table = sql.Identifier(self.schema, "notifier_projection_tracking")
        query = sql.SQL(
            "SELECT application_name, max(notification_id) FROM {} "
            "WHERE application_name LIKE %s GROUP BY application_name"
        ).format(table)
        try:
            rows = self.conn.execute(query, (f"{topic}:%",)).fetchall()
        except psycopg.errors.UndefinedTable:
            return {}
        return {int(name.rsplit(":", 1)[1]): int(n) for name, n in rows}

    def progress_notifications(self, recipient: str) -> dict[str, tuple[float, dict[str, Any]]]:
        """Event id -> (raised_at as epoch seconds, params) of the recipient's check-in
        notifications (dedupe_key = "progress_updated:<objective>:<follower>:<event id>")."""
        table = sql.Identifier(self.schema, "notifications")
        query = sql.SQL(
            "SELECT dedupe_key, raised_at, params FROM {} "
            "WHERE rule = 'progress_updated' AND recipient_id = %s"
        ).format(table)
        found = {}
        for key, raised_at, params in self.conn.execute(query, (recipient,)):
            moment = datetime.strptime(raised_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            found[key.rsplit(":", 1)[1]] = (moment.timestamp(), json.loads(params))
        return found

    def close(self) -> None:
        self.conn.close()


def wait_caught_up(
    tables: NotifierTables,
    kafka: KafkaSettings,
    topic: str,
    children: list[tuple[Any, str]],
    timeout: float = 120.0,
) -> float:
    """Until the notifier's positions reach the topic's ends; the seconds that took."""
    began = time.monotonic()
    while True:
        ends = high_watermarks(kafka, topic)
        positions = tables.positions(topic)
        if all(positions.get(p, 0) >= end for p, end in ends.items()):
            return time.monotonic() - began
        check_children(children)
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"the notifier is behind after {timeout:.0f} s: {positions}/{ends}")
        time.sleep(0.1)


def wait_notified(
    tables: NotifierTables,
    recipient: str,
    event_ids: set[str],
    children: list[tuple[Any, str]],
    timeout: float = 60.0,
) -> tuple[dict[str, tuple[float, dict[str, Any]]], float]:
    """The recipient's check-in notifications once every event id has one (or after
    `timeout`); and the seconds that took."""
    began = time.monotonic()
    while True:
        found = tables.progress_notifications(recipient)
        if event_ids <= found.keys() or time.monotonic() - began > timeout:
            return found, time.monotonic() - began
        check_children(children)
        time.sleep(0.2)
