"""The suite's vocabulary (okr_events.vocabulary): each tuple is its Literal's values, the two
meanings of "open" are what their callers need, and the contracts use these very types."""

from __future__ import annotations

from typing import get_args

import pytest
from okr_events import goals, notifier, vocabulary
from okr_events.vocabulary import (
    EDITABLE_STATUSES,
    LATE_EDITABLE_STATUSES,
    LEVEL_RANK,
    LEVELS,
    OBJECTIVE_STATUSES,
    OPEN_STATUSES,
    OPEN_UNSCORED_STATUSES,
)

PAIRS = [
    ("Role", "ROLES"),
    ("ScoreScale", "SCORE_SCALES"),
    ("CycleKind", "CYCLE_KINDS"),
    ("CycleState", "CYCLE_STATES"),
    ("CycleTarget", "CYCLE_TARGETS"),
    ("Level", "LEVELS"),
    ("Visibility", "VISIBILITIES"),
    ("OwnerType", "OWNER_TYPES"),
    ("ObjectiveStatus", "OBJECTIVE_STATUSES"),
    ("KRKind", "KR_KINDS"),
    ("KRUnit", "KR_UNITS"),
    ("Risk", "RISKS"),
    ("CheckInSource", "CHECK_IN_SOURCES"),
]


@pytest.mark.parametrize(("literal", "values"), PAIRS)
def test_each_tuple_lists_its_literals_values_in_order(literal: str, values: str):
    assert getattr(vocabulary, values) == get_args(getattr(vocabulary, literal))
    assert len(set(getattr(vocabulary, values))) == len(getattr(vocabulary, values))


def test_the_values_the_domain_documents():
    assert LEVELS == ("company", "department", "team", "personal")
    assert vocabulary.VISIBILITIES == ("public", "department", "private")
    assert vocabulary.ROLES == ("employee", "supervisor", "admin")
    assert vocabulary.CYCLE_STATES == ("planning", "active", "scoring", "closed", "archived")
    assert vocabulary.CYCLE_STATES[1:] == vocabulary.CYCLE_TARGETS
    assert OBJECTIVE_STATUSES == (
        "draft",
        "pending_approval",
        "active",
        "scoring",
        "scored",
        "closed",
        "cancelled",
    )


def test_a_scored_objective_is_open_but_no_longer_warned_about():
    assert "scored" in OPEN_STATUSES
    assert "scored" not in OPEN_UNSCORED_STATUSES
    assert set(OPEN_UNSCORED_STATUSES) == set(OPEN_STATUSES) - {"scored"}
    assert set(OPEN_STATUSES) == set(OBJECTIVE_STATUSES) - {"closed", "cancelled"}


def test_editable_and_late_editable_statuses_do_not_overlap():
    assert not set(EDITABLE_STATUSES) & set(LATE_EDITABLE_STATUSES)
    assert set(EDITABLE_STATUSES) | set(LATE_EDITABLE_STATUSES) <= set(OBJECTIVE_STATUSES)


def test_levels_rank_from_the_top_of_the_tree_down():
    assert sorted(LEVELS, key=LEVEL_RANK.__getitem__) == list(LEVELS)
    assert LEVEL_RANK["company"] < LEVEL_RANK["personal"]


@pytest.mark.parametrize(
    ("contract", "field", "literal"),
    [
        (goals.ObjectiveCreated, "level", vocabulary.Level),
        (goals.ObjectiveCreated, "visibility", vocabulary.Visibility),
        (goals.ObjectiveCreated, "owner_type", vocabulary.OwnerType),
        (goals.CycleCreated, "kind", vocabulary.CycleKind),
        (goals.KeyResultAdded, "kind", vocabulary.KRKind),
        (goals.KeyResultAdded, "unit", vocabulary.KRUnit),
        (goals.KRProgressUpdated, "source", vocabulary.CheckInSource),
        (goals.KRValues, "risk", vocabulary.Risk),
    ],
)
def test_the_contracts_use_the_vocabulary(contract, field: str, literal):
    assert contract.model_fields[field].annotation is literal


def test_star_ratings_in_the_contracts_are_the_vocabularys():
    below = notifier.ReminderSettings.model_json_schema()["properties"]["confidence_below"]
    assert (below["minimum"], below["maximum"]) == (vocabulary.MIN_STARS, vocabulary.MAX_STARS)
    rated = goals.KRValues.model_json_schema()["properties"]["confidence"]["anyOf"][0]
    assert (rated["minimum"], rated["maximum"]) == (vocabulary.MIN_STARS, vocabulary.MAX_STARS)
