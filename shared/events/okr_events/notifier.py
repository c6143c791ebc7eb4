"""Contracts of the notifier context's own events: follows and their reminder settings.

Each (follower, objective) pair is one event stream, so a follow's history (who followed
what, when, with which reminders) can be replayed like any other aggregate's."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from .base import EventContract, JsonObject
from .registry import register
from .vocabulary import Stars

NOTIFIER_TOPIC = "okr.notifier.events.v1"
NOTIFIER_SOURCE = "/okr/notifier"

LocalTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class ReminderSettings(BaseModel):
    """Which reminders one follower gets about one objective (defaults: the seed's screen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    objective_changed: bool = Field(True, description="The objective or its KRs were changed.")
    progress_updated: bool = Field(True, description="A check-in updated progress.")
    progress_warning: bool = Field(False, description="The objective is behind pace.")
    confidence_warning: bool = Field(True, description="Confidence fell below the threshold.")
    confidence_below: Stars = Field(2, description="Warn when confidence is below this many stars.")
    check_time: LocalTime = Field(
        "10:00", description="Daily check time (HH:MM) in the follower's time zone."
    )
    key_task_created: bool = Field(False, description="A key task was created under it.")


@register
class FollowStarted(EventContract):
    """A member started following an objective."""

    event_type = "okr.notifier.FollowStarted"

    org_id: UUID
    follower_id: str
    objective_id: UUID
    settings: JsonObject = Field(description="The follow's ReminderSettings.")


@register
class FollowSettingsChanged(EventContract):
    """A follower changed the reminders they get about an objective."""

    event_type = "okr.notifier.FollowSettingsChanged"

    changes: JsonObject = Field(description="Changed settings only, with their new values.")
    settings: JsonObject = Field(description="All settings after the change.")


@register
class FollowStopped(EventContract):
    """A member stopped following an objective."""

    event_type = "okr.notifier.FollowStopped"


@register
class FollowResumed(EventContract):
    """A member followed an objective again after having stopped."""

    event_type = "okr.notifier.FollowResumed"

    settings: JsonObject = Field(description="The follow's ReminderSettings.")
