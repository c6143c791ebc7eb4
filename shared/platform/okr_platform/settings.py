"""The JWT settings every HTTP service reads, each under its own prefix (GOALS_JWT_SECRET,
NOTIFIER_JWT_SECRET, ...): a base class the service's settings inherit."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings

# Documented in the README: valid only on the embedded default (SQLite), and the same for every
# service so one `okr token` works for every context of `make run`. Anything else must be
# configured with a real secret or refuses to start.
DEVELOPMENT_JWT_SECRET = "okr-embedded-development-secret-do-not-use-in-production"


class InsecureConfiguration(RuntimeError):
    """Raised at start-up when a non-embedded configuration has no real JWT secret."""


class JWTSettings(BaseSettings):
    """Token verification settings. A subclass sets `model_config`'s env_prefix and says, with
    `embedded`, whether its PERSISTENCE is the embedded 'sqlite' default."""

    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_public_key: str | None = None  # PEM, for RS256
    jwt_jwks_url: str | None = None  # for RS256 with a key set (kid in the token header)

    @property
    def embedded(self) -> bool:
        raise NotImplementedError("the service's settings say whether they are embedded")

    def _variable(self, name: str) -> str:
        """The environment variable of a setting, e.g. GOALS_JWT_SECRET (for messages)."""
        return f"{self.model_config.get('env_prefix', '')}{name}".upper()

    def hs256_secret(self) -> str:
        """The signing secret; the development one only on the embedded default."""
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if self.embedded:
            return secret or DEVELOPMENT_JWT_SECRET
        if not secret or secret == DEVELOPMENT_JWT_SECRET or len(secret) < 32:
            raise InsecureConfiguration(
                f"{self._variable('jwt_secret')} must be set to a real secret of at least 32 "
                f"characters when {self._variable('persistence')} is not the embedded 'sqlite' "
                "default"
            )
        return secret

    def check_secure(self) -> None:
        """Refuse to start without a real key outside the embedded default."""
        if self.jwt_algorithm == "HS256":
            self.hs256_secret()
        elif not (self.jwt_public_key or self.jwt_jwks_url):
            raise InsecureConfiguration(
                f"{self._variable('jwt_algorithm')}=RS256 needs {self._variable('jwt_public_key')}"
                f" or {self._variable('jwt_jwks_url')}"
            )
