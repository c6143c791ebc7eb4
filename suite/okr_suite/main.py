"""Composition root for `make run`: every bounded context in one process.

Adding a context (execution, reviews) is one line in create_app; no service imports this
module. Each context keeps its own store (its own SQLite files on the embedded default), and
events flow between them in process through the same consumer code the Kafka path uses."""

from __future__ import annotations

from fastapi import FastAPI
from okr_goals.contracts import to_contract as goals_contract
from okr_goals.main import GoalsContext
from okr_notifier.main import NotifierContext
from okr_notifier.service import InProcessFeed
from okr_platform.serving import serve_contexts


def create_app() -> FastAPI:
    goals = GoalsContext()

    def goals_application():  # type: ignore[no-untyped-def]
        return goals._service().app

    notifier = NotifierContext(feeds=[InProcessFeed(goals_application, goals_contract)])
    return serve_contexts("OKR suite", [goals, notifier], "okr-suite")
