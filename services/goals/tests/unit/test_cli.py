"""`okr` fails in one line: a bad setting names its variable, an unreachable database names its
address, and neither prints a traceback (okr_platform.cli)."""

from __future__ import annotations

import pytest
from okr_goals.cli import main


def test_a_bad_setting_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOALS_POSTGRES_PORT", "not-a-port")
    assert main(["token", "bailu"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("okr token: bad setting GOALS_POSTGRES_PORT: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_unreachable_database_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOALS_PERSISTENCE", "postgres")
    monkeypatch.setenv("GOALS_JWT_SECRET", "a-real-secret-of-at-least-32-characters!")
    monkeypatch.setenv("GOALS_POSTGRES_PORT", "1")  # nothing listens there
    assert main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("okr demo: PostgreSQL at 127.0.0.1:1 (database okr) does not answer")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_token_is_printed_when_all_is_well(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "bailu", "--org", "acme", "--role", "admin"]) == 0
    assert capsys.readouterr().out.count(".") == 2  # header.claims.signature
