"""Both contexts in one process, as the notifier tests use them: goals' events reach the
notifier through the embedded transport (the same consumer code as on Kafka), both contexts
read one FakeClock, and the goals kit's small organisation is built.

The clock starts at okr_testkit.clock.kit_start() (01:00 UTC today) and stands still until a
test moves it: goals stamps its events with it, the notifier's rules, daily checks and webhook
retries read it, so "due at the check-in's time" is the same moment to both.

The organisation (okr_testkit.goals.build_org): 客户成功部 (cs) with boss -> bailu, mengbo;
路飞 (lufei) in 产品市场部 (pm); root is an admin."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from okr_goals.contracts import to_contract as goals_contract
from okr_goals.main import GoalsContext
from okr_goals.settings import GoalsSettings
from okr_notifier.main import NotifierContext
from okr_notifier.service import InProcessFeed, NotifierService
from okr_notifier.settings import NotifierSettings
from okr_platform.clock import FakeClock
from okr_platform.serving import serve_contexts

from .clock import kit_start
from .goals import Org, build_org


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

    def close(self) -> None:
        self.client.__exit__(None, None, None)


def open_suite(
    goals: GoalsSettings, notifier: NotifierSettings, clock: FakeClock | None = None
) -> Suite:
    """Start both contexts on `clock` (default: a FakeClock at kit_start()) and build the
    organisation; close() stops them."""
    clock = clock or FakeClock(kit_start())
    goals_context = GoalsContext(goals, clock=clock)
    notifier_context = NotifierContext(
        notifier,
        feeds=[InProcessFeed(lambda: goals_context._service().app, goals_contract)],
        clock=clock,
    )
    client = TestClient(
        serve_contexts("suite under test", [goals_context, notifier_context], "okr-suite")
    )
    client.__enter__()
    try:
        org = build_org(client, goals, today=clock.now().date())
    except BaseException:
        client.__exit__(None, None, None)
        raise
    return Suite(org, client, clock, notifier_context)
