"""The notifier tests' harness: the goals and notifier contexts in one process (the embedded
transport: goals' events reach the notifier through the same consumer code as on Kafka), a
frozen clock, and the goals test kit's small organisation.

The organisation (okr_goals.testing.build_org): 客户成功部 (cs) with boss -> bailu, mengbo;
路飞 (lufei) in 产品市场部 (pm); root is an admin."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from okr_goals.testing import Org
from okr_notifier.main import NotifierContext
from okr_notifier.service import NotifierService
from okr_platform.clock import FakeClock

# Inside the goals kit's cycle (2026-10-01 .. 2026-12-31).
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


@dataclass
class Suite:
    org: Org
    client: TestClient
    clock: FakeClock
    notifier: NotifierContext

    @property
    def service(self) -> NotifierService:
        return self.notifier._service()

    def h(self, member: str, roles: list[str] | None = None, lang: str = "en") -> dict[str, str]:
        return {**self.org.h(member, roles=roles), "Accept-Language": lang}

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the notifier applied everything goals and its follows recorded."""
        deadline = time.monotonic() + timeout
        while not all(r.caught_up() for r in self.service.runners):  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the notifier did not catch up"
            time.sleep(0.01)

    def follow(self, member: str, objective_id: str, **settings: Any) -> dict[str, Any]:
        self.settle()
        r = self.client.put(
            f"/objectives/{objective_id}/follow", json=settings or None, headers=self.h(member)
        )
        assert r.status_code == 200, r.text
        return r.json()

    def check_in(self, member: str, objective: dict[str, Any], **body: Any) -> dict[str, Any]:
        kr = objective["key_results"][0]["id"]
        r = self.client.post(
            f"/objectives/{objective['id']}/key-results/{kr}/check-ins",
            json=body,
            headers=self.h(member),
        )
        assert r.status_code in (200, 201), r.text
        self.settle()
        return r.json()

    def inbox(self, member: str, **params: Any) -> dict[str, Any]:
        r = self.client.get("/notifications", params=params, headers=self.h(member))
        assert r.status_code == 200, r.text
        return r.json()
