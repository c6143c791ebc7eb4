"""The goals service's domain events and the published contracts agree.

Fails when an event is added without a contract, when a contract drifts from its event, or
when a real event does not survive JSON, the CloudEvents envelope or its checked-in schema.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from eventsourcing.domain import Aggregate, DomainEvent
from okr_events import (
    GOALS_SOURCE,
    REGISTRY,
    CloudEvent,
    EventContract,
    InvalidEventData,
    UnknownEventType,
    contract_for,
    envelope,
    open_envelope,
    register,
    stable_event_id,
    unregister,
)
from okr_events.goals import KRProgressUpdated
from okr_goals.contracts import ContractError, to_contract
from okr_goals.domain.cycle import Cycle
from okr_goals.domain.objective import Objective
from okr_goals.domain.organisation import Organisation

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "shared" / "events" / "schemas"
AGGREGATES = (Organisation, Cycle, Objective)
COMMON_FIELDS = {"aggregate_id", "aggregate_version", "occurred_at"}


def domain_event_classes() -> dict[str, type[DomainEvent]]:
    """Every event class the aggregates define (@event creates them as class attributes).

    The framework's own per-aggregate bases (Event, Created) share their names with attributes
    of eventsourcing's Aggregate, which is how they are told apart from real events.
    """
    found: dict[str, type[DomainEvent]] = {}
    for aggregate in AGGREGATES:
        for name, value in vars(aggregate).items():
            if (
                isinstance(value, type)
                and issubclass(value, DomainEvent)
                and not hasattr(Aggregate, name)
            ):
                assert name not in found, f"{name} is defined by two aggregates"
                found[name] = value
    return found


EVENT_CLASSES = domain_event_classes()


# ---- every event has a contract that fits it ---------------------------------------------------


def test_discovery_finds_the_events():
    assert {"OrganisationRegistered", "CycleCreated", "ObjectiveCreated"} <= EVENT_CLASSES.keys()
    assert {"MemberAdded", "KRProgressUpdated", "CycleArchived"} <= EVENT_CLASSES.keys()


@pytest.mark.parametrize("name", sorted(EVENT_CLASSES))
def test_event_has_a_matching_contract(name: str):
    contract = contract_for(f"okr.goals.{name}")
    assert contract.__name__ == name
    assert contract.event_type == f"okr.goals.{name}"
    event_fields = set(EVENT_CLASSES[name].__annotations__)
    assert set(contract.model_fields) - COMMON_FIELDS == event_fields, (
        f"{contract.cloudevents_type()} fields differ from {name}'s attributes"
    )
    assert contract.model_json_schema()["description"], f"{name} contract needs a docstring"


def test_no_contract_without_a_domain_event():
    goals = {c.__name__ for c in REGISTRY.values() if c.event_type.startswith("okr.goals.")}
    assert goals - EVENT_CLASSES.keys() == set()


# ---- a realistic scenario produces every event ------------------------------------------------


def run_scenario() -> list[DomainEvent]:
    org = Organisation(slug="huadong-tech", name="华东科技有限公司", actor="system")
    org.add_member(
        "m-wang", "王芳", None, None, "Asia/Shanghai", ["admin"], "wang.fang@example.cn", "system"
    )
    org.add_department("d-support", "客户支持部", None, ["m-wang"], "m-wang")
    org.add_department("d-support-east", "华东支持组", "d-support", [], "m-wang")
    org.add_member(
        "m-li", "李强", "d-support", "m-wang", "Asia/Shanghai", ["supervisor"], None, "m-wang"
    )
    org.add_member("m-chen", "陈静", "d-support-east", "m-li", "Asia/Shanghai", [], None, "m-wang")
    org.update_member("m-chen", {"time_zone": "Asia/Urumqi", "roles": ["employee"]}, "m-wang")
    org.change_settings({"subtasks_enabled": True, "progress_warning_threshold": 0.6}, "m-wang")

    cycle = Cycle.plan(
        org.id, "2025 年第二季度", "quarter", date(2025, 4, 1), date(2025, 6, 30), "m-wang"
    )
    cycle.transition("active", actor="m-wang")

    company = Objective.draft(
        org_id=org.id,
        cycle_id=cycle.id,
        title="客户满意度行业领先",
        level="company",
        owner_type="department",
        owner_id="d-support",
        responsible_ids=["m-wang", "m-li"],
        department_id="d-support",
        actor="m-wang",
    )
    csat = company.add_key_result(
        title="客户满意度达到 95%", unit="percent", start=82, target=95, actor="m-wang"
    )
    company.submit(approval_required=False, actor="m-wang")

    team = Objective.draft(
        org_id=org.id,
        cycle_id=cycle.id,
        title="建立高效专业的客户支持团队",
        description="覆盖华东区域的重点客户",
        level="team",
        owner_id="m-li",
        department_id="d-support",
        visibility="department",
        actor="m-li",
    )
    team.edit({"description": "覆盖华东区域的重点客户，7×24 小时响应", "weight": 2}, actor="m-li")
    clients = team.add_key_result(
        title="新签重点客户",
        unit="custom",
        unit_label="家",
        start=0,
        target=20,
        due_date=date(2025, 6, 15),
        actor="m-li",
    )
    complaints = team.add_key_result(
        title="每月客户投诉降至 30 次以内",
        unit="custom",
        unit_label="次",
        start=120,
        target=30,
        weight=2,
        actor="m-li",
    )
    budget = team.add_key_result(
        title="培训预算执行", unit="currency", unit_label="cny", target=50000, actor="m-li"
    )
    wiki = team.add_key_result(title="上线客服知识库", kind="boolean", actor="m-li")
    team.edit_key_result(
        clients, {"due_date": date(2025, 6, 30), "owner_id": "m-chen"}, actor="m-li"
    )
    team.change_target(clients, 25, reason="华东市场扩张，目标上调", actor="m-li")
    team.remove_key_result(budget, reason="预算改由财务部跟踪", actor="m-li")
    team.submit(approval_required=True, actor="m-li")
    team.reject("请为每个关键结果补充截止日期", actor="m-wang")
    team.submit(approval_required=True, actor="m-li")
    team.approve(actor="m-wang")
    team.align(company.id, csat, actor="m-li")
    team.unalign(company.id, csat, actor="m-li")
    team.align(company.id, None, actor="m-li")
    team.check_in(clients, current=8, confidence=4, note="本周新签 3 家", actor="m-chen")
    team.check_in(complaints, current=75, risk="at_risk", source="report", actor="m-li")
    team.check_in(wiki, current=1, confidence=5, source="task", actor="m-li")
    team.start_scoring(actor="m-wang")
    team.check_in(clients, current=23, note="补录 5 月数据", late=True, actor="m-wang")
    team.mark_scored(72.5, actor="m-wang")
    team.close(actor="m-wang")

    pilot = Objective.draft(
        org_id=org.id,
        cycle_id=cycle.id,
        title="试点 7×24 小时热线",
        owner_id="m-chen",
        visibility="private",
        actor="m-chen",
    )
    pilot.cancel("试点取消", actor="m-chen")

    for state in ("scoring", "closed", "archived"):
        cycle.transition(state, actor="m-wang")
    return [e for agg in (org, cycle, company, team, pilot) for e in agg.collect_events()]


@pytest.fixture(scope="module")
def scenario_events() -> list[DomainEvent]:
    return run_scenario()


def test_scenario_produces_every_event_type(scenario_events):
    produced = Counter(type(e).__name__ for e in scenario_events)
    assert set(EVENT_CLASSES) - produced.keys() == set(), "extend run_scenario() for new events"


def _validate_against_schema_file(contract: EventContract) -> None:
    name = f"{contract.cloudevents_type()}.json"
    path = SCHEMA_DIR / name
    assert path.is_file(), f"{path} is missing: run python -m okr_events.schemas write"
    schema = json.loads(path.read_text(encoding="utf-8"))
    payload = json.loads(contract.model_dump_json())
    jsonschema.validate(payload, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("name", sorted(EVENT_CLASSES))
def test_real_events_survive_the_wire(name: str, scenario_events):
    events = [e for e in scenario_events if type(e).__name__ == name]
    assert events, f"run_scenario() produced no {name}"
    for event in events:
        contract = to_contract(event)
        assert type(contract).__name__ == name
        assert contract.aggregate_id == event.originator_id
        assert contract.aggregate_version == event.originator_version
        assert contract.occurred_at == event.timestamp

        assert type(contract).model_validate_json(contract.model_dump_json()) == contract

        event_id = stable_event_id(contract.aggregate_id, contract.aggregate_version)
        ce = envelope(contract, event_id=event_id, source=GOALS_SOURCE)
        assert ce.type == f"okr.goals.{name}.v1"
        assert ce.subject == str(event.originator_id)
        received = CloudEvent.model_validate_json(ce.model_dump_json())
        opened = open_envelope(received)
        assert type(opened) is type(contract)
        assert opened == contract

        _validate_against_schema_file(contract)


def test_chinese_text_travels_unescaped(scenario_events):
    created = next(
        e
        for e in scenario_events
        if type(e).__name__ == "ObjectiveCreated" and e.title == "建立高效专业的客户支持团队"
    )
    body = envelope(to_contract(created), event_id="x", source=GOALS_SOURCE).model_dump_json()
    assert "建立高效专业的客户支持团队" in body


def test_check_in_values_are_typed(scenario_events):
    check_in = next(e for e in scenario_events if type(e).__name__ == "KRProgressUpdated")
    contract = to_contract(check_in)
    assert isinstance(contract, KRProgressUpdated)
    assert contract.before.current == 0 and contract.after.current == 8
    assert contract.after.confidence == 4 and contract.after.risk == "normal"


def test_free_form_dates_are_normalised_to_json(scenario_events):
    edited = next(e for e in scenario_events if type(e).__name__ == "KeyResultEdited")
    contract = to_contract(edited)
    assert contract.changes["due_date"] == "2025-06-30"
    assert contract.previous["due_date"] == "2025-06-15"


# ---- to_contract refuses what it cannot publish ----------------------------------------------


def _fake_event(class_name: str, **attributes):
    cls = type(class_name, (SimpleNamespace,), {})
    return cls(
        originator_id=uuid.uuid4(),
        originator_version=3,
        timestamp=datetime(2025, 5, 1, 8, 30, tzinfo=UTC),
        **attributes,
    )


def test_to_contract_unknown_event():
    with pytest.raises(ContractError, match="NoSuchEvent has no contract"):
        to_contract(_fake_event("NoSuchEvent", actor="m-li"))


def test_to_contract_missing_attribute():
    with pytest.raises(ContractError, match=r"missing from the event.*'reason'"):
        to_contract(_fake_event("ObjectiveRejected", actor="m-li"))


def test_to_contract_attribute_without_field():
    event = _fake_event("ObjectiveRejected", actor="m-li", reason="不够具体", urgent=True)
    with pytest.raises(ContractError, match=r"missing from the contract \['urgent'\]"):
        to_contract(event)


def test_to_contract_invalid_value():
    event = _fake_event("ObjectiveScored", actor="m-wang", score=250.0)
    with pytest.raises(ContractError, match="score"):
        to_contract(event)


# ---- registry --------------------------------------------------------------------------------


def test_contract_for_versions():
    assert contract_for("okr.goals.KRProgressUpdated") is KRProgressUpdated
    assert contract_for("okr.goals.KRProgressUpdated", 1) is KRProgressUpdated
    with pytest.raises(UnknownEventType, match="version 9"):
        contract_for("okr.goals.KRProgressUpdated", 9)
    with pytest.raises(UnknownEventType, match=r"okr\.goals\.Nope"):
        contract_for("okr.goals.Nope")

    class KRProgressUpdatedV2(KRProgressUpdated):
        """A check-in, v2."""

        version = 2

    register(KRProgressUpdatedV2)
    try:
        assert contract_for("okr.goals.KRProgressUpdated") is KRProgressUpdatedV2
        assert contract_for("okr.goals.KRProgressUpdated", 1) is KRProgressUpdated
    finally:
        unregister(KRProgressUpdatedV2)
    assert contract_for("okr.goals.KRProgressUpdated") is KRProgressUpdated


def test_register_refuses_a_second_class_for_a_type():
    class Impostor(KRProgressUpdated):
        """Same type, different class."""

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)


# ---- envelope bad input ----------------------------------------------------------------------


def _check_in_envelope(**data_changes) -> dict:
    contract = KRProgressUpdated(
        aggregate_id=uuid.uuid4(),
        aggregate_version=7,
        occurred_at=datetime(2025, 5, 1, 8, 30, tzinfo=UTC),
        actor="m-chen",
        kr_id="kr-1",
        check_in_id="ci-1",
        before={"current": 5, "progress": 0.25, "confidence": 3, "risk": "normal"},
        after={"current": 8, "progress": 0.4, "confidence": 4, "risk": "normal"},
        objective_progress_before=0.3,
        objective_progress_after=0.35,
        note="本周新签 3 家",
        source="manual",
        late=False,
    )
    body = json.loads(envelope(contract, event_id="e-1", source=GOALS_SOURCE).model_dump_json())
    body["data"].update(data_changes)
    return body


def test_envelope_unknown_type():
    body = _check_in_envelope()
    body["type"] = "okr.goals.KRProgressExploded.v1"
    with pytest.raises(UnknownEventType, match="KRProgressExploded"):
        open_envelope(CloudEvent.model_validate(body))


def test_envelope_unknown_version():
    body = _check_in_envelope()
    body["type"] = "okr.goals.KRProgressUpdated.v9"
    with pytest.raises(UnknownEventType):
        open_envelope(CloudEvent.model_validate(body))


def test_envelope_missing_field():
    body = _check_in_envelope()
    del body["data"]["kr_id"]
    with pytest.raises(InvalidEventData, match="kr_id"):
        open_envelope(CloudEvent.model_validate(body))


@pytest.mark.parametrize(
    "changes",
    [
        {"source": "carrier_pigeon"},
        {"surprise": 1},
        {"occurred_at": "2025-05-01T08:30:00"},  # naive
        {"aggregate_version": 0},
        {"objective_progress_after": 1.5},
    ],
    ids=["bad-literal", "extra-field", "naive-time", "version-0", "progress>1"],
)
def test_envelope_invalid_data(changes):
    with pytest.raises(InvalidEventData):
        open_envelope(CloudEvent.model_validate(_check_in_envelope(**changes)))


def test_envelope_subject_must_be_the_aggregate():
    body = _check_in_envelope()
    body["subject"] = str(uuid.uuid4())
    with pytest.raises(InvalidEventData, match="subject"):
        open_envelope(CloudEvent.model_validate(body))


def test_cloudevent_attributes_are_checked():
    body = _check_in_envelope()
    with pytest.raises(ValueError, match="specversion"):
        CloudEvent.model_validate({**body, "specversion": "0.3"})
    with pytest.raises(ValueError, match="time"):
        CloudEvent.model_validate({k: v for k, v in body.items() if k != "time"})
    extended = CloudEvent.model_validate({**body, "partitionkey": "org-1"})
    assert open_envelope(extended) == open_envelope(CloudEvent.model_validate(body))


def test_stable_event_id():
    aggregate_id = uuid.uuid4()
    assert stable_event_id(aggregate_id, 3) == stable_event_id(aggregate_id, 3)
    assert stable_event_id(aggregate_id, 3) != stable_event_id(aggregate_id, 4)
    assert stable_event_id(aggregate_id, 3) != stable_event_id(uuid.uuid4(), 3)
