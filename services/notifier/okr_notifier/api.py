"""HTTP API of the notifier (FastAPI): follows, inbox, live stream, history, report, admin.

Each route takes the caller (`me`, the kit's caller_dependency), then calls one use case of
NotifierService or one query of Reads."""

# No `from __future__ import annotations`: FastAPI must see the closure-local `Me` type.

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from okr_events.notifier import ReminderSettings
from okr_platform.auth import caller_dependency
from okr_platform.clock import FakeClock
from okr_platform.errors import Forbidden, InvalidInput
from okr_platform.openapi import MAX_ROW_ID, problem_responses
from okr_platform.principal import Principal
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .domain.messages import language, render
from .queries import as_of_moment
from .service import NotifierService

# Notification ids and cursors: a larger integer than a store holds is a 422, not an overflow.
NotificationId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
Cursor = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
# The caller's organisation is not known to the notifier yet (404).
IN_ORG = problem_responses(404)
IN_ORG_INVALID = problem_responses(404, 422)


class SettingsChange(BaseModel):
    """Reminder settings to change; omitted ones keep their value."""

    model_config = ConfigDict(extra="forbid")

    objective_changed: bool | None = None
    progress_updated: bool | None = None
    progress_warning: bool | None = None
    confidence_warning: bool | None = None
    confidence_below: int | None = Field(None, ge=1, le=5)
    check_time: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    key_task_created: bool | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class FollowedObjective(BaseModel):
    objective_id: str
    title: str
    status: str
    cycle_id: str
    progress: float
    confidence: int | None
    following_since: str
    settings: ReminderSettings


class Notification(BaseModel):
    id: int
    rule: str
    objective_id: str
    message_key: str
    params: dict[str, Any]
    text: str = Field(description="Rendered in the Accept-Language (zh or en).")
    link: str
    created_at: str
    read: bool
    read_at: str | None


class InboxPage(BaseModel):
    items: list[Notification]
    next_before: int | None = Field(description="Pass as `before` for the next page.")
    unread: int


class ClockSetting(BaseModel):
    now: AwareDatetime


@dataclass(frozen=True)
class Subscriber:
    """Who a stream is for, known before the stream opens."""

    service: NotifierService
    principal: Principal
    org_id: str


def last_event_id_of(header: str | None) -> int | None:
    """The id to resume after, from Last-Event-ID; anything but an id we could have sent is
    ignored (the stream then starts with what comes next)."""
    if header is None or not (header.isascii() and header.isdigit()):
        return None
    value = int(header)
    return value if value <= MAX_ROW_ID else None


def build_router(get_service: Callable[[], NotifierService]) -> APIRouter:
    router = APIRouter(responses=problem_responses(401))  # every route authenticates

    Me = Annotated[Principal, Depends(caller_dependency(get_service))]

    def subscriber(me: Me) -> Subscriber:
        """A dependency, so a missing or forged token is a 401 problem before the stream's
        200 is sent (an endpoint's generator runs only once the response has started)."""
        service = get_service()
        return Subscriber(service, me, service.org_id(me))

    Listener = Annotated[Subscriber, Depends(subscriber)]

    def rendered(item: dict[str, Any], lang: str) -> Notification:
        return Notification(**item, text=render(item["message_key"], item["params"], lang))

    # ---- follows -----------------------------------------------------------------------------

    @router.put(
        "/objectives/{objective_id}/follow",
        tags=["follows"],
        response_model=FollowedObjective,
        responses=IN_ORG_INVALID,
    )
    def follow(objective_id: str, me: Me, body: SettingsChange | None = None) -> dict[str, Any]:
        """Follow an objective you can see (idempotent); optional reminder settings."""
        service = get_service()
        return service.follow(me, objective_id, body.changes() if body else None)

    @router.patch(
        "/objectives/{objective_id}/follow",
        tags=["follows"],
        response_model=FollowedObjective,
        responses=IN_ORG_INVALID,
    )
    def change_follow(objective_id: str, body: SettingsChange, me: Me) -> dict[str, Any]:
        """Change the reminders you get about an objective you follow."""
        service = get_service()
        return service.change_follow(me, objective_id, body.changes())

    @router.delete(
        "/objectives/{objective_id}/follow", tags=["follows"], status_code=204, responses=IN_ORG
    )
    def unfollow(objective_id: str, me: Me) -> None:
        """Stop following (idempotent)."""
        service = get_service()
        service.unfollow(me, objective_id)

    @router.get(
        "/follows", tags=["follows"], response_model=list[FollowedObjective], responses=IN_ORG
    )
    def followed(me: Me) -> list[dict[str, Any]]:
        """Objectives I follow, with their progress and confidence."""
        service = get_service()
        return service.reads.followed(me)

    # ---- inbox -------------------------------------------------------------------------------

    @router.get(
        "/notifications", tags=["inbox"], response_model=InboxPage, responses=IN_ORG_INVALID
    )
    def inbox(
        request: Request,
        me: Me,
        unread: bool = False,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        before: Cursor = None,
    ) -> InboxPage:
        """My work notifications, newest first; `unread=true` for unread ones only."""
        service = get_service()
        org_id = service.org_id(me)
        items, next_before = service.reads.inbox(
            org_id, me.member_id, unread_only=unread, limit=limit, before=before
        )
        lang = language(request.headers.get("accept-language"))
        return InboxPage(
            items=[rendered(item, lang) for item in items],
            next_before=next_before,
            unread=service.reads.unread_count(org_id, me.member_id),
        )

    @router.get("/notifications/unread-count", tags=["inbox"], responses=IN_ORG)
    def unread_count(me: Me) -> dict[str, int]:
        service = get_service()
        org_id = service.org_id(me)
        return {"unread": service.reads.unread_count(org_id, me.member_id)}

    @router.post("/notifications/{notification_id}/read", tags=["inbox"], responses=IN_ORG_INVALID)
    def mark_read(notification_id: NotificationId, request: Request, me: Me) -> Notification:
        service = get_service()
        org_id = service.org_id(me)
        item = service.reads.mark_read(org_id, me.member_id, notification_id, service.clock.now())
        return rendered(item, language(request.headers.get("accept-language")))

    @router.post("/notifications/read-all", tags=["inbox"], responses=IN_ORG_INVALID)
    def mark_all_read(me: Me, up_to: Cursor = None) -> dict[str, int]:
        """Mark all read (up to the id `up_to`, so what arrived meanwhile stays unread)."""
        service = get_service()
        org_id = service.org_id(me)
        marked = service.reads.mark_all_read(org_id, me.member_id, service.clock.now(), up_to)
        return {"marked": marked, "unread": service.reads.unread_count(org_id, me.member_id)}

    @router.get(
        "/notifications/stream",
        tags=["inbox"],
        response_class=EventSourceResponse,
        responses=IN_ORG,
    )
    async def stream(
        request: Request,
        listener: Listener,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """New notifications as server-sent events (`event: notification`, id = its id).

        Reconnecting with Last-Event-ID resumes after it; without it, only new ones come. The
        caller is authenticated before the stream opens (401 problem otherwise)."""
        service, principal, org_id = listener.service, listener.principal, listener.org_id
        lang = language(request.headers.get("accept-language"))
        after = last_event_id_of(last_event_id)
        if after is None:
            after = await asyncio.to_thread(service.reads.latest_id, org_id, principal.member_id)
        yield ServerSentEvent(comment="connected", retry=2000)
        seen_max = -1
        while not await request.is_disconnected():
            latest = await asyncio.to_thread(service.latest_notification_id)
            if latest != seen_max:  # something new somewhere: look for mine
                seen_max = latest
                items = await asyncio.to_thread(
                    service.reads.since, org_id, principal.member_id, after
                )
                for item in items:
                    after = item["id"]
                    yield ServerSentEvent(  # raw_data: UTF-8 JSON, not \u-escaped Chinese
                        raw_data=rendered(item, lang).model_dump_json(),
                        event="notification",
                        id=str(item["id"]),
                    )
            await asyncio.sleep(service.stream_poll_seconds)

    # ---- progress history and the operations report -----------------------------------------

    @router.get("/objectives/{objective_id}/progress-history", tags=["reports"], responses=IN_ORG)
    def progress_history(
        objective_id: str,
        me: Me,
        kr_id: Annotated[
            str | None, Query(description="One KR's series; `objective` for the objective's.")
        ] = None,
    ) -> dict[str, Any]:
        """Each check-in and change of progress, with values before and after, actor, source."""
        service = get_service()
        facts = service.reads.visible_objective(me, objective_id)
        return {
            "objective_id": objective_id,
            "title": facts.title,
            "points": service.reads.progress_history(objective_id, kr_id),
        }

    @router.get("/reports/operations", tags=["reports"], responses=IN_ORG_INVALID)
    def operations_report(
        cycle_id: str,
        me: Me,
        as_of: Annotated[
            str | None, Query(description="A date (end of that day, UTC) or an aware timestamp.")
        ] = None,
    ) -> dict[str, Any]:
        """Per KR, objective and department: target vs actual, expected vs actual (the gap)."""
        service = get_service()
        try:
            moment = as_of_moment(as_of) if as_of else service.clock.now()
        except ValueError as error:
            raise InvalidInput(f"as_of: {error}", field="as_of") from None
        return service.reads.operations_report(me, cycle_id, moment)

    # ---- development: the clock and the daily checks -----------------------------------------

    @router.get("/admin/clock", tags=["admin"])
    def get_clock(me: Me) -> dict[str, Any]:
        service = get_service()
        return {
            "now": service.clock.now().isoformat(),
            "fake": isinstance(service.clock, FakeClock),
        }

    @router.put("/admin/clock", tags=["admin"], responses=problem_responses(403, 422))
    def set_clock(body: ClockSetting, me: Me) -> dict[str, Any]:
        """Travel in time (NOTIFIER_FAKE_CLOCK=true only): the next daily checks use it."""
        service = get_service()
        if "admin" not in me.roles:
            raise Forbidden("only admins set the clock")
        if not isinstance(service.clock, FakeClock):
            raise Forbidden("the clock is the system's; start with NOTIFIER_FAKE_CLOCK=true")
        service.clock.set(body.now)
        return {"now": service.clock.now().isoformat(), "fake": True}

    @router.post("/admin/daily-checks/run", tags=["admin"], responses=problem_responses(403))
    def run_daily_checks(me: Me) -> dict[str, Any]:
        """Run the daily checks that are due now (the scheduler does this every tick)."""
        service = get_service()
        if "admin" not in me.roles:
            raise Forbidden("only admins run the daily checks by hand")
        made = service.checks.run_due()
        return {"notifications": made, "now": service.clock.now().isoformat()}

    return router
