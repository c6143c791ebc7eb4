"""The seed's demo dataset (docs/domain.md#demo): 北极星OKR's organisation and goal board.

Loaded through the same use cases as the API, so every demo fact is a real event with an actor.
Idempotent: an organisation that already has members is left alone. On PostgreSQL the database
is asked first with a short timeout, so a stack whose database is down fails at once
(`DatabaseUnreachable`) rather than after the pool's 30 s."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from okr_platform.principal import Principal

from .application import GoalsApplication
from .settings import GoalsSettings

DEPARTMENTS = [
    ("polaris", "北极星公司", None),
    ("cs", "客户成功部", "polaris"),
    ("pm", "产品市场部", "polaris"),
    ("hr", "人力资源部", "polaris"),
    ("team-a", "项目A组", "pm"),
]
MEMBERS = [
    # id, name, department, manager, roles
    ("admin", "管理员", "polaris", None, ["admin"]),
    ("zhang", "张总", "polaris", None, ["supervisor"]),
    ("bailu", "白露", "cs", "zhang", ["supervisor"]),
    ("mengbo", "孟波", "pm", "zhang", ["supervisor"]),
    ("lufei", "路飞", "team-a", "mengbo", ["employee"]),
    ("fanfan", "凡凡", "team-a", "mengbo", ["employee"]),
]


def _metric(
    title: str, current: float, target: float, unit: str = "custom", label: str | None = None
) -> dict[str, Any]:
    return {
        "title": title,
        "unit": unit,
        "unit_label": label,
        "start": 0.0,
        "target": target,
        "current": current,
    }


def _milestone(title: str, done: bool) -> dict[str, Any]:
    return {"title": title, "kind": "boolean", "current": 1.0 if done else 0.0}


# cycle, owner department, responsible, level, title, KRs (their current values are check-ins)
OBJECTIVES: list[tuple[str, str, list[str], str, str, list[dict[str, Any]]]] = [
    (
        "q4",
        "polaris",
        ["zhang"],
        "company",
        "将北极星OKR打造成市场占有率第一的OKR软件",
        [
            _metric("付费企业客户数达到1000家", 420, 1000, label="家"),
        ],
    ),
    (
        "q4",
        "cs",
        ["bailu"],
        "department",
        "建立高效专业的客户支持团队",
        [
            _milestone(
                "建立客户支持内部北极星OKR销售工具包, 并针对工具包对销售团队进行培训", False
            ),
        ],
    ),
    (
        "q4",
        "pm",
        ["mengbo"],
        "department",
        "将北极星OKR打造成市场占有率第一的OKR软件",
        [
            _metric(
                "筛选标杆行业的顶尖客户, 跟进客户OKR落实情况, 撰写《最佳实践》",
                80,
                100,
                unit="percent",
            ),
        ],
    ),
    (
        "dec",
        "hr",
        [],
        "department",
        "将北极星OKR打造成市场占有率第一的OKR软件",
        [
            _metric(
                "搭建团队内部分享学习制度, 每月开展一次内部主题分享活动。", 12, 360, label="次"
            ),
        ],
    ),
    (
        "q4",
        "team-a",
        ["lufei", "fanfan"],
        "department",
        "建立北极星OKR的用户口碑",
        [
            _metric("通过客户回访, 获取100家客户的5星好评。", 60, 100, label="位"),
        ],
    ),
    (
        "q4",
        "team-a",
        ["lufei", "fanfan"],
        "department",
        "发布新产品架构",
        [
            _milestone("北极星OKR系统平台用户数达到10w家企业。", True),
        ],
    ),
    (
        "q4",
        "team-a",
        ["lufei", "fanfan"],
        "department",
        "维护一个积极向上的团队氛围",
        [
            _metric("北极星OKR V3.0产品得到100家企业老板的5星好评。", 68, 100, label="家"),
        ],
    ),
    (
        "q4",
        "team-a",
        ["lufei", "fanfan"],
        "department",
        "组织一次团队建设",
        [
            _milestone("通过客户回访, 生成《客户调研访谈报告》。", False),
            _metric("与10位客户建立深度合作, 持续挖掘OKR落地。", 4, 10, label="位"),
            _milestone("评估5个以上的产品架构", False),
            _milestone("升级数据库并完成数据迁移", False),
            _metric("与测试人员制定5级检测标准", 80, 100, unit="percent"),
            _milestone("组织团队成员每周开展一次文化主题会议", False),
            _milestone("组织一次团队建设", True),
        ],
    ),
]


#: Seconds to wait for PostgreSQL, for the first answer and for each pooled connection after.
CONNECT_TIMEOUT = 5


class DatabaseUnreachable(RuntimeError):
    """The goals database does not answer: nothing was loaded."""


def load_demo(settings: GoalsSettings, org: str = "demo") -> str:
    env = settings.event_store_env()
    if not settings.embedded:
        check_database(settings)
        env["POSTGRES_CONNECT_TIMEOUT"] = str(CONNECT_TIMEOUT)
    app = GoalsApplication(env=env)
    try:
        return _load(app, org)
    finally:
        app.close()


def check_database(settings: GoalsSettings, timeout: int = CONNECT_TIMEOUT) -> None:
    """Raise DatabaseUnreachable unless the goals database answers within ``timeout`` s."""
    try:
        with psycopg.connect(settings.postgres_conninfo(), connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        first = next((line for line in str(error).splitlines() if line.strip()), str(error))
        raise DatabaseUnreachable(
            f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port} (database "
            f"{settings.postgres_dbname}) does not answer: {first.strip()}"
        ) from None


def _load(app: GoalsApplication, org: str) -> str:
    admin = Principal("admin", org, frozenset({"admin"}))
    if app.directory(admin).members:
        return f"organisation {org!r} already has members; demo not loaded again"
    for department_id, name, parent in DEPARTMENTS:
        app.add_department(
            admin, name=name, parent_id=parent, lead_ids=[], department_id=department_id
        )
    for member_id, name, department, manager, roles in MEMBERS:
        app.add_member(
            admin,
            member_id=member_id,
            name=name,
            department_id=department,
            manager_id=manager,
            time_zone="Asia/Shanghai",
            roles=roles,
            email=None,
        )
    cycles = {
        "q4": app.plan_cycle(
            admin,
            name="4季度",
            kind="quarter",
            start_date=date(2026, 10, 1),
            end_date=date(2026, 12, 31),
        ),
        "dec": app.plan_cycle(
            admin,
            name="12月份",
            kind="month",
            start_date=date(2026, 12, 1),
            end_date=date(2026, 12, 31),
        ),
    }
    for cycle in cycles.values():
        app.transition_cycle(admin, cycle.id, "active")
    company_id = None
    for cycle_key, department_id, responsible, level, title, key_results in OBJECTIVES:
        krs = [{**kr, "current": None} for kr in key_results]  # progress comes by check-ins
        align: list[dict[str, Any]] = (
            []
            if company_id is None or level == "company"
            else [{"objective_id": company_id, "kr_id": None}]
        )
        objective = app.create_objective(
            admin,
            cycle_id=cycles[cycle_key].id,
            title=title,
            level=level,
            owner_type="department",
            owner_id=department_id,
            responsible_ids=responsible,
            key_results=krs,
            align_to=align,
        )
        if level == "company":
            company_id = objective.id
        objective = app.submit_objective(admin, objective.id)
        if objective.status == "pending_approval":
            app.approve_objective(admin, objective.id)
        for kr, wanted in zip(objective.active_key_results, key_results, strict=True):
            if wanted["current"]:
                app.check_in(
                    admin,
                    objective.id,
                    kr.id,
                    current=wanted["current"],
                    note="演示数据",
                    source="manual",
                )
    return f"demo organisation {org!r} loaded: {len(MEMBERS)} members, {len(OBJECTIVES)} objectives"
