"""The follows table, from the notifier's own follow events (okr_events.notifier): who
follows which objective, with which reminder settings, since when. Each applier writes only
its follow's row."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from okr_events import notifier
from okr_events.consuming import Tx
from okr_platform.clock import utc_text


def _follow_started(c: Any, tx: Tx) -> None:
    tx.execute(
        """INSERT INTO follows (follow_id, org_id, follower_id, objective_id, active, settings,
            since)
        VALUES (:follow_id, :org_id, :follower_id, :objective_id, 1, :settings, :since)
        ON CONFLICT (follow_id) DO NOTHING""",
        {
            "follow_id": str(c.aggregate_id),
            "org_id": str(c.org_id),
            "follower_id": c.follower_id,
            "objective_id": str(c.objective_id),
            "settings": json.dumps(c.settings),
            "since": utc_text(c.occurred_at),
        },
    )


def _follow_settings(c: Any, tx: Tx) -> None:
    resumed = isinstance(c, notifier.FollowResumed)
    tx.execute(
        f"""UPDATE follows SET settings = :settings, active = 1
            {", since = :since" if resumed else ""}
        WHERE follow_id = :follow_id""",
        {
            "settings": json.dumps(c.settings),
            "follow_id": str(c.aggregate_id),
            **({"since": utc_text(c.occurred_at)} if resumed else {}),
        },
    )


def _follow_stopped(c: Any, tx: Tx) -> None:
    tx.execute(
        "UPDATE follows SET active = 0 WHERE follow_id = :follow_id",
        {"follow_id": str(c.aggregate_id)},
    )


APPLIERS: dict[type[Any], Callable[[Any, Tx], None]] = {
    notifier.FollowStarted: _follow_started,
    notifier.FollowSettingsChanged: _follow_settings,
    notifier.FollowResumed: _follow_settings,
    notifier.FollowStopped: _follow_stopped,
}
