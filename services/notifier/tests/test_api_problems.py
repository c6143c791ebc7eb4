"""The notifier's API refuses what it cannot serve with a problem, before doing anything: ids and
cursors beyond what a store holds (64-bit), and a live stream without a valid token."""

from __future__ import annotations

from typing import Any

import pytest
from okr_notifier.api import last_event_id_of
from okr_testkit.suite import Suite

PROBLEM = "application/problem+json"
TOO_BIG = 2**63  # one more than SQLite INTEGER and PostgreSQL BIGINT hold
LARGEST = 2**63 - 1


def assert_problem(response: Any, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    if field is not None:
        assert body["field"] == field, body


@pytest.mark.parametrize(
    ("method", "path", "params", "field"),
    [
        ("get", "/notifications", {"before": TOO_BIG}, "before"),
        ("post", f"/notifications/{TOO_BIG}/read", {}, "notification_id"),
        ("post", "/notifications/read-all", {"up_to": TOO_BIG}, "up_to"),
        ("get", "/webhooks/me/deliveries", {"after": TOO_BIG}, "after"),
        ("get", "/webhooks/org/deliveries", {"after": TOO_BIG}, "after"),
        ("post", f"/webhooks/me/deliveries/{TOO_BIG}/retry", {}, "notification_id"),
        ("post", f"/webhooks/org/deliveries/{TOO_BIG}/retry", {}, "notification_id"),
        ("post", "/notifications/0/read", {}, "notification_id"),
        ("post", "/webhooks/me/deliveries/0/retry", {}, "notification_id"),
    ],
)
def test_ids_and_cursors_beyond_64_bits_are_422(
    sqlite_suite: Suite, method: str, path: str, params: dict[str, Any], field: str
) -> None:
    suite = sqlite_suite
    suite.settle()
    admin = suite.h("root", roles=["admin"])
    response = getattr(suite.client, method)(path, params=params, headers=admin)
    assert_problem(response, 422, "validation_error", field)


def test_the_largest_id_is_read_as_an_id(sqlite_suite: Suite) -> None:
    suite = sqlite_suite
    suite.settle()
    admin = suite.h("root", roles=["admin"])
    page = suite.client.get("/notifications", params={"before": LARGEST}, headers=admin)
    assert page.status_code == 200, page.text
    assert page.json()["items"] == []
    assert_problem(
        suite.client.post(f"/notifications/{LARGEST}/read", headers=admin),
        404,
        "not_found",
        "notification_id",
    )
    assert_problem(
        suite.client.post(f"/webhooks/me/deliveries/{LARGEST}/retry", headers=admin),
        404,
        "delivery_not_found",
        "notification_id",
    )
    marked = suite.client.post("/notifications/read-all", params={"up_to": LARGEST}, headers=admin)
    assert marked.json() == {"marked": 0, "unread": 0}


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "unauthenticated"),
        ("Basic cm9vdDpwYXNz", "unauthenticated"),
        ("Bearer not.a.jwt", "invalid_token"),
    ],
)
def test_the_stream_refuses_a_bad_token_before_it_opens(
    sqlite_suite: Suite, authorization: str | None, code: str
) -> None:
    suite = sqlite_suite
    headers = {"Authorization": authorization} if authorization else {}
    response = suite.client.get("/notifications/stream", headers=headers)
    assert_problem(response, 401, code)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_stream_refuses_a_forged_token_and_an_unknown_organisation(
    sqlite_suite: Suite,
) -> None:
    suite = sqlite_suite
    suite.settle()
    forged = suite.org.h("mengbo")["Authorization"][:-4] + "AAAA"
    response = suite.client.get("/notifications/stream", headers={"Authorization": forged})
    assert_problem(response, 401, "invalid_token")
    stranger = suite.org.h("mengbo", org="nowhere")
    assert_problem(
        suite.client.get("/notifications/stream", headers=stranger), 404, "not_found", "org"
    )


@pytest.mark.parametrize("last_event_id", [str(TOO_BIG), "-1", "abc"])
def test_a_last_event_id_that_is_no_id_opens_the_stream_from_now(
    sqlite_suite: Suite, last_event_id: str
) -> None:
    suite = sqlite_suite
    suite.settle()
    headers = {**suite.h("mengbo"), "Last-Event-ID": last_event_id}
    with suite.client.stream("GET", "/notifications/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        first = next(response.iter_lines())
    assert first == ": connected"


def test_only_an_id_we_could_have_sent_is_resumed_after() -> None:
    assert last_event_id_of("42") == 42
    assert last_event_id_of(str(LARGEST)) == LARGEST
    # "²" and "٣" are digits to str.isdigit (and int("٣") is 3): not ids we send.
    for header in (None, "", "²", "٣", str(TOO_BIG), "-1", "4 2"):
        assert last_event_id_of(header) is None, header


def test_the_openapi_declares_the_streams_content_and_problems(sqlite_suite: Suite) -> None:
    operation = sqlite_suite.client.get("/openapi.json").json()["paths"]["/notifications/stream"]
    responses = operation["get"]["responses"]
    assert list(responses["200"]["content"]) == ["text/event-stream"]
    for status in ("401", "404"):
        assert list(responses[status]["content"]) == [PROBLEM]
        assert responses[status]["content"][PROBLEM]["schema"]["$ref"].endswith("/Problem")
