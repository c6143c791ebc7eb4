"""Cycles (docs/domain.md#cycles): planning -> active -> scoring -> closed -> archived, and
nothing else.

Pure domain tests on the aggregate: no HTTP, no database.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import date

import pytest
from okr_goals.domain.cycle import CYCLE_KINDS, CYCLE_STATES, Cycle
from okr_platform.errors import IllegalTransition, InvalidInput

PATH = ["planning", "active", "scoring", "closed", "archived"]
NEXT = dict(itertools.pairwise(PATH))


def plan(**fields) -> Cycle:
    values = {
        "org_id": uuid.uuid4(),
        "name": "2026 第四季度",
        "kind": "quarter",
        "start_date": date(2026, 10, 1),
        "end_date": date(2026, 12, 31),
        "actor": "root",
    } | fields
    return Cycle.plan(**values)


def cycle_in(state: str) -> Cycle:
    cycle = plan()
    for step in PATH[1 : PATH.index(state) + 1]:
        cycle.transition(step, actor="root")
    assert cycle.state == state
    return cycle


def test_new_cycle_is_planning():
    cycle = plan(name="  2026 第四季度  ")
    assert cycle.state == "planning"
    assert cycle.name == "2026 第四季度"
    assert cycle.kind == "quarter"
    assert (cycle.start_date, cycle.end_date) == (date(2026, 10, 1), date(2026, 12, 31))


def test_cycle_walks_the_whole_path_recording_each_step():
    cycle = plan()
    cycle.collect_events()
    for state in PATH[1:]:
        cycle.transition(state, actor="root")
        assert cycle.state == state
    assert [type(e).__name__ for e in cycle.collect_events()] == [
        "CycleActivated",
        "CycleScoringStarted",
        "CycleClosed",
        "CycleArchived",
    ]


def test_replaying_a_cycle_rebuilds_its_state():
    cycle = cycle_in("scoring")
    copy = None
    for e in cycle.collect_events():
        copy = e.mutate(copy)
    assert copy.state == "scoring"
    assert copy.name == "2026 第四季度"
    assert copy.end_date == date(2026, 12, 31)


@pytest.mark.parametrize(
    ("state", "to"),
    [(state, to) for state in CYCLE_STATES for to in CYCLE_STATES if NEXT.get(state) != to],
)
def test_every_other_jump_is_illegal(state, to):
    cycle = cycle_in(state)
    version = cycle.version
    with pytest.raises(IllegalTransition) as caught:
        cycle.transition(to, actor="root")
    assert caught.value.code == "illegal_transition"
    assert caught.value.field == "to"
    assert cycle.state == state
    assert cycle.version == version


def test_archived_is_the_end_of_the_road():
    cycle = cycle_in("archived")
    for to in CYCLE_STATES:
        with pytest.raises(IllegalTransition):
            cycle.transition(to, actor="root")


@pytest.mark.parametrize("to", ["cancelled", "draft", "", "ACTIVE"])
def test_unknown_target_state_is_invalid_input(to):
    cycle = plan()
    with pytest.raises(InvalidInput) as caught:
        cycle.transition(to, actor="root")
    assert caught.value.field == "to"
    assert cycle.state == "planning"


@pytest.mark.parametrize(
    ("state", "accepts"),
    [
        ("planning", True),
        ("active", True),
        ("scoring", True),
        ("closed", False),
        ("archived", False),
    ],
)
def test_objectives_are_written_until_the_cycle_closes(state, accepts):
    assert cycle_in(state).accepts_changes is accepts


@pytest.mark.parametrize("kind", CYCLE_KINDS)
def test_every_cycle_kind_is_accepted(kind):
    assert plan(kind=kind).kind == kind


@pytest.mark.parametrize("kind", ["week", "Quarter", "", "季度"])
def test_unknown_kind_is_refused(kind):
    with pytest.raises(InvalidInput) as caught:
        plan(kind=kind)
    assert caught.value.field == "kind"


def test_end_before_start_is_refused():
    with pytest.raises(InvalidInput) as caught:
        plan(start_date=date(2026, 12, 31), end_date=date(2026, 10, 1))
    assert caught.value.field == "end_date"


def test_one_day_cycle_is_allowed():
    cycle = plan(kind="custom", start_date=date(2026, 10, 1), end_date=date(2026, 10, 1))
    assert cycle.start_date == cycle.end_date


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_name_is_refused(name):
    with pytest.raises(InvalidInput) as caught:
        plan(name=name)
    assert caught.value.field == "name"
