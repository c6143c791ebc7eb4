"""The replica of goals' facts on its own (okr_platform.replica), on SQLite and PostgreSQL: fed
goals' contracts, it holds the directory (with department leads and member emails), the
organisation's settings, cycles, objectives' facts and key results; and each event's
`FactsChange` says what a context's own appliers need of it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from okr_events import goals
from okr_events.base import EventContract
from okr_events.consuming import ConsumerStore
from okr_platform import access
from okr_platform.clock import utc_text
from okr_platform.replica import FactsChange, GoalsReplica, KRPoint
from okr_platform.replica import reads as replica
from okr_testkit.goals_history import Clocked, check_in, inbound, kr_added
from replica_kit import apply_in_batches, apply_one_by_one

OpenStores = Callable[[int], list[ConsumerStore]]
ORG, CYCLE, OBJECTIVE = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)


def member(at: Clocked, member_id: str, department: str, manager: str | None, **extra: Any):
    return goals.MemberAdded(
        **at.common(ORG),
        member_id=member_id,
        name=f"成员 {member_id}",
        department_id=department,
        manager_id=manager,
        time_zone="Asia/Shanghai",
        roles=extra.get("roles", ["employee"]),
        email=extra.get("email"),
    )


def organisation(at: Clocked) -> list[EventContract]:
    return [
        goals.OrganisationRegistered(**at.common(ORG), slug="acme", name="Acme"),
        goals.DepartmentAdded(
            **at.common(ORG), department_id="d0", name="总部", parent_id=None, lead_ids=["lead"]
        ),
        goals.DepartmentAdded(
            **at.common(ORG), department_id="d1", name="研发", parent_id="d0", lead_ids=["m1"]
        ),
        member(at, "lead", "d0", None, roles=["supervisor"], email="lead@example.com"),
        member(at, "m1", "d1", "lead", email="m1@example.com"),
        member(at, "m2", "d1", "m1"),
        member(at, "gone", "d1", "m1"),
        goals.MemberUpdated(**at.common(ORG), member_id="m2", changes={"email": "m2@example.com"}),
        goals.MemberUpdated(**at.common(ORG), member_id="gone", changes={"active": False}),
        goals.SettingsChanged(
            **at.common(ORG),
            changes={"approval_required": False, "progress_warning_threshold": 0.5},
            settings={"approval_required": False, "progress_warning_threshold": 0.5},
        ),
        goals.CycleCreated(
            **at.common(CYCLE),
            org_id=ORG,
            name="2026 Q4",
            kind="quarter",
            start_date=date(2026, 10, 1),
            end_date=date(2026, 12, 31),
        ),
        goals.CycleActivated(**at.common(CYCLE)),
    ]


def objective(at: Clocked) -> list[EventContract]:
    """Progress as the replica recomputes it: after each structural change, from the active
    KRs' weights and progress (the check-ins carry goals' own objective progress)."""
    return [
        goals.ObjectiveCreated(
            **at.common(OBJECTIVE),
            org_id=ORG,
            cycle_id=CYCLE,
            title="交付平台",
            description="",
            level="personal",
            owner_type="member",
            owner_id="m2",
            responsible_ids=["m2"],
            department_id="d1",
            visibility="department",
            weight=2.0,
            created_for_report=False,
        ),
        kr_added(at, OBJECTIVE, "kr1", weight=1.0),
        kr_added(at, OBJECTIVE, "kr2", target=10.0, weight=3.0),
        check_in(at, OBJECTIVE, "kr1", 0.0, 50.0, 100.0, 0.0, 0.125, confidence=3),
        check_in(at, OBJECTIVE, "kr2", 0.0, 5.0, 10.0, 0.125, 0.5, confidence=2),
        goals.KeyResultEdited(  # weights 3 and 3, both at 0.5: 0.5
            **at.common(OBJECTIVE),
            kr_id="kr1",
            changes={"weight": 3.0, "title": "新标题", "owner_id": "m1", "due_date": "2026-11-30"},
            previous={},
            late=False,
        ),
        goals.KeyResultTargetChanged(  # kr2 at 5 of 20: 0.25; (1.5 + 0.75) / 6 = 0.375
            **at.common(OBJECTIVE),
            kr_id="kr2",
            old_target=10.0,
            new_target=20.0,
            reason="scope",
            progress_before=0.5,
            late=False,
        ),
        kr_added(at, OBJECTIVE, "kr3"),  # (1.5 + 0.75 + 0) / 7
        goals.KeyResultRemoved(**at.common(OBJECTIVE), kr_id="kr3", reason="merged"),
        goals.KeyResultTargetChanged(  # a KR the replica never saw: nothing changes
            **at.common(OBJECTIVE),
            kr_id="nope",
            old_target=1.0,
            new_target=2.0,
            reason="typo",
            progress_before=0.0,
            late=False,
        ),
        goals.ObjectiveSubmittedForApproval(**at.common(OBJECTIVE)),
        goals.ObjectiveApproved(**at.common(OBJECTIVE)),
        goals.ObjectiveEdited(
            **at.common(OBJECTIVE),
            changes={"title": "交付新平台", "visibility": "public", "description": "x"},
            previous={},
            late=False,
        ),
        goals.ObjectiveAligned(  # not copied (no alignment in the replica)
            **at.common(OBJECTIVE), parent_objective_id=uuid.UUID(int=9), parent_kr_id=None
        ),
    ]


def history() -> list[EventContract]:
    at = Clocked()
    return [*organisation(at), *objective(at)]


@pytest.mark.parametrize("mode", ["one_by_one", "one_batch"])
def test_the_replica_holds_goals_directory_settings_cycles_objectives_and_krs(
    open_stores: OpenStores, mode: str
) -> None:
    [store] = open_stores(1)
    events = inbound(history())
    if mode == "one_by_one":
        apply_one_by_one(store, events)
    else:
        apply_in_batches(store, events, len(events))
    query = store.query

    assert replica.org_id_of(query, "acme") == str(ORG)
    assert replica.org_id_of(query, "other") is None
    org = replica.org(query, str(ORG))
    assert org is not None and org.threshold == 0.5 and org.name == "Acme"
    assert org.settings == {"approval_required": False, "progress_warning_threshold": 0.5}

    directory = replica.load_directory(query, str(ORG))
    assert set(directory.members) == {"lead", "m1", "m2", "gone"}
    m2 = directory.members["m2"]
    assert (m2.name, m2.department_id, m2.manager_id, m2.time_zone) == (
        "成员 m2",
        "d1",
        "m1",
        "Asia/Shanghai",
    )
    assert m2.email == "m2@example.com" and m2.active
    assert directory.members["lead"].roles == frozenset({"supervisor"})
    assert directory.members["lead"].email == "lead@example.com"
    assert not directory.members["gone"].active
    assert directory.departments["d1"].parent_id == "d0"
    assert directory.departments["d0"].lead_ids == frozenset({"lead"})
    assert directory.departments["d1"].lead_ids == frozenset({"m1"})
    assert directory.manager_chain("m2") == ["m1", "lead"]
    # The leads the policy's department rule needs (the notifier never kept them before).
    for caller, manages in [("lead", True), ("m1", True), ("m2", False), ("gone", False)]:
        assert access.can_manage_department(access.member_caller(caller), directory, "d1") is (
            manages
        )
    assert replica.load_directory(query, str(uuid.UUID(int=99))).members == {}

    [cycle] = replica.cycles(query, str(ORG))
    assert (cycle.name, cycle.kind, cycle.status) == ("2026 Q4", "quarter", "active")
    assert (cycle.start_date, cycle.end_date) == (date(2026, 10, 1), date(2026, 12, 31))
    assert replica.cycle(query, str(CYCLE), str(ORG)) == cycle
    assert replica.cycle(query, str(CYCLE), "another org") is None

    facts = replica.objective_facts(query, str(OBJECTIVE))
    assert facts is not None
    assert (facts.title, facts.status, facts.visibility) == ("交付新平台", "active", "public")
    assert (facts.owner_type, facts.owner_id, facts.owner_ids) == ("member", "m2", ("m2",))
    assert (facts.department_id, facts.level, facts.weight) == ("d1", "personal", 2.0)
    assert facts.progress == pytest.approx(0.375)
    assert facts.confidence == 2  # the lowest of the active KRs'
    assert (facts.cycle_id, facts.cycle_start, facts.cycle_end) == (
        str(CYCLE),
        date(2026, 10, 1),
        date(2026, 12, 31),
    )
    assert facts.threshold == 0.5
    assert replica.objectives_of_cycle(query, str(CYCLE)) == [facts]
    found = replica.objective_facts_and_org_version(query, str(OBJECTIVE))
    assert found is not None and found[0] == facts
    org_events = [c for c in organisation(Clocked()) if c.aggregate_id == ORG]
    assert found[1] == len(org_events)  # the organisation's applied version

    krs = {kr.kr_id: kr for kr in replica.key_results(query, str(OBJECTIVE))}
    assert set(krs) == {"kr1", "kr2"}
    kr1, kr2 = krs["kr1"], krs["kr2"]
    assert (kr1.title, kr1.owner_id, kr1.due_date, kr1.weight) == (
        "新标题",
        "m1",
        date(2026, 11, 30),
        3.0,
    )
    assert (kr1.current, kr1.progress, kr1.confidence, kr1.target) == (50.0, 0.5, 3, 100.0)
    assert (kr2.target, kr2.current, kr2.progress, kr2.owner_id) == (20.0, 5.0, 0.25, "m1")
    assert kr2.due_date == date(2026, 12, 15) and kr2.active
    every = replica.key_results(query, str(OBJECTIVE), include_removed=True)
    assert [(kr.kr_id, kr.active) for kr in every] == [
        ("kr1", True),
        ("kr2", True),
        ("kr3", False),
    ]
    assert [kr.kr_id for kr in replica.key_results_of_cycle(query, str(CYCLE))] == [
        "kr1",
        "kr2",
        "kr3",
    ]


def test_each_event_says_what_it_changed(open_stores: OpenStores) -> None:
    [store] = open_stores(1)
    replica_handler = GoalsReplica()
    store.setup(replica_handler.create_statements)
    events = inbound(history())
    changes: dict[int, FactsChange | None] = {}
    orgs_changed: set[str] = set()

    def write(fresh: Any, tx: Any) -> None:
        batch = replica_handler.batch(tx)
        for event in fresh:
            changes[event.offset] = replica_handler.apply(event, batch)
        orgs_changed.update(batch.orgs_changed)
        batch.flush()

    assert store.apply_batch(events, write) == len(events)
    by_type: dict[str, list[FactsChange | None]] = {}
    for event in events:
        by_type.setdefault(type(event.contract).__name__, []).append(changes[event.offset])
    first: Callable[[str], FactsChange] = lambda name: by_type[name][0]  # noqa: E731

    assert first("MemberAdded").org_id == str(ORG) and orgs_changed == {str(ORG)}
    added = by_type["KeyResultAdded"]
    assert added[0] is not None and added[0].kr == KRPoint("kr1", "KR kr1", 0.0, 100.0, 0.0)
    assert added[0].objective_progress == (0.0, 0.0)
    check = first("KRProgressUpdated")
    assert check.kr is None and check.objective_progress is None  # the hot path reads nothing
    assert check.objective_id == str(OBJECTIVE)
    assert check.at == utc_text(check.event.contract.occurred_at)
    edited = first("KeyResultEdited")
    assert edited.objective_progress == (0.5, 0.5)  # pending check-ins overlaid
    retargeted, unknown = by_type["KeyResultTargetChanged"]
    assert retargeted is not None and retargeted.kr == KRPoint("kr2", "KR kr2", 5.0, 20.0, 0.25)
    assert retargeted.objective_progress == (0.5, pytest.approx(0.375))
    assert unknown is not None and unknown.kr is None and unknown.objective_progress is None
    assert added[2] is not None and added[2].objective_progress == (
        pytest.approx(0.375),
        pytest.approx(2.25 / 7),
    )
    removed = first("KeyResultRemoved")
    assert removed.kr == KRPoint("kr3", "KR kr3", 0.0, 100.0, 0.0)  # as it was
    assert removed.objective_progress == (pytest.approx(2.25 / 7), pytest.approx(0.375))
    assert by_type["ObjectiveAligned"] == [None]


def test_a_check_ins_target_is_the_krs_as_of_the_check_in(open_stores: OpenStores) -> None:
    """`fill_target`: known at once for a KR added or retargeted in the batch, else read at
    the flush (once for every row waiting), before the flush's writes."""
    [store] = open_stores(1)
    at = Clocked()
    earlier = [*organisation(at), *objective(at)[:3]]  # created, kr1 (100) and kr2 (10)
    kr4 = kr_added(at, OBJECTIVE, "kr4", target=40.0)
    *stored, latest = inbound([*earlier, kr4])
    apply_in_batches(store, stored, len(stored))
    replica_handler = GoalsReplica()
    rows: list[dict[str, Any]] = [{}, {}, {}]

    def write(fresh: Any, tx: Any) -> None:
        batch = replica_handler.batch(tx)
        batch.fill_target(rows[0], str(OBJECTIVE), "kr2")  # stored: read at the flush
        assert rows[0] == {}
        for event in fresh:
            replica_handler.apply(event, batch)
        batch.fill_target(rows[1], str(OBJECTIVE), "kr4")  # added in this batch
        assert rows[1] == {"target": 40.0}
        batch.fill_target(rows[2], str(OBJECTIVE), "never")
        batch.flush()

    assert store.apply_batch([latest], write) == 1
    assert rows == [{"target": 10.0}, {"target": 40.0}, {"target": None}]


def test_a_kr_added_after_a_pending_check_in_counts_the_check_in(open_stores: OpenStores) -> None:
    """In one batch the check-in is still pending when the next KR comes: the objective's
    progress is recomputed over the batch's view (the check-in's progress overlaid)."""
    [store] = open_stores(1)
    at = Clocked()
    contracts = [*organisation(at), *objective(at)[:2]]  # created, kr1 (weight 1)
    contracts += [
        check_in(at, OBJECTIVE, "kr1", 0.0, 50.0, 100.0, 0.0, 0.5),
        kr_added(at, OBJECTIVE, "kr9", weight=1.0),  # (0.5 + 0) / 2
    ]
    events = inbound(contracts)
    apply_in_batches(store, events, len(events))
    facts = replica.objective_facts(store.query, str(OBJECTIVE))
    assert facts is not None and facts.progress == 0.25
