"""HTTP API of outgoing webhooks: a member's own, the organisation's (admins), and their
deliveries (failures visible, a failed one can be queued again)."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Query, Response
from okr_platform.auth import caller_dependency
from okr_platform.clock import utc_text
from okr_platform.errors import Forbidden, InvalidInput, NotFound
from okr_platform.openapi import MAX_ROW_ID, problem_responses
from okr_platform.principal import Principal
from pydantic import BaseModel, ConfigDict, Field

from .webhooks.records import (
    UNREADABLE_HINT,
    Webhook,
    delete_webhook,
    get_delivery,
    get_webhook,
    list_deliveries,
    requeue_delivery,
    save_webhook,
)
from .webhooks.secrets_at_rest import secret_cipher
from .webhooks.ssrf_guard import UnsafeTarget, check_target
from .webhooks.tables import Scope, Status

MIN_SECRET = 16
MAX_SECRET = 256
MAX_URL = 2048


class WebhookService(Protocol):
    """What the routes need of the service (see build_webhook_router)."""

    store: Any
    settings: Any
    clock: Any

    def principal(self, authorization: str | None) -> Principal: ...

    def org_id(self, principal: Principal) -> str: ...


# ---- models -------------------------------------------------------------------------------------


class WebhookIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    url: str = Field(
        description="https URL the notifications are POSTed to; its host must resolve to "
        "public addresses only (http:// and private addresses only when "
        "NOTIFIER_WEBHOOK_ALLOW_PRIVATE_TARGETS is set)"
    )
    secret: str = Field(
        description=f"HMAC-SHA256 key of X-OKR-Signature ({MIN_SECRET} to {MAX_SECRET} "
        "characters); stored encrypted (NOTIFIER_WEBHOOK_SECRET_KEYS)"
    )


class WebhookOut(BaseModel):
    scope: Literal["member", "org"]
    owner_id: str = Field(description="the member's id, or the organisation's id")
    url: str
    secret_hint: str = Field(
        description="the secret's last 4 characters (never the secret); "
        f"{UNREADABLE_HINT!r} when no configured key decrypts it (set it again)"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, webhook: Webhook) -> "WebhookOut":
        return cls(
            scope=webhook.scope,
            owner_id=webhook.owner_id,
            url=webhook.url,
            secret_hint=webhook.secret_hint,
            created_at=_time(webhook.created_at),
            updated_at=_time(webhook.updated_at),
        )


class DeliveryOut(BaseModel):
    notification_id: int
    scope: Literal["member", "org"]
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None = Field(description="HTTP status of the last attempt")
    last_error: str | None = Field(description="why the last attempt failed")
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="when it is tried next (if pending)")
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> "DeliveryOut":
        return cls(
            notification_id=row["notification_id"],
            scope=row["scope"],
            status=row["status"],
            attempts=row["attempts"],
            last_status_code=row["last_status_code"],
            last_error=row["last_error"],
            last_attempt_at=_time(row["last_attempt_at"]),
            next_attempt_at=_time(row["next_attempt_at"]),
            delivered_at=_time(row["delivered_at"]),
            created_at=_time(row["created_at"]),
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_after: int | None = Field(
        description="pass as `after` for the next (older) page; null on the last page"
    )


def _time(text: str | None) -> Any:
    return datetime.fromisoformat(text) if text else None


# ---- validation ---------------------------------------------------------------------------------


def check_url(url: str) -> str:
    url = url.strip()
    if len(url) > MAX_URL:
        raise InvalidInput(f"the URL is longer than {MAX_URL} characters", field="url")
    if any(c.isspace() for c in url):
        raise InvalidInput("the URL must not contain spaces", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port out of range)
    except ValueError as error:
        raise InvalidInput(f"the URL is malformed: {error}", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("the URL must start with http:// or https://", field="url")
    if not parts.hostname:
        raise InvalidInput("the URL must name a host", field="url")
    return url


def check_safe_target(url: str, allow_private_targets: bool) -> str:
    """The SSRF guard (webhooks.check_target): https, no user name or password, and a host that
    resolves to public addresses only, unless private targets are allowed."""
    try:
        check_target(url, allow_private_targets=allow_private_targets)
    except UnsafeTarget as error:
        raise InvalidInput(error.reason, field="url", code=error.code) from None
    return url


def check_secret(secret: str) -> str:
    if not MIN_SECRET <= len(secret) <= MAX_SECRET:
        raise InvalidInput(
            f"the secret must be {MIN_SECRET} to {MAX_SECRET} characters long", field="secret"
        )
    if secret != secret.strip():
        raise InvalidInput("the secret must not start or end with spaces", field="secret")
    return secret


# ---- routes -------------------------------------------------------------------------------------

StatusFilter = Annotated[
    Literal["pending", "delivered", "failed"] | None,
    Query(description="only the deliveries in this status"),
]
Limit = Annotated[int, Query(ge=1, le=200)]
# Ids and cursors: a larger integer than a store holds is a 422, not an overflow.
After = Annotated[
    int | None, Query(ge=0, le=MAX_ROW_ID, description="`next_after` of the previous page")
]
NotificationId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]

# Every route authenticates (401); the organisation's are for its admins (403); the caller's
# organisation may be unknown to the notifier yet (404).
AUTHENTICATED = problem_responses(401)
MINE = problem_responses(404)
ORGS = problem_responses(403, 404)
# Setting one: the URL or secret is refused (422).
SET = problem_responses(404, 422)
# Retrying one: no such delivery (404), not failed or no webhook configured (422).
RETRY = problem_responses(404, 422)


def build_webhook_router(get_service: Callable[[], WebhookService]) -> APIRouter:
    router = APIRouter(tags=["webhooks"], responses=AUTHENTICATED)
    Me = Annotated[Principal, Depends(caller_dependency(get_service))]

    def owner(me: Principal, scope: Scope) -> tuple[WebhookService, str, str]:
        """The service, the caller's org id and the webhook owner of ``scope``."""
        service = get_service()
        if scope == "org" and "admin" not in me.roles:
            raise Forbidden("only an organisation admin manages the organisation's webhook")
        org_id = service.org_id(me)
        return service, org_id, me.member_id if scope == "member" else org_id

    def put(scope: Scope, body: WebhookIn, me: Principal) -> WebhookOut:
        service, org_id, owner_id = owner(me, scope)
        url, secret = check_url(body.url), check_secret(body.secret)
        # Last, as it resolves the host (a DNS lookup); a refusal stores nothing.
        check_safe_target(url, bool(service.settings.webhook_allow_private_targets))
        at = utc_text(service.clock.now())
        cipher = secret_cipher(service.settings)
        return WebhookOut.of(
            save_webhook(service.store, org_id, scope, owner_id, url, secret, at, cipher=cipher)
        )

    def get(scope: Scope, me: Principal) -> WebhookOut:
        service, org_id, owner_id = owner(me, scope)
        webhook = get_webhook(
            service.store, org_id, scope, owner_id, cipher=secret_cipher(service.settings)
        )
        if webhook is None:
            raise NotFound(f"no {scope} webhook is configured", code="webhook_not_found")
        return WebhookOut.of(webhook)

    def delete(scope: Scope, me: Principal) -> Response:
        service, org_id, owner_id = owner(me, scope)
        at = utc_text(service.clock.now())
        if not delete_webhook(service.store, org_id, scope, owner_id, at):
            raise NotFound(f"no {scope} webhook is configured", code="webhook_not_found")
        return Response(status_code=204)

    def deliveries(
        scope: Scope,
        me: Principal,
        status: Status | None,
        limit: int,
        after: int | None,
    ) -> DeliveryPage:
        service, org_id, owner_id = owner(me, scope)
        rows = list_deliveries(
            service.store,
            org_id,
            scope,
            owner_id,
            status=status,
            limit=limit,
            after=after,
        )
        items = [DeliveryOut.of(row) for row in rows]
        return DeliveryPage(
            items=items, next_after=items[-1].notification_id if len(items) == limit else None
        )

    def retry(scope: Scope, notification_id: int, me: Principal) -> DeliveryOut:
        service, org_id, owner_id = owner(me, scope)
        store = service.store
        current = get_delivery(store, org_id, scope, owner_id, notification_id)
        if current is None:
            raise NotFound(
                f"no delivery of notification {notification_id} to the {scope} webhook",
                field="notification_id",
                code="delivery_not_found",
            )
        cipher = secret_cipher(service.settings)
        if get_webhook(store, org_id, scope, owner_id, cipher=cipher) is None:
            raise InvalidInput(
                f"configure the {scope} webhook before retrying", code="webhook_not_found"
            )
        at = utc_text(service.clock.now())
        row = requeue_delivery(store, org_id, scope, owner_id, notification_id, at)
        if row is None:
            raise InvalidInput(
                f"only a failed delivery can be retried; this one is {current['status']}",
                field="notification_id",
                code="delivery_not_failed",
            )
        # Nudge the delivery worker if the service exposes one (else the next poll sends it).
        wake = getattr(service, "wake_webhooks", None) or getattr(
            getattr(service, "delivery", None), "wake", None
        )
        if callable(wake):
            wake()
        return DeliveryOut.of(row)

    # One pair of routes per scope; written out so OpenAPI shows each with its own summary.

    @router.put("/webhooks/me", response_model=WebhookOut, summary="Set my webhook", responses=SET)
    def put_my_webhook(body: WebhookIn, me: Me) -> WebhookOut:
        return put("member", body, me)

    @router.get("/webhooks/me", response_model=WebhookOut, summary="My webhook", responses=MINE)
    def get_my_webhook(me: Me) -> WebhookOut:
        return get("member", me)

    @router.delete("/webhooks/me", status_code=204, summary="Remove my webhook", responses=MINE)
    def delete_my_webhook(me: Me) -> Response:
        return delete("member", me)

    @router.get(
        "/webhooks/me/deliveries",
        response_model=DeliveryPage,
        summary="My webhook's deliveries",
        responses=problem_responses(404, 422),
    )
    def my_deliveries(
        me: Me,
        status: StatusFilter = None,
        limit: Limit = 50,
        after: After = None,
    ) -> DeliveryPage:
        return deliveries("member", me, status, limit, after)

    @router.post(
        "/webhooks/me/deliveries/{notification_id}/retry",
        response_model=DeliveryOut,
        summary="Queue a failed delivery of my webhook again",
        responses=RETRY,
    )
    def retry_my_delivery(notification_id: NotificationId, me: Me) -> DeliveryOut:
        return retry("member", notification_id, me)

    @router.put(
        "/webhooks/org",
        response_model=WebhookOut,
        summary="Set the organisation's webhook",
        responses=ORGS | SET,
    )
    def put_org_webhook(body: WebhookIn, me: Me) -> WebhookOut:
        return put("org", body, me)

    @router.get(
        "/webhooks/org",
        response_model=WebhookOut,
        summary="The organisation's webhook",
        responses=ORGS,
    )
    def get_org_webhook(me: Me) -> WebhookOut:
        return get("org", me)

    @router.delete(
        "/webhooks/org",
        status_code=204,
        summary="Remove the organisation's webhook",
        responses=ORGS,
    )
    def delete_org_webhook(me: Me) -> Response:
        return delete("org", me)

    @router.get(
        "/webhooks/org/deliveries",
        response_model=DeliveryPage,
        summary="The organisation webhook's deliveries",
        responses=ORGS | problem_responses(422),
    )
    def org_deliveries(
        me: Me,
        status: StatusFilter = None,
        limit: Limit = 50,
        after: After = None,
    ) -> DeliveryPage:
        return deliveries("org", me, status, limit, after)

    @router.post(
        "/webhooks/org/deliveries/{notification_id}/retry",
        response_model=DeliveryOut,
        summary="Queue a failed delivery of the organisation's webhook again",
        responses=ORGS | RETRY,
    )
    def retry_org_delivery(notification_id: NotificationId, me: Me) -> DeliveryOut:
        return retry("org", notification_id, me)

    return router
