"""A backlog of real goals domain events, made by the goals aggregates themselves (objectives
created with three key results, activated, then checked in), for the relay and the consumers
to work through; each request's events may carry a W3C trace context of their own, as the
service stores them."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

from okr_events.tracing import TRACE_CONTEXT_KEY
from okr_goals.contracts import to_contract
from okr_goals.domain.objective import Objective

EVENTS_PER_OBJECTIVE = 50  # created + 3 key results added + activated + 45 check-ins


def random_carrier(rnd: random.Random) -> dict[str, str]:
    """A W3C carrier like the one the service stores with a request's events."""
    trace_id = rnd.getrandbits(128) | 1
    span_id = rnd.getrandbits(64) | 1
    return {"traceparent": f"00-{trace_id:032x}-{span_id:016x}-01"}


def backlog_events(total: int, seed: int, traced: bool) -> Iterator[list[Any]]:
    """`total` goals domain events, one objective's at a time: per objective the events of a
    create request (ObjectiveCreated + 3 KeyResultAdded), of a submit (ObjectiveActivated) and
    of 45 check-in requests (KRProgressUpdated); with `traced`, each request's events carry the
    W3C trace context of a request of their own, as the service stores them."""
    rnd = random.Random(seed)
    org_id, cycle_id = uuid.uuid4(), uuid.uuid4()
    written = 0
    n = 0
    while written < total:
        owner = f"m{n % 19 + 1:03d}"
        objective = Objective.draft(
            org_id=org_id, cycle_id=cycle_id, title=f"Objective {n}", owner_id=owner, actor=owner
        )
        kr_ids = [
            objective.add_key_result(title=f"KR {n}.{k}", start=0, target=100, actor=owner)
            for k in range(3)
        ]
        requests = [4]  # events per request: the create request made 4
        objective.submit(approval_required=False, actor=owner)
        requests.append(1)
        for _ in range(EVENTS_PER_OBJECTIVE - 5):
            objective.check_in(
                rnd.choice(kr_ids),
                current=round(rnd.uniform(0, 100), 1),
                confidence=rnd.randint(1, 5),
                actor=owner,
            )
            requests.append(1)
        events = objective.collect_events()[: total - written]
        if n == 0:  # every kind of event in the backlog must pass its contract
            for domain_event in events:
                to_contract(domain_event)
        if traced:
            i = 0
            for size in requests:
                carrier = random_carrier(rnd)
                for domain_event in events[i : i + size]:
                    domain_event.__dict__[TRACE_CONTEXT_KEY] = carrier
                i += size
        written += len(events)
        n += 1
        yield events
