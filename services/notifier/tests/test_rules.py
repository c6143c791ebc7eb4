"""Each reminder rule, through the goals API and the embedded transport, on SQLite and
PostgreSQL: who is told, about what, and who is not."""

from __future__ import annotations

from datetime import timedelta

from okr_testkit.suite import Suite


def shared_objective(suite: Suite, **fields):
    """An active objective of 白露 (bailu) that every member of the organisation can see."""
    return suite.org.active_objective("bailu", **fields)


def test_following_uses_the_seed_defaults_and_lists_the_objective(suite: Suite):
    objective = shared_objective(suite)
    followed = suite.follow("mengbo", objective["id"])
    assert followed["settings"] == {
        "objective_changed": True,
        "progress_updated": True,
        "progress_warning": False,
        "confidence_warning": True,
        "confidence_below": 2,
        "check_time": "10:00",
        "key_task_created": False,
    }
    listed = suite.client.get("/follows", headers=suite.h("mengbo")).json()
    assert [f["objective_id"] for f in listed] == [objective["id"]]
    assert listed[0]["progress"] == 0 and listed[0]["confidence"] is None


def test_a_check_in_tells_the_follower_at_once_but_not_the_actor(suite: Suite):
    objective = shared_objective(suite)
    suite.follow("mengbo", objective["id"])
    suite.follow("bailu", objective["id"])  # the owner follows too, and checks in herself
    suite.check_in("bailu", objective, current=30, confidence=1, note="慢")

    inbox = suite.inbox("mengbo")
    assert inbox["unread"] == 1
    [notice] = inbox["items"]
    assert notice["rule"] == "progress_updated"
    assert notice["message_key"] == "progress_updated"
    assert notice["link"] == f"/objectives/{objective['id']}"
    assert notice["params"]["objective_title"] == "建立高效专业的客户支持团队"
    assert notice["params"]["kr_title"] == "获取100家客户的5星好评"
    assert notice["params"]["confidence_after"] == 1
    assert notice["params"]["progress_after"] == 0.3
    assert notice["params"]["actor_name"] == "白露"
    assert "30%" in notice["text"]
    zh = suite.client.get("/notifications", headers=suite.h("mengbo", lang="zh-CN")).json()
    assert "进度" in zh["items"][0]["text"] and "白露" in zh["items"][0]["text"]
    assert suite.inbox("bailu")["items"] == []


def test_objective_changes_tell_followers_who_want_them(suite: Suite):
    objective = shared_objective(suite)
    suite.follow("mengbo", objective["id"])
    suite.follow("boss", objective["id"], objective_changed=False)
    r = suite.client.patch(
        f"/objectives/{objective['id']}",
        json={"title": "打造一流客服团队"},
        headers=suite.h("bailu"),
    )
    assert r.status_code == 200, r.text
    suite.settle()
    [notice] = suite.inbox("mengbo")["items"]
    assert notice["rule"] == "objective_changed"
    assert notice["message_key"] == "objective_changed.edited"
    assert notice["params"]["objective_title"] == "打造一流客服团队"
    assert suite.inbox("boss")["items"] == []


def test_progress_updated_can_be_switched_off_and_unfollowing_stops_everything(suite: Suite):
    objective = shared_objective(suite)
    suite.follow("mengbo", objective["id"], progress_updated=False)
    suite.follow("lufei", objective["id"])
    r = suite.client.delete(f"/objectives/{objective['id']}/follow", headers=suite.h("lufei"))
    assert r.status_code == 204
    suite.check_in("bailu", objective, current=10)
    assert suite.inbox("mengbo")["items"] == []
    assert suite.inbox("lufei")["items"] == []
    assert suite.client.get("/follows", headers=suite.h("lufei")).json() == []


def test_nobody_follows_or_hears_of_an_objective_they_cannot_see(suite: Suite):
    private = shared_objective(suite, visibility="private")
    r = suite.client.put(f"/objectives/{private['id']}/follow", headers=suite.h("lufei"))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"

    objective = shared_objective(suite)
    suite.follow("lufei", objective["id"])  # public today
    r = suite.client.patch(
        f"/objectives/{objective['id']}", json={"visibility": "private"}, headers=suite.h("bailu")
    )
    assert r.status_code == 200, r.text
    suite.check_in("bailu", objective, current=50, confidence=1)
    assert suite.inbox("lufei")["items"] == []  # not even the change that hid it
    assert suite.client.get("/follows", headers=suite.h("lufei")).json() == []
    # the manager chain still sees a private objective
    suite.follow("boss", objective["id"])
    suite.check_in("bailu", objective, current=60)
    assert [n["rule"] for n in suite.inbox("boss")["items"]] == ["progress_updated"]


def test_progress_warning_on_a_check_in_behind_pace(suite: Suite):
    today = suite.clock.now().date()
    cycle = suite.client.post(
        "/cycles",
        json={
            "name": "pace",
            "kind": "custom",
            "start_date": (today - timedelta(days=60)).isoformat(),
            "end_date": (today + timedelta(days=30)).isoformat(),
        },
        headers=suite.org.admin,
    ).json()
    suite.client.post(
        f"/cycles/{cycle['id']}/transitions", json={"to": "active"}, headers=suite.org.admin
    )
    objective = shared_objective(suite, cycle_id=cycle["id"])
    suite.follow("mengbo", objective["id"], progress_warning=True, progress_updated=False)
    suite.follow("boss", objective["id"], progress_updated=False)  # warning off: the default
    suite.check_in("bailu", objective, current=10)  # 10 % with two thirds of the cycle gone
    [warning] = suite.inbox("mengbo")["items"]
    assert warning["rule"] == "progress_warning"
    assert warning["params"]["progress"] == 0.1
    assert 0.6 < warning["params"]["expected"] < 0.7
    assert suite.inbox("boss")["items"] == []
    suite.check_in("bailu", objective, current=90)  # ahead of pace: no warning
    assert len(suite.inbox("mengbo")["items"]) == 1


def test_settings_are_validated(sqlite_suite: Suite):
    suite = sqlite_suite
    objective = shared_objective(suite)
    for body, field in (
        ({"confidence_below": 7}, "confidence_below"),
        ({"check_time": "25:00"}, "check_time"),
        ({"loud": True}, "loud"),
    ):
        r = suite.client.put(
            f"/objectives/{objective['id']}/follow", json=body, headers=suite.h("mengbo")
        )
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
    assert suite.client.get("/follows", headers=suite.h("mengbo")).json() == []
    r = suite.client.patch(
        f"/objectives/{objective['id']}/follow",
        json={"check_time": "09:30"},
        headers=suite.h("mengbo"),
    )
    assert r.status_code == 404  # not followed
    suite.follow("mengbo", objective["id"])
    r = suite.client.patch(
        f"/objectives/{objective['id']}/follow",
        json={"check_time": "09:30"},
        headers=suite.h("mengbo"),
    )
    assert r.status_code == 200 and r.json()["settings"]["check_time"] == "09:30"


def test_the_cached_directory_follows_changes_to_the_organisation(suite: Suite):
    """The rules cache an organisation's directory by its applied version: a member added,
    or renamed, after it was cached is seen by the next notification."""
    objective = shared_objective(suite)
    suite.follow("mengbo", objective["id"])
    suite.check_in("bailu", objective, current=10)  # the directory is cached now
    r = suite.client.post(
        "/directory/members",
        json={"id": "xiaoman", "name": "小满", "department_id": "cs"},
        headers=suite.org.admin,
    )
    assert r.status_code == 201, r.text
    r = suite.client.patch(
        "/directory/members/bailu", json={"name": "白露露"}, headers=suite.org.admin
    )
    assert r.status_code == 200, r.text
    suite.settle()
    suite.follow("xiaoman", objective["id"])
    suite.check_in("bailu", objective, current=20)

    [notice] = suite.inbox("xiaoman")["items"]
    assert notice["params"]["actor_name"] == "白露露"
    latest = suite.inbox("mengbo")["items"][0]
    assert latest["params"]["value_after"] == 20 and latest["params"]["actor_name"] == "白露露"
