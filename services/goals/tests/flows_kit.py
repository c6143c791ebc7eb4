"""What the goals API flow tests share: the response checks and small readers of cycles and
lists."""

from __future__ import annotations

from datetime import UTC, date, datetime
from datetime import time as clock
from typing import Any

CS = {"id": "cs", "name": "客户成功部"}


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    if isinstance(body, dict) and "version" in body:
        assert response.headers["ETag"] == f'"{body["version"]}"'
    return body


def check_in(org: Any, o: dict[str, Any], kr_id: str, who: str, **body: Any) -> dict[str, Any]:
    r = org.client.post(
        f"/objectives/{o['id']}/key-results/{kr_id}/check-ins", json=body, headers=org.h(who)
    )
    assert r.status_code == 201, r.text
    result = r.json()
    assert r.headers["ETag"] == f'"{result["objective"]["version"]}"'
    assert len(result["check_in_id"]) >= 16
    return result["objective"]


def elapsed_share(cycle: dict[str, Any]) -> float:
    """Elapsed share of the cycle now (start date first instant to end date last instant)."""
    begin = datetime.combine(date.fromisoformat(cycle["start_date"]), clock.min, tzinfo=UTC)
    end = datetime.combine(date.fromisoformat(cycle["end_date"]), clock.max, tzinfo=UTC)
    share = (datetime.now(UTC) - begin) / (end - begin)
    return min(1.0, max(0.0, share))


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {i["id"] for i in items}
