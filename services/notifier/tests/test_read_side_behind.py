"""The notifier's read-your-writes wait for its follows (service._await_own) not catching up is
a 503 problem (`views_unavailable`, okr_platform.errors.ReadSideBehind), never a 500
(docs/architecture.md#errors); and /ready is 503 while a consumer does not follow its log
(`healthy`, as goals' views say it)."""

from __future__ import annotations

import time

from okr_testkit.suite import Suite


def wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_ready_while_every_consumer_follows(sqlite_suite: Suite) -> None:
    suite = sqlite_suite
    suite.settle()
    wait_until(lambda: suite.client.get("/ready").status_code == 200, 5, "the notifier ready")
    assert all(runner.healthy for runner in suite.service.runners)  # type: ignore[attr-defined]


def test_a_follow_whose_projection_has_stopped_is_a_503(sqlite_suite: Suite) -> None:
    suite = sqlite_suite
    objective = suite.org.active_objective()
    suite.settle()
    assert suite.client.get("/ready").status_code == 200
    suite.service.own_events.stop()  # the follows projection no longer applies the follows
    wait_until(lambda: not suite.service.own_events.healthy, 5, "the projection to stop")
    assert suite.client.get("/ready").status_code == 503  # a consumer not following: not ready

    r = suite.client.put(f"/objectives/{objective['id']}/follow", headers=suite.h("mengbo"))
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "views_unavailable"
