"""The inbox: unread filter, pagination, mark one or all read, unread count, live stream."""

from __future__ import annotations

import json
import threading

from okr_testkit.suite import Suite


def notify(suite: Suite, times: int) -> dict:
    objective = suite.org.active_objective("bailu")
    suite.follow("mengbo", objective["id"])
    for value in range(1, times + 1):
        suite.check_in("bailu", objective, current=value)
    return objective


def test_pages_newest_first_with_a_cursor(suite: Suite):
    notify(suite, 5)
    first = suite.inbox("mengbo", limit=2)
    assert first["unread"] == 5
    values = [n["params"]["value_after"] for n in first["items"]]
    assert values == [5, 4]
    second = suite.inbox("mengbo", limit=2, before=first["next_before"])
    third = suite.inbox("mengbo", limit=2, before=second["next_before"])
    assert [n["params"]["value_after"] for n in second["items"] + third["items"]] == [3, 2, 1]
    assert third["next_before"] is None


def test_mark_one_and_all_read(suite: Suite):
    notify(suite, 3)
    items = suite.inbox("mengbo")["items"]
    r = suite.client.post(f"/notifications/{items[0]['id']}/read", headers=suite.h("mengbo"))
    assert r.status_code == 200 and r.json()["read"] is True
    assert suite.client.get("/notifications/unread-count", headers=suite.h("mengbo")).json() == {
        "unread": 2
    }
    assert [n["id"] for n in suite.inbox("mengbo", unread=True)["items"]] == [
        items[1]["id"],
        items[2]["id"],
    ]
    # someone else's notification is not found, and changes nothing
    r = suite.client.post(f"/notifications/{items[1]['id']}/read", headers=suite.h("lufei"))
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    r = suite.client.post(
        "/notifications/read-all", params={"up_to": items[2]["id"]}, headers=suite.h("mengbo")
    )
    assert r.json() == {"marked": 1, "unread": 1}
    r = suite.client.post("/notifications/read-all", headers=suite.h("mengbo"))
    assert r.json() == {"marked": 1, "unread": 0}
    assert suite.inbox("mengbo", unread=True)["items"] == []


def test_bad_requests_are_problems(sqlite_suite: Suite):
    suite = sqlite_suite
    for path, params in (("/notifications", {"limit": 0}), ("/notifications", {"before": "x"})):
        r = suite.client.get(path, params=params, headers=suite.h("mengbo"))
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
    r = suite.client.get("/notifications")
    assert r.status_code == 401
    r = suite.client.get("/notifications", headers=suite.org.h("mengbo", org="nowhere"))
    assert r.status_code == 404


def read_events(response, count: int) -> list[dict]:
    events, current = [], {}
    for line in response.iter_lines():
        if line.startswith("event:"):
            current["event"] = line.split(":", 1)[1].strip()
        elif line.startswith("id:"):
            current["id"] = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            current["data"] = json.loads(line.split(":", 1)[1])
            current["raw"] = line
        elif line == "" and current:
            if current.get("event") == "notification":
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
    return events


def test_the_stream_sends_new_notifications_and_resumes(sqlite_suite: Suite):
    suite = sqlite_suite
    objective = notify(suite, 1)
    [existing] = suite.inbox("mengbo")["items"]
    checked_in = threading.Event()

    def check_in_later() -> None:
        suite.check_in("bailu", objective, current=42, confidence=1)
        checked_in.set()

    with suite.client.stream(
        "GET", "/notifications/stream", headers=suite.h("mengbo", lang="zh")
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        threading.Timer(0.3, check_in_later).start()
        [event] = read_events(response, 1)
    assert checked_in.wait(5)
    assert event["data"]["params"]["value_after"] == 42
    assert "进度" in event["data"]["text"]
    assert "进度" in event["raw"] and "\\u" not in event["raw"]  # UTF-8 on the wire
    assert int(event["id"]) > existing["id"]
    # Reconnecting with Last-Event-ID resumes after it: the older one comes again, not the new.
    headers = {**suite.h("mengbo"), "Last-Event-ID": str(existing["id"] - 1)}
    with suite.client.stream("GET", "/notifications/stream", headers=headers) as response:
        resumed = read_events(response, 2)
    assert [int(e["id"]) for e in resumed] == [existing["id"], int(event["id"])]
