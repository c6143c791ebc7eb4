"""Routes of the organisation directory: departments, members, settings (admins change them;
a member keeps their own name, time zone and email). See docs/domain.md#organisation."""

# No `from __future__ import annotations`: FastAPI must see the closure-local `Me` type.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from okr_platform.openapi import problem_responses
from okr_platform.principal import Principal

from ..application import GoalsApplication
from .models import (
    DepartmentIn,
    MemberIn,
    MemberPatch,
    SettingsIn,
    SettingsPatch,
    department_out,
    member_out,
)
from .wiring import (
    AUTHENTICATED,
    IfMatch,
    ServiceGetter,
    changes_of,
    parse_if_match,
    principal_dependency,
    with_etag,
)

# Adding: not an admin (403), the id exists or contention (409), invalid (422).
ADD = problem_responses(403, 409, 422)
# Changing: as adding, plus a stale If-Match (412).
CHANGE = problem_responses(403, 409, 412, 422)


def build_directory_router(get_service: ServiceGetter) -> APIRouter:
    router = APIRouter(tags=["directory"], responses=AUTHENTICATED)
    Me = Annotated[Principal, Depends(principal_dependency(get_service))]

    def app() -> GoalsApplication:
        return get_service().app

    @router.post("/directory/departments", status_code=201, responses=ADD)
    def add_department(body: DepartmentIn, p: Me, response: Response) -> dict[str, Any]:
        department_id = body.id or uuid.uuid4().hex
        org = app().add_department(
            p,
            name=body.name,
            parent_id=body.parent_id,
            lead_ids=body.lead_ids,
            department_id=department_id,
        )
        with_etag(response, org.version)
        return department_out(org, department_id)

    @router.get("/directory/departments")
    def list_departments(p: Me) -> list[dict[str, Any]]:
        org = app().directory(p)
        return [department_out(org, d) for d in org.departments]

    @router.post("/directory/members", status_code=201, responses=ADD)
    def add_member(body: MemberIn, p: Me, response: Response) -> dict[str, Any]:
        org = app().add_member(
            p,
            member_id=body.id,
            name=body.name,
            department_id=body.department_id,
            manager_id=body.manager_id,
            time_zone=body.time_zone,
            roles=list(body.roles),
            email=body.email,
        )
        with_etag(response, org.version)
        return member_out(org, body.id)

    @router.get("/directory/members")
    def list_members(p: Me) -> list[dict[str, Any]]:
        org = app().directory(p)
        return [member_out(org, m) for m in org.members]

    @router.get("/directory/members/{member_id}", responses=problem_responses(404))
    def get_member(member_id: str, p: Me) -> dict[str, Any]:
        org = app().directory(p)
        org.member(member_id, field="member_id", not_found=True)
        return member_out(org, member_id)

    @router.patch("/directory/members/{member_id}", responses=CHANGE | problem_responses(404))
    def update_member(
        member_id: str, body: MemberPatch, p: Me, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        """Change only the fields sent. A member may change their own name, time zone and
        email; the rest is for admins. Null clears department_id, manager_id or email."""
        org = app().update_member(p, member_id, changes_of(body), parse_if_match(if_match))
        with_etag(response, org.version)
        return member_out(org, member_id)

    @router.get("/directory/settings")
    def get_settings(p: Me, response: Response) -> dict[str, Any]:
        org = app().directory(p)
        with_etag(response, org.version)
        return dict(org.settings.__dict__)

    @router.put("/directory/settings", responses=CHANGE)
    def put_settings(
        body: SettingsIn, p: Me, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        """Replace every setting (all six fields); If-Match guards against a lost update."""
        org = app().change_settings(p, body.model_dump(), parse_if_match(if_match))
        with_etag(response, org.version)
        return dict(org.settings.__dict__)

    @router.patch("/directory/settings", responses=CHANGE)
    def patch_settings(
        body: SettingsPatch, p: Me, response: Response, if_match: IfMatch = None
    ) -> dict[str, Any]:
        """Change only the settings sent (at least one; null is refused), the others keep
        their value; If-Match is honoured as on PUT. Answers every setting."""
        org = app().change_settings(p, changes_of(body), parse_if_match(if_match))
        with_etag(response, org.version)
        return dict(org.settings.__dict__)

    return router
