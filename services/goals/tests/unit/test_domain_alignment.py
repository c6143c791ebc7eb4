"""Alignment (docs/domain.md#alignment): several parents allowed, no cycles in the graph.

The aggregate checks what it can alone (self-alignment, duplicates); the acyclic check across
objectives lives in GoalsApplication._align, exercised here on the library's in-memory store.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from okr_goals.application import GoalsApplication
from okr_goals.domain.objective import Objective
from okr_platform.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from okr_platform.principal import Principal

# ---- in the aggregate ------------------------------------------------------------------------


def draft(title: str = "建立高效专业的客户支持团队") -> Objective:
    return Objective.draft(
        org_id=uuid.uuid4(), cycle_id=uuid.uuid4(), title=title, owner_id="bailu", actor="bailu"
    )


def test_aligning_records_the_parent_objective():
    child, parent = draft(), uuid.uuid4()
    child.collect_events()
    child.align(parent, None, actor="bailu")
    (e,) = child.collect_events()
    assert type(e).__name__ == "ObjectiveAligned"
    assert child.parents == [{"objective_id": str(parent), "kr_id": None}]
    assert child.parent_objective_ids == [parent]


def test_aligning_to_a_parent_key_result_keeps_the_key_result():
    child, parent = draft(), uuid.uuid4()
    child.align(parent, "kr-1", actor="bailu")
    assert child.parents == [{"objective_id": str(parent), "kr_id": "kr-1"}]


def test_several_parents_are_allowed():
    child, first, second = draft(), uuid.uuid4(), uuid.uuid4()
    child.align(first, None, actor="bailu")
    child.align(second, None, actor="bailu")
    child.align(first, "kr-1", actor="bailu")  # the same objective through one of its KRs
    assert child.parent_objective_ids == [first, second, first]


def test_aligning_to_itself_is_an_alignment_cycle():
    objective = draft()
    with pytest.raises(Conflict) as caught:
        objective.align(objective.id, None, actor="bailu")
    assert caught.value.code == "alignment_cycle"
    assert caught.value.field == "parent_objective_id"
    assert objective.parents == []


def test_aligning_twice_to_the_same_parent_is_a_conflict():
    child, parent = draft(), uuid.uuid4()
    child.align(parent, None, actor="bailu")
    with pytest.raises(Conflict) as caught:
        child.align(parent, None, actor="bailu")
    assert caught.value.code == "conflict"
    assert caught.value.field == "parent_objective_id"
    assert len(child.parents) == 1


def test_unaligning_removes_the_link():
    child, parent = draft(), uuid.uuid4()
    child.align(parent, None, actor="bailu")
    child.collect_events()
    child.unalign(parent, None, actor="bailu")
    (e,) = child.collect_events()
    assert type(e).__name__ == "ObjectiveUnaligned"
    assert child.parents == []


def test_unaligning_from_an_unknown_parent_is_not_found():
    child, parent = draft(), uuid.uuid4()
    child.align(parent, "kr-1", actor="bailu")
    with pytest.raises(NotFound) as caught:
        child.unalign(parent, None, actor="bailu")  # aligned to its KR, not the objective
    assert caught.value.code == "not_found"
    assert caught.value.field == "parent_objective_id"
    with pytest.raises(NotFound):
        child.unalign(uuid.uuid4(), None, actor="bailu")
    assert len(child.parents) == 1


def test_closed_objective_cannot_change_its_alignment():
    child, parent = draft(), uuid.uuid4()
    child.add_key_result(title="KR", actor="bailu")
    child.align(parent, None, actor="bailu")
    child.cancel("取消", actor="bailu")
    with pytest.raises(IllegalTransition):
        child.align(uuid.uuid4(), None, actor="bailu")
    with pytest.raises(IllegalTransition):
        child.unalign(parent, None, actor="bailu")


# ---- across objectives, in the application ---------------------------------------------------

ADMIN = Principal(member_id="root", org="acme", roles=frozenset({"admin"}))
BAILU = Principal(member_id="bailu", org="acme")


@pytest.fixture
def app() -> GoalsApplication:
    app = GoalsApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.add_department(ADMIN, name="客户成功部", parent_id=None, lead_ids=[], department_id="cs")
    for member_id, name, manager in (
        ("root", "管理员", None),
        ("boss", "老板", None),
        ("bailu", "白露", "boss"),
        ("lufei", "路飞", None),
    ):
        app.add_member(
            ADMIN,
            member_id=member_id,
            name=name,
            department_id="cs",
            manager_id=manager,
            time_zone="Asia/Shanghai",
            roles=["admin"] if member_id == "root" else [],
            email=None,
        )
    return app


def quarter(app: GoalsApplication) -> uuid.UUID:
    return app.plan_cycle(
        ADMIN,
        name="2026 Q4",
        kind="quarter",
        start_date=date(2026, 10, 1),
        end_date=date(2026, 12, 31),
    ).id


def objective(app: GoalsApplication, cycle_id: uuid.UUID, title: str, **fields) -> uuid.UUID:
    return app.create_objective(ADMIN, cycle_id=cycle_id, title=title, **fields).id


def parents_of(app: GoalsApplication, objective_id: uuid.UUID) -> list[uuid.UUID]:
    return app.repository.get(objective_id).parent_objective_ids


def test_a_chain_cannot_be_closed_into_a_cycle(app):
    cycle = quarter(app)
    a, b, c = (objective(app, cycle, t) for t in ("个人目标A", "部门目标B", "公司目标C"))
    app.align_objective(ADMIN, a, b)
    app.align_objective(ADMIN, b, c)
    with pytest.raises(Conflict) as caught:
        app.align_objective(ADMIN, c, a)
    assert caught.value.code == "alignment_cycle"
    assert caught.value.field == "parent_objective_id"
    assert parents_of(app, c) == []
    assert parents_of(app, a) == [b]
    assert parents_of(app, b) == [c]


def test_two_objectives_cannot_align_to_each_other(app):
    cycle = quarter(app)
    a, b = objective(app, cycle, "A"), objective(app, cycle, "B")
    app.align_objective(ADMIN, a, b)
    with pytest.raises(Conflict) as caught:
        app.align_objective(ADMIN, b, a)
    assert caught.value.code == "alignment_cycle"
    assert parents_of(app, b) == []


def test_a_cycle_through_a_parent_key_result_is_refused_too(app):
    cycle = quarter(app)
    b_obj = app.create_objective(
        ADMIN, cycle_id=cycle, title="B", key_results=[{"title": "KR-B", "target": 10}]
    )
    b_kr = next(iter(b_obj.key_results))
    a = objective(app, cycle, "A")
    app.align_objective(ADMIN, a, b_obj.id, parent_kr_id=b_kr)
    with pytest.raises(Conflict) as caught:
        app.align_objective(ADMIN, b_obj.id, a)
    assert caught.value.code == "alignment_cycle"


def test_aligning_to_itself_through_the_application_is_an_alignment_cycle(app):
    a = objective(app, quarter(app), "A")
    with pytest.raises(Conflict) as caught:
        app.align_objective(ADMIN, a, a)
    assert caught.value.code == "alignment_cycle"


def test_several_parents_are_allowed_and_kept(app):
    cycle = quarter(app)
    a, b, c = (objective(app, cycle, t) for t in ("A", "B", "C"))
    app.align_objective(ADMIN, a, b)
    app.align_objective(ADMIN, a, c)
    assert parents_of(app, a) == [b, c]


def test_a_diamond_is_not_a_cycle(app):
    cycle = quarter(app)
    a, b, c, d = (objective(app, cycle, t) for t in ("A", "B", "C", "D"))
    app.align_objective(ADMIN, a, b)
    app.align_objective(ADMIN, a, c)
    app.align_objective(ADMIN, b, d)
    app.align_objective(ADMIN, c, d)
    assert parents_of(app, c) == [d]
    with pytest.raises(Conflict):
        app.align_objective(ADMIN, d, a)


def test_aligning_twice_to_the_same_parent_is_a_conflict_in_the_application(app):
    cycle = quarter(app)
    a, b = objective(app, cycle, "A"), objective(app, cycle, "B")
    app.align_objective(ADMIN, a, b)
    with pytest.raises(Conflict) as caught:
        app.align_objective(ADMIN, a, b)
    assert caught.value.code == "conflict"
    assert parents_of(app, a) == [b]


def test_unaligning_breaks_the_loop_so_the_reverse_link_is_allowed(app):
    cycle = quarter(app)
    a, b = objective(app, cycle, "A"), objective(app, cycle, "B")
    app.align_objective(ADMIN, a, b)
    app.unalign_objective(ADMIN, a, b)
    app.align_objective(ADMIN, b, a)
    assert parents_of(app, a) == []
    assert parents_of(app, b) == [a]


def test_unaligning_from_an_unknown_parent_is_not_found_in_the_application(app):
    cycle = quarter(app)
    a, b = objective(app, cycle, "A"), objective(app, cycle, "B")
    with pytest.raises(NotFound) as caught:
        app.unalign_objective(ADMIN, a, b)
    assert caught.value.field == "parent_objective_id"


def test_objective_created_with_its_parents(app):
    cycle = quarter(app)
    b, c = objective(app, cycle, "B"), objective(app, cycle, "C")
    a = objective(app, cycle, "A", align_to=[{"objective_id": str(b)}, {"objective_id": c}])
    assert parents_of(app, a) == [b, c]


def test_aligning_to_an_unknown_objective_is_not_found(app):
    a = objective(app, quarter(app), "A")
    with pytest.raises(NotFound) as caught:
        app.align_objective(ADMIN, a, uuid.uuid4())
    assert caught.value.field == "parent_objective_id"
    assert parents_of(app, a) == []


def test_aligning_to_an_unknown_parent_key_result_is_not_found(app):
    cycle = quarter(app)
    a, b = objective(app, cycle, "A"), objective(app, cycle, "B")
    with pytest.raises(NotFound) as caught:
        app.align_objective(ADMIN, a, b, parent_kr_id="no-such-kr")
    assert caught.value.field == "kr_id"


def test_a_parent_the_caller_cannot_see_is_not_found(app):
    cycle = quarter(app)
    secret = app.create_objective(
        ADMIN, cycle_id=cycle, title="路飞的私人目标", owner_id="lufei", visibility="private"
    ).id
    mine = app.create_objective(BAILU, cycle_id=cycle, title="白露的目标").id
    with pytest.raises(NotFound) as caught:
        app.align_objective(BAILU, mine, secret)
    assert caught.value.field == "parent_objective_id"
    assert parents_of(app, mine) == []


def test_parent_in_an_enclosing_cycle_is_allowed(app):
    year = app.plan_cycle(
        ADMIN, name="2026", kind="year", start_date=date(2026, 1, 1), end_date=date(2026, 12, 31)
    ).id
    company = objective(app, year, "将北极星OKR打造成市场占有率第一的OKR软件", level="company")
    team = objective(app, quarter(app), "建立高效专业的客户支持团队")
    app.align_objective(ADMIN, team, company)
    assert parents_of(app, team) == [company]


def test_parent_in_a_cycle_that_does_not_enclose_the_childs_is_refused(app):
    q3 = app.plan_cycle(
        ADMIN,
        name="2026 Q3",
        kind="quarter",
        start_date=date(2026, 7, 1),
        end_date=date(2026, 9, 30),
    ).id
    parent = objective(app, q3, "Q3 目标")
    child = objective(app, quarter(app), "Q4 目标")
    with pytest.raises(InvalidInput) as caught:
        app.align_objective(ADMIN, child, parent)
    assert caught.value.field == "parent_objective_id"
    with pytest.raises(InvalidInput):
        app.align_objective(ADMIN, parent, child)
