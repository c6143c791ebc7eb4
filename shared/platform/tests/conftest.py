"""Fixtures of the okr_platform tests."""

from __future__ import annotations

import pytest
from web_kit import SECRET, ExampleSettings


@pytest.fixture
def hs256() -> ExampleSettings:
    """Outside the embedded default, with a real HS256 secret."""
    return ExampleSettings(persistence="postgres", jwt_secret=SECRET)
