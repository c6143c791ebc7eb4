"""Concurrent writers over HTTP, on SQLite and on real PostgreSQL (the `org` fixture): without
`If-Match` every write is applied; with the same `If-Match` one wins."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flows_kit import ok

# ---- concurrency ------------------------------------------------------------------------------


def concurrently(n: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_two_concurrent_check_ins_are_both_applied(org):
    o = org.active_objective(
        key_results=[
            {"title": "KR甲", "target": 10},
            {"title": "KR乙", "target": 10},
        ]
    )
    krs = [kr["id"] for kr in o["key_results"]]
    for round_ in range(3):
        responses = concurrently(
            2,
            lambda i, r=round_: org.client.post(
                f"/objectives/{o['id']}/key-results/{krs[i]}/check-ins",
                json={"current": r + 1},
                headers=org.h("bailu"),
            ),
        )
        assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    got = ok(org.client.get(f"/objectives/{o['id']}", headers=org.h("bailu")))
    assert got["version"] == o["version"] + 6
    assert [kr["check_ins"] for kr in got["key_results"]] == [3, 3]
    assert [kr["current"] for kr in got["key_results"]] == [3, 3]


def test_twenty_concurrent_check_ins_without_if_match_are_all_applied(org):
    o = org.active_objective(
        key_results=[
            {"title": "KR甲", "target": 100},
            {"title": "KR乙", "target": 100},
        ]
    )
    krs = [kr["id"] for kr in o["key_results"]]
    responses = concurrently(
        20,
        lambda i: org.client.post(
            f"/objectives/{o['id']}/key-results/{krs[i % 2]}/check-ins",
            json={"current": i, "note": f"第{i}次"},
            headers=org.h("bailu"),
        ),
    )
    statuses = [r.status_code for r in responses]
    got = ok(org.client.get(f"/objectives/{o['id']}", headers=org.h("bailu")))
    assert statuses == [201] * 20, [r.json().get("code") for r in responses if r.status_code != 201]
    assert got["version"] == o["version"] + 20
    assert [kr["check_ins"] for kr in got["key_results"]] == [10, 10]
    events = org.client.get(f"/objectives/{o['id']}/history", headers=org.h("bailu")).json()
    notes = sorted(e["payload"]["note"] for e in events if e["type"] == "KRProgressUpdated")
    assert notes == sorted(f"第{i}次" for i in range(20))


def test_concurrent_writers_with_the_same_if_match_one_wins(org):
    o = org.active_objective()
    kr = o["key_results"][0]["id"]
    responses = concurrently(
        5,
        lambda i: org.client.post(
            f"/objectives/{o['id']}/key-results/{kr}/check-ins",
            json={"current": i + 1},
            headers=org.h("bailu") | {"If-Match": f'"{o["version"]}"'},
        ),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 412, 412, 412, 412]
    assert all(r.json()["code"] == "stale_version" for r in responses if r.status_code == 412)
    got = ok(org.client.get(f"/objectives/{o['id']}", headers=org.h("bailu")))
    assert got["version"] == o["version"] + 1
    assert got["key_results"][0]["check_ins"] == 1
