"""Commands from events through the embedded in-process transport: it drives the same handler
as Kafka, resumes, and dead-letters a bug in the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_events import wait_for
from commands_kit import TOPIC, stored_count
from okr_events.commands import CommandProcessor
from okr_events.in_process import InProcessRunner
from tally_context import (
    COUNTER_SOURCE,
    Counter,
    CounterApplication,
    TallyApplication,
    TallyHandler,
    counter_to_contract,
    refusals,
    sqlite_env,
    tally_contracts,  # noqa: F401 - a fixture
    totals,
)

pytestmark = pytest.mark.usefixtures("tally_contracts")


# ---- the embedded in-process transport ------------------------------------------------------


def test_in_process_transport_runs_the_same_handler_and_resumes(tmp_path: Path) -> None:
    counter_app = CounterApplication(sqlite_env(str(tmp_path / "counter.sqlite3")))
    counters = [Counter(actor="m") for _ in range(3)]
    amounts = {c.id: [3, -1, 4, 1, -5, 9] for c in counters}
    for counter in counters:
        for amount in amounts[counter.id]:
            counter.count(amount, "m")
    counter_app.save(*counters)

    def run_tally() -> tuple[InProcessRunner, CommandProcessor]:
        tally = TallyApplication(sqlite_env(str(tmp_path / "tally.sqlite3")))
        commands = CommandProcessor(TallyHandler(), tally)
        runner = InProcessRunner(
            commands,
            commands.store,
            counter_app,
            to_contract=counter_to_contract,
            topic=TOPIC,
            source=COUNTER_SOURCE,
        )
        runner.start_thread("tally")
        return runner, commands

    runner, commands = run_tally()
    wait_for(runner.caught_up, 10, "the in-process tally")
    expected = {c: sum(a for a in amounts[c] if a >= 0) for c in amounts}
    assert totals(commands.app) == expected
    assert len(refusals(commands.app)) == 6
    assert commands.store.next_offset(TOPIC, 0) == counter_app.recorder.max_notification_id()
    recorded = stored_count(commands.app)
    runner.close()

    # Restarted, it resumes from the position in the tally store: nothing is applied twice.
    runner, commands = run_tally()
    counters[0].count(10, "m")
    counter_app.save(counters[0])
    wait_for(runner.caught_up, 10, "the restarted tally")
    wait_for(lambda: runner.processor.applied == 1, 10, "the new count")
    assert stored_count(commands.app) == recorded + 1
    assert totals(commands.app)[counters[0].id] == expected[counters[0].id] + 10
    runner.close()
    counter_app.close()


def test_in_process_transport_dead_letters_a_bug_in_the_store(tmp_path: Path) -> None:
    counter_app = CounterApplication(sqlite_env(str(tmp_path / "counter.sqlite3")))
    counter = Counter(actor="m")
    for amount in (2, 13, 5):
        counter.count(amount, "m")
    counter_app.save(counter)
    tally = TallyApplication(sqlite_env(str(tmp_path / "tally.sqlite3")))
    commands = CommandProcessor(TallyHandler(bug_amount=13), tally)
    runner = InProcessRunner(
        commands,
        commands.store,
        counter_app,
        to_contract=counter_to_contract,
        topic=TOPIC,
        source=COUNTER_SOURCE,
        retry_backoff=0.01,
    )
    runner.start_thread("tally")
    wait_for(runner.caught_up, 10, "the in-process tally")
    [letter] = commands.store.dead_letters()
    assert letter["offset"] == 2 and letter["error"].startswith("RuntimeError: bug")
    assert refusals(tally) == []
    assert totals(tally) == {counter.id: 7}
    runner.close()
    counter_app.close()
