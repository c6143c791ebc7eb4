"""Composition root for `make run`: every bounded context in one process.

Adding a context (execution, reviews, notifier) is one line in CONTEXTS; no service imports
this module. Each context keeps its own store (its own SQLite file on the embedded default)."""

from __future__ import annotations

from fastapi import FastAPI
from okr_goals.main import GoalsContext, serve_contexts


def create_app() -> FastAPI:
    contexts = [
        GoalsContext(),
    ]
    return serve_contexts("OKR suite", contexts)
