"""The Follow aggregate: one member following one objective, with their reminder settings.

One stream per (follower, objective): its id is derived from the pair, so following twice
is the same aggregate (the event store refuses a second creation) and unfollowing then
following again resumes the same history."""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import event
from okr_events.notifier import ReminderSettings
from okr_platform.aggregate import ClockedAggregate
from okr_platform.errors import InvalidInput
from pydantic import ValidationError

_FOLLOW_NAMESPACE = uuid.UUID("5d1f4f6e-3c1b-4a35-9a53-8f6c2f0d7a10")


def follow_id(org_id: uuid.UUID, follower_id: str, objective_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_FOLLOW_NAMESPACE, f"{org_id}:{follower_id}:{objective_id}")


def reminder_settings(values: dict[str, Any]) -> ReminderSettings:
    """Validated settings, with a field-specific error for the API."""
    try:
        return ReminderSettings.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None


class Follow(ClockedAggregate):  # stamped by the notifier's clock: since = when followed
    @staticmethod
    def create_id(
        org_id: uuid.UUID,
        follower_id: str,
        objective_id: uuid.UUID,
        settings: dict[str, Any],
        actor: str,
    ) -> uuid.UUID:
        return follow_id(org_id, follower_id, objective_id)

    @event("FollowStarted")
    def __init__(
        self,
        org_id: uuid.UUID,
        follower_id: str,
        objective_id: uuid.UUID,
        settings: dict[str, Any],
        actor: str,
    ) -> None:
        self.org_id = org_id
        self.follower_id = follower_id
        self.objective_id = objective_id
        self.settings = settings
        self.active = True

    @classmethod
    def start(
        cls,
        org_id: uuid.UUID,
        follower_id: str,
        objective_id: uuid.UUID,
        settings: dict[str, Any] | None = None,
    ) -> Follow:
        chosen = reminder_settings(settings or {})
        return cls(org_id, follower_id, objective_id, chosen.model_dump(), actor=follower_id)

    @property
    def reminder_settings(self) -> ReminderSettings:
        return ReminderSettings.model_validate(self.settings)

    def resume(self, settings: dict[str, Any] | None = None) -> None:
        """Follow again; an active follow is left as it is (following is idempotent)."""
        if self.active:
            if settings:
                self.change_settings(settings)
            return
        chosen = reminder_settings({**self.settings, **(settings or {})})
        self._resumed(settings=chosen.model_dump(), actor=self.follower_id)

    @event("FollowResumed")
    def _resumed(self, settings: dict[str, Any], actor: str) -> None:
        self.settings = settings
        self.active = True

    def change_settings(self, changes: dict[str, Any]) -> None:
        if not self.active:
            raise InvalidInput("you do not follow this objective", field="objective_id")
        merged = reminder_settings({**self.settings, **changes}).model_dump()
        changed = {k: v for k, v in merged.items() if self.settings.get(k) != v}
        if changed:
            self._settings_changed(changes=changed, settings=merged, actor=self.follower_id)

    @event("FollowSettingsChanged")
    def _settings_changed(
        self, changes: dict[str, Any], settings: dict[str, Any], actor: str
    ) -> None:
        self.settings = settings

    def stop(self) -> None:
        """Unfollow; unfollowing what one does not follow changes nothing."""
        if self.active:
            self._stopped(actor=self.follower_id)

    @event("FollowStopped")
    def _stopped(self, actor: str) -> None:
        self.active = False
