"""An outage a log runner waits out is logged as one line per attempt, never a traceback, and
the runner follows the log again once it is over (docs/local-stack.md)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest
from okr_events import GOALS_SOURCE, GOALS_TOPIC
from okr_events.consuming import open_consumer_store
from okr_events.in_process import InProcessRunner
from okr_events.ledger import Ledger
from okr_goals.contracts import to_contract
from okr_goals.service import GoalsService
from okr_testkit.goals import sqlite_settings

from conftest import wait_for


def test_an_outage_is_one_line_per_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    service = GoalsService(sqlite_settings(tmp_path))
    store = open_consumer_store("ledger", sqlite_path=str(tmp_path / "ledger.sqlite3"))
    runner = InProcessRunner(
        Ledger(),
        store,
        service.app,
        to_contract=to_contract,
        topic=GOALS_TOPIC,
        source=GOALS_SOURCE,
    )
    refusals = 3
    next_offset = store.next_offset

    def away(topic: str, partition: int) -> Any:
        nonlocal refusals
        if refusals:
            refusals -= 1
            # psycopg's messages run over several lines (hints); InterfaceError is an outage
            # too, though not one the processor retries in place.
            raise psycopg.InterfaceError("connection is lost\nHINT: is the server running?")
        return next_offset(topic, partition)

    monkeypatch.setattr(store, "next_offset", away)
    caplog.set_level(logging.INFO, logger="okr_events")
    runner.start_thread("ledger")
    try:
        wait_for(lambda: runner.healthy and runner.reconnects == 1, 10, "the runner to reconnect")
        assert runner.error is None
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 3, [r.getMessage() for r in warnings]
        for record in warnings:
            assert record.exc_info is None
            assert "\n" not in record.getMessage()
            assert "connection is lost" in record.getMessage()
    finally:
        runner.close()
        service.close()
