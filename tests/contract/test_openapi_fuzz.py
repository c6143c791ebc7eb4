"""Every operation of the suite's OpenAPI fuzzed with schemathesis, in process, as an admin of
a small organisation: no server error, and no status code, content type or body the OpenAPI
does not declare (docs/architecture.md#errors).

The suite's embedded app (okr_suite.main.create_app: goals and the notifier in one process)
serves the union of both contexts' routes; `test_each_service_documents_its_part_of_the_suite`
proves the goals-alone and notifier-alone apps declare the same operations, so fuzzing the
suite covers every service's OpenAPI.

Bounded and reproducible: MAX_EXAMPLES per operation in the fuzzing phase (the examples and
coverage phases add their fixed cases), derandomized, no example database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from okr_goals.main import create_app as create_goals_app
from okr_goals.settings import GoalsSettings
from okr_notifier.main import create_app as create_notifier_app
from okr_suite.main import create_app as create_suite_app
from okr_testkit.goals import auth, build_org
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# schemathesis 4.32's own strategies draw from `random` (Hypothesis seeds it: still derandomized).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)

MAX_EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# An event stream never ends: what it sent within this many seconds is checked.
STREAM_SECONDS = 0.5

CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        # Each 200 of the stream takes STREAM_SECONDS: a few cases show its contract.
        "operations": [
            {"include-path": "/notifications/stream", "generation": {"max-examples": 2}}
        ],
    }
)


class AlreadyStarted:
    """The app as schemathesis reaches it: the one `admin_of_the_fuzzed_suite` set up and
    started (once for every operation). schemathesis would start and stop it around each
    operation, so its lifespan messages are answered here and the app keeps running."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            assert self.app is not None, "no started app: use the admin_of_the_fuzzed_suite fixture"
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


FUZZED = AlreadyStarted()
# The OpenAPI of an app never started (schemathesis.openapi.from_asgi would start it, on the
# default data directory); the cases go to FUZZED.
schema = schemathesis.openapi.from_dict(create_suite_app().openapi(), config=CONFIG)
schema.app = FUZZED


def embedded_env(monkeypatch: pytest.MonkeyPatch, data: Path) -> None:
    """The embedded default's settings, with its SQLite files under `data`."""
    monkeypatch.setenv("GOALS_PERSISTENCE", "sqlite")
    monkeypatch.setenv("GOALS_DATA_DIR", str(data / "goals"))
    monkeypatch.setenv("NOTIFIER_PERSISTENCE", "sqlite")
    monkeypatch.setenv("NOTIFIER_DATA_DIR", str(data / "notifier"))
    monkeypatch.setenv("NOTIFIER_SCHEDULER_ENABLED", "false")


@pytest.fixture(scope="module")
def admin_of_the_fuzzed_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The embedded suite on SQLite with the test kit's organisation, started as FUZZED; the
    headers of its admin."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        embedded_env(monkeypatch, tmp_path_factory.mktemp("fuzzed-suite"))
        FUZZED.app = create_suite_app()
        settings = GoalsSettings()
        try:
            with TestClient(FUZZED.app) as client:
                build_org(client, settings)
                yield auth(settings, "root", roles=["admin"])
        finally:
            FUZZED.app = None


@schema.parametrize()
def test_the_suite_answers_only_what_its_openapi_declares(
    case: Any, admin_of_the_fuzzed_suite: Any
) -> None:
    streams = "text/event-stream" in str(case.operation.definition.raw.get("responses", {}))
    case.call_and_validate(
        headers=admin_of_the_fuzzed_suite,
        checks=CHECKS,
        timeout=STREAM_SECONDS if streams else 30,
    )


def operations(app: FastAPI) -> dict[str, Any]:
    """Method and path -> the operation's declared responses."""
    return {
        f"{method.upper()} {path}": operation["responses"]
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
    }


def test_each_service_documents_its_part_of_the_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded_env(monkeypatch, tmp_path)
    suite = operations(create_suite_app())
    goals = operations(create_goals_app())
    notifier = operations(create_notifier_app())
    assert len(suite) == len(set(goals) | set(notifier)) > 50
    for name, responses in (goals | notifier).items():
        assert suite[name] == responses, name


def test_every_operation_declares_its_problems() -> None:
    """401 on every authenticated operation; every error status as problem+json."""
    for name, responses in operations(create_suite_app()).items():
        public = name in ("GET /health", "GET /ready", "GET /lag")  # operations, no token
        assert public or "401" in responses, name
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], (name, status)
