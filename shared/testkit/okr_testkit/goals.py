"""The goals kit, shared by its own tests, the notifier's and the end-to-end tests: settings
for SQLite and PostgreSQL, development tokens, and a small organisation to act in, its active
cycle around today (okr_testkit.clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlparse

from fastapi.testclient import TestClient
from okr_goals.auth import mint_development_token
from okr_goals.settings import GoalsSettings
from okr_platform.clock import SystemClock

from .clock import quarter_around

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def sqlite_settings(tmp_path: Any) -> GoalsSettings:
    return GoalsSettings(persistence="sqlite", data_dir=tmp_path / "goals", jwt_secret=JWT_SECRET)


def postgres_settings(dsn: str, schema: str) -> GoalsSettings:
    url = urlparse(dsn)
    return GoalsSettings(
        persistence="postgres",
        postgres_host=url.hostname or "127.0.0.1",
        postgres_port=url.port or 5432,
        postgres_dbname=url.path.lstrip("/"),
        postgres_user=url.username or "okr",
        postgres_password=url.password or "",
        postgres_schema=schema,
        postgres_pool_size=5,
        jwt_secret=JWT_SECRET,
    )


def auth(settings: GoalsSettings, member: str, org: str = "acme", roles: list[str] | None = None):
    token = mint_development_token(settings, member, org, roles or [])
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Org:
    """A small organisation: 客户成功部 with boss -> bailu, mengbo; an admin; a stranger org."""

    client: TestClient
    settings: GoalsSettings
    cycle_id: str

    def h(self, member: str, org: str = "acme", roles: list[str] | None = None):
        return auth(self.settings, member, org, roles)

    @property
    def admin(self):
        return self.h("root", roles=["admin"])

    def objective(self, member: str = "bailu", **fields: Any) -> dict[str, Any]:
        body = {
            "cycle_id": self.cycle_id,
            "title": "建立高效专业的客户支持团队",
            "key_results": [
                {
                    "title": "获取100家客户的5星好评",
                    "unit": "custom",
                    "unit_label": "家",
                    "start": 0,
                    "target": 100,
                },
            ],
        } | fields
        response = self.client.post("/objectives", json=body, headers=self.h(member))
        assert response.status_code == 201, response.text
        return response.json()

    def active_objective(self, member: str = "bailu", **fields: Any) -> dict[str, Any]:
        o = self.objective(member, **fields)
        r = self.client.post(f"/objectives/{o['id']}/submit", headers=self.h(member))
        assert r.status_code == 200, r.text
        if r.json()["status"] == "pending_approval":
            r = self.client.post(f"/objectives/{o['id']}/approve", headers=self.h("boss"))
            assert r.status_code == 200, r.text
        return r.json()


def build_org(client: TestClient, settings: GoalsSettings, today: date | None = None) -> Org:
    """The organisation, and its active cycle around `today`: the date of the goals service's
    clock (default: the system clock's, which a goals service without a clock uses)."""
    start, end = quarter_around(today or SystemClock().now().date())
    admin = auth(settings, "root", roles=["admin"])
    body: dict[str, Any]
    for body in (
        {"id": "cs", "name": "客户成功部"},
        {"id": "pm", "name": "产品市场部"},
    ):
        assert client.post("/directory/departments", json=body, headers=admin).status_code == 201
    for body in (
        {"id": "boss", "name": "老板", "department_id": "cs", "roles": ["supervisor"]},
        {"id": "bailu", "name": "白露", "department_id": "cs", "manager_id": "boss"},
        {"id": "mengbo", "name": "孟波", "department_id": "cs", "manager_id": "boss"},
        {"id": "lufei", "name": "路飞", "department_id": "pm"},
    ):
        assert client.post("/directory/members", json=body, headers=admin).status_code == 201
    cycle = client.post(
        "/cycles",
        json={
            "name": "This quarter",
            "kind": "quarter",
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
        },
        headers=admin,
    ).json()
    client.post(f"/cycles/{cycle['id']}/transitions", json={"to": "active"}, headers=admin)
    return Org(client=client, settings=settings, cycle_id=cycle["id"])
