"""The notifier's use cases on its own aggregates: following objectives (event-sourced).

Each change goes through the write loop of okr_platform.writes: writers of one follow in this
process take turns; a collision with another process (e.g. a concurrent first follow winning
the creation) is tried again on fresh state."""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Recording
from okr_platform.errors import NotFound
from okr_platform.writes import OptimisticWrites, contention

from .domain.follow import Follow, follow_id

Recordings = list[Recording[uuid.UUID]]


class FollowsApplication(Application[uuid.UUID]):
    name = "notifier"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.writes = OptimisticWrites(self.save)

    def follow(
        self,
        org_id: uuid.UUID,
        follower_id: str,
        objective_id: uuid.UUID,
        settings: dict[str, Any] | None = None,
    ) -> tuple[Follow, Recordings]:
        """Start (or resume) following; following twice changes nothing."""
        key = follow_id(org_id, follower_id, objective_id)
        with self.writes.locked(key):
            for attempt in self.writes.attempts():
                try:
                    follow: Follow = self.repository.get(key)
                except AggregateNotFoundError:
                    follow = Follow.start(org_id, follower_id, objective_id, settings)
                else:
                    follow.resume(settings)
                if attempt.saved(follow):
                    return follow, list(attempt.recordings)
        raise contention()

    def change_settings(
        self, org_id: uuid.UUID, follower_id: str, objective_id: uuid.UUID, changes: dict[str, Any]
    ) -> tuple[Follow, Recordings]:
        with self.writes.locked(follow_id(org_id, follower_id, objective_id)):
            for attempt in self.writes.attempts():
                follow = self.get_follow(org_id, follower_id, objective_id)
                follow.change_settings(changes)
                if attempt.saved(follow):
                    return follow, list(attempt.recordings)
        raise contention()

    def unfollow(self, org_id: uuid.UUID, follower_id: str, objective_id: uuid.UUID) -> Recordings:
        key = follow_id(org_id, follower_id, objective_id)
        with self.writes.locked(key):
            for attempt in self.writes.attempts():
                try:
                    follow: Follow = self.repository.get(key)
                except AggregateNotFoundError:
                    return []
                follow.stop()
                if attempt.saved(follow):
                    return list(attempt.recordings)
        raise contention()

    def get_follow(self, org_id: uuid.UUID, follower_id: str, objective_id: uuid.UUID) -> Follow:
        try:
            follow: Follow = self.repository.get(follow_id(org_id, follower_id, objective_id))
        except AggregateNotFoundError:
            raise NotFound("you do not follow this objective", field="objective_id") from None
        if not follow.active:
            raise NotFound("you do not follow this objective", field="objective_id")
        return follow
