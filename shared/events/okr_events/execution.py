"""Contracts of the execution context's events that other contexts already listen for.

The execution service does not exist yet; the notifier's "key task created" reminder is
written against this contract, which the execution service must publish."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import Field

from .base import EventContract
from .registry import register

EXECUTION_TOPIC = "okr.execution.events.v1"
EXECUTION_SOURCE = "/okr/execution"


@register
class KeyTaskCreated(EventContract):
    """A key task was created under one key result of an objective (docs/domain.md#execution)."""

    event_type = "okr.execution.KeyTaskCreated"

    org_id: UUID
    objective_id: UUID
    kr_id: str
    title: str
    creator_id: str
    assignee_id: str | None = Field(description="The member it was dispatched to, if any.")
    due_date: date | None
