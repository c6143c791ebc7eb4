"""The notifier's use cases on its own aggregates: following objectives (event-sourced)."""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Recording
from okr_platform.errors import NotFound

from .domain.follow import Follow, follow_id


class FollowsApplication(Application[uuid.UUID]):
    name = "notifier"

    def follow(
        self,
        org_id: uuid.UUID,
        follower_id: str,
        objective_id: uuid.UUID,
        settings: dict[str, Any] | None = None,
    ) -> tuple[Follow, list[Recording[uuid.UUID]]]:
        """Start (or resume) following; following twice changes nothing."""
        for _ in range(2):  # a concurrent first follow wins the creation: then resume it
            try:
                follow: Follow = self.repository.get(follow_id(org_id, follower_id, objective_id))
            except AggregateNotFoundError:
                follow = Follow.start(org_id, follower_id, objective_id, settings)
            else:
                follow.resume(settings)
            try:
                return follow, self.save(follow)
            except IntegrityError:
                continue
        raise RuntimeError("following kept conflicting with concurrent requests")

    def change_settings(
        self, org_id: uuid.UUID, follower_id: str, objective_id: uuid.UUID, changes: dict[str, Any]
    ) -> tuple[Follow, list[Recording[uuid.UUID]]]:
        follow = self.get_follow(org_id, follower_id, objective_id)
        follow.change_settings(changes)
        return follow, self.save(follow)

    def unfollow(
        self, org_id: uuid.UUID, follower_id: str, objective_id: uuid.UUID
    ) -> list[Recording[uuid.UUID]]:
        try:
            follow: Follow = self.repository.get(follow_id(org_id, follower_id, objective_id))
        except AggregateNotFoundError:
            return []
        follow.stop()
        return self.save(follow)

    def get_follow(self, org_id: uuid.UUID, follower_id: str, objective_id: uuid.UUID) -> Follow:
        try:
            follow: Follow = self.repository.get(follow_id(org_id, follower_id, objective_id))
        except AggregateNotFoundError:
            raise NotFound("you do not follow this objective", field="objective_id") from None
        if not follow.active:
            raise NotFound("you do not follow this objective", field="objective_id")
        return follow
