"""What the okr_platform tests share: the settings of a service like the suite's (prefix EXAMPLE_,
embedded on SQLite, as GoalsSettings and NotifierSettings are)."""

from __future__ import annotations

from typing import Literal

from okr_platform.settings import JWTSettings
from pydantic_settings import SettingsConfigDict

SECRET = "a-real-secret-that-is-long-enough-0123456789"


class ExampleSettings(JWTSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", extra="ignore")

    persistence: Literal["sqlite", "postgres"] = "sqlite"

    @property
    def embedded(self) -> bool:
        return self.persistence == "sqlite"
