"""What the API reads: inbox, follows, progress history, the operations report (report.py).

Plain SQL over the notifier's tables; goals' facts through the replica's reads
(okr_platform.replica.reads). Visibility is decided by the suite's access policy
(okr_platform.access) over the same Directory the rules use, so the API never shows an
objective its caller may not see."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

from okr_events.consuming import ConsumerStore
from okr_platform import access
from okr_platform.clock import utc_text
from okr_platform.directory import Directory
from okr_platform.errors import NotFound
from okr_platform.principal import Principal
from okr_platform.replica import ObjectiveFacts
from okr_platform.replica import reads as replica
from okr_platform.replica.reads import OBJECTIVE_FACTS, facts_from_row

from .report import operations_report


class Reads:
    def __init__(self, store: ConsumerStore) -> None:
        self.store = store

    # ---- who and what ------------------------------------------------------------------------

    def org_id(self, principal: Principal) -> str:
        org_id = replica.org_id_of(self.store.query, principal.org)
        if org_id is None:
            raise NotFound(f"unknown organisation {principal.org!r}", field="org")
        return org_id

    def directory(self, org_id: str) -> Directory:
        with self.store.transaction() as tx:  # members and departments as of one moment
            return replica.load_directory(tx.execute, org_id)

    def visible_objective(self, principal: Principal, objective_id: str) -> ObjectiveFacts:
        """The objective, if the caller may see it; 404 otherwise, never 403
        (docs/access-policy.md)."""
        org_id = self.org_id(principal)
        facts = replica.objective_facts(self.store.query, objective_id)
        if facts is None or facts.org_id != org_id or not self.can_see(principal, facts):
            raise NotFound(f"objective {objective_id} not found", field="objective_id")
        return facts

    def can_see(
        self, principal: Principal, facts: ObjectiveFacts, directory: Directory | None = None
    ) -> bool:
        return access.can_see(
            principal,
            directory or self.directory(facts.org_id),
            visibility=facts.visibility,
            owner_ids=facts.owner_ids,
            department_id=facts.department_id,
        )

    # ---- follows -----------------------------------------------------------------------------

    def followed(self, principal: Principal) -> list[dict[str, Any]]:
        """Objectives the caller follows (and may still see), with progress and confidence."""
        org_id = self.org_id(principal)
        rows = self.store.query(
            OBJECTIVE_FACTS.replace("SELECT ", "SELECT f.settings, f.since, ", 1)
            + """ JOIN follows f ON f.objective_id = o.objective_id
            WHERE f.org_id = :org_id AND f.follower_id = :member_id AND f.active = 1
            ORDER BY f.since, o.objective_id""",
            {"org_id": org_id, "member_id": principal.member_id},
        )
        directory = self.directory(org_id)
        result = []
        for row in rows:
            facts = facts_from_row(row)
            if not self.can_see(principal, facts, directory):
                continue
            result.append(
                {
                    "objective_id": facts.objective_id,
                    "title": facts.title,
                    "status": facts.status,
                    "cycle_id": facts.cycle_id,
                    "progress": facts.progress,
                    "confidence": facts.confidence,
                    "following_since": row["since"],
                    "settings": json.loads(row["settings"]),
                }
            )
        return result

    # ---- inbox -------------------------------------------------------------------------------

    def inbox(
        self, org_id: str, member_id: str, *, unread_only: bool, limit: int, before: int | None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first; ``before`` is the cursor of the next page (an id)."""
        conditions = ["org_id = :org_id", "recipient_id = :member_id"]
        params: dict[str, Any] = {"org_id": org_id, "member_id": member_id, "limit": limit + 1}
        if unread_only:
            conditions.append("read_at IS NULL")
        if before is not None:
            conditions.append("id < :before")
            params["before"] = before
        rows = self.store.query(
            f"""SELECT * FROM notifications WHERE {" AND ".join(conditions)}
            ORDER BY id DESC LIMIT :limit""",
            params,
        )
        page = [notification(row) for row in rows[:limit]]
        next_cursor = page[-1]["id"] if len(rows) > limit else None
        return page, next_cursor

    def since(self, org_id: str, member_id: str, after: int, limit: int = 100) -> list[dict]:
        rows = self.store.query(
            """SELECT * FROM notifications
            WHERE org_id = :org_id AND recipient_id = :member_id AND id > :after
            ORDER BY id LIMIT :limit""",
            {"org_id": org_id, "member_id": member_id, "after": after, "limit": limit},
        )
        return [notification(row) for row in rows]

    def latest_id(self, org_id: str, member_id: str) -> int:
        rows = self.store.query(
            """SELECT MAX(id) AS latest FROM notifications
            WHERE org_id = :org_id AND recipient_id = :member_id""",
            {"org_id": org_id, "member_id": member_id},
        )
        return int(rows[0]["latest"] or 0)

    def max_id(self) -> int:
        rows = self.store.query("SELECT MAX(id) AS latest FROM notifications")
        return int(rows[0]["latest"] or 0)

    def unread_count(self, org_id: str, member_id: str) -> int:
        rows = self.store.query(
            """SELECT COUNT(*) AS unread FROM notifications
            WHERE org_id = :org_id AND recipient_id = :member_id AND read_at IS NULL""",
            {"org_id": org_id, "member_id": member_id},
        )
        return int(rows[0]["unread"])

    def mark_read(self, org_id: str, member_id: str, notification_id: int, now: datetime) -> dict:
        params = {"org_id": org_id, "member_id": member_id, "id": notification_id}
        self.store.query(
            """UPDATE notifications SET read_at = :now
            WHERE id = :id AND org_id = :org_id AND recipient_id = :member_id
                AND read_at IS NULL""",
            {**params, "now": utc_text(now)},
        )
        rows = self.store.query(
            """SELECT * FROM notifications
            WHERE id = :id AND org_id = :org_id AND recipient_id = :member_id""",
            params,
        )
        if not rows:
            raise NotFound(f"notification {notification_id} not found", field="notification_id")
        return notification(rows[0])

    def mark_all_read(
        self, org_id: str, member_id: str, now: datetime, up_to: int | None = None
    ) -> int:
        """Mark everything unread (up to an id, so what arrived since stays unread)."""
        condition = " AND id <= :up_to" if up_to is not None else ""
        params: dict[str, Any] = {"org_id": org_id, "member_id": member_id}
        if up_to is not None:
            params["up_to"] = up_to
        before = self.unread_count(org_id, member_id)
        self.store.query(
            f"""UPDATE notifications SET read_at = :now
            WHERE org_id = :org_id AND recipient_id = :member_id AND read_at IS NULL{condition}""",
            {**params, "now": utc_text(now)},
        )
        return before - self.unread_count(org_id, member_id)

    # ---- progress history and the operations report -----------------------------------------

    def progress_history(self, objective_id: str, kr_id: str | None) -> list[dict[str, Any]]:
        condition = " AND kr_id = :kr_id" if kr_id is not None else ""
        rows = self.store.query(
            f"""SELECT * FROM progress_history WHERE objective_id = :objective_id{condition}
            ORDER BY version, kr_id""",
            {"objective_id": objective_id, "kr_id": "" if kr_id == "objective" else kr_id},
        )
        return [history_point(row) for row in rows]

    def operations_report(
        self, principal: Principal, cycle_id: str, as_of: datetime
    ) -> dict[str, Any]:
        return operations_report(self, principal, cycle_id, as_of)


def notification(row: Any) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "rule": row["rule"],
        "objective_id": row["objective_id"],
        "message_key": row["message_key"],
        "params": json.loads(row["params"]),
        "link": row["link"],
        "created_at": row["created_at"],
        "read": row["read_at"] is not None,
        "read_at": row["read_at"],
    }


def history_point(row: Any) -> dict[str, Any]:
    return {
        "kr_id": row["kr_id"] or None,
        "version": row["version"],
        "at": row["at"],
        "actor": row["actor"],
        "source": row["source"],
        "check_in_id": row["check_in_id"],
        "value_before": row["value_before"],
        "value_after": row["value_after"],
        "target": row["target"],
        "progress_before": row["progress_before"],
        "progress_after": row["progress_after"],
        "confidence_before": row["confidence_before"],
        "confidence_after": row["confidence_after"],
        "risk_after": row["risk_after"],
        "note": row["note"],
    }


def as_of_moment(value: str) -> datetime:
    """`as_of` as a date (the end of that day, UTC) or an aware timestamp."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("as_of needs a UTC offset, e.g. 2026-11-23T10:00:00+08:00") from None
        return moment.astimezone(UTC)
    return datetime.combine(day, time.max, tzinfo=UTC)
