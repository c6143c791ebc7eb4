"""JWT bearer verification (HS256, RS256 with a PEM key or a JWKS URL) and the JWT settings every
service inherits under its own prefix."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from okr_goals.settings import GoalsSettings
from okr_notifier.settings import NotifierSettings
from okr_platform.auth import AuthenticationError, TokenVerifier
from okr_platform.principal import Principal
from okr_platform.settings import DEVELOPMENT_JWT_SECRET, InsecureConfiguration, JWTSettings
from web_kit import SECRET, ExampleSettings


def claims(**changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = {"sub": "bailu", "org": "acme", "roles": [], "iat": now, "exp": now + timedelta(hours=1)}
    return {k: v for k, v in (body | changes).items() if v is not None}


def bearer(token: str) -> str:
    return f"Bearer {token}"


def refused(verifier: TokenVerifier, authorization: str | None) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        verifier.principal(authorization)
    return caught.value


# ---- HS256 ---------------------------------------------------------------------------------------


def test_an_hs256_token_is_the_principal_of_its_claims(hs256: ExampleSettings) -> None:
    token = jwt.encode(claims(roles=["admin", "supervisor"]), SECRET, algorithm="HS256")
    assert TokenVerifier(hs256).principal(bearer(token)) == Principal(
        member_id="bailu", org="acme", roles=frozenset({"admin", "supervisor"})
    )
    assert TokenVerifier(hs256).principal("bearer  " + token + " ").roles == {"admin", "supervisor"}


@pytest.mark.parametrize("header", [None, "", "Basic Ym9zczpwYXNz", "Bearer", "Bearer   ", "token"])
def test_no_bearer_token_is_unauthenticated(hs256: ExampleSettings, header: str | None) -> None:
    assert refused(TokenVerifier(hs256), header).code == "unauthenticated"


def test_an_expired_token_is_token_expired(hs256: ExampleSettings) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    token = jwt.encode(claims(exp=past, iat=past - timedelta(hours=1)), SECRET, algorithm="HS256")
    error = refused(TokenVerifier(hs256), bearer(token))
    assert (error.code, error.detail) == ("token_expired", "the token has expired")


@pytest.mark.parametrize(
    "changes",
    [{"org": None}, {"sub": None}, {"org": 5}, {"sub": ["bailu"]}, {"roles": "admin"}],
    ids=["no-org", "no-sub", "org-not-string", "sub-not-string", "roles-not-list"],
)
def test_missing_or_ill_typed_claims_are_invalid(
    hs256: ExampleSettings, changes: dict[str, Any]
) -> None:
    token = jwt.encode(claims(**changes), SECRET, algorithm="HS256")
    assert refused(TokenVerifier(hs256), bearer(token)).code == "invalid_token"


def test_forged_unsigned_and_garbage_tokens_are_invalid(hs256: ExampleSettings) -> None:
    verifier = TokenVerifier(hs256)
    other_secret = "another-secret-that-is-long-enough-0123456789"
    forged = jwt.encode(claims(roles=["admin"]), other_secret, algorithm="HS256")
    unsigned = jwt.encode(claims(roles=["admin"]), None, algorithm="none")
    for token in (forged, unsigned, "not.a.jwt"):
        assert refused(verifier, bearer(token)).code == "invalid_token"


def test_the_development_secret_works_only_on_the_embedded_default() -> None:
    token = jwt.encode(claims(), DEVELOPMENT_JWT_SECRET, algorithm="HS256")
    assert TokenVerifier(ExampleSettings()).principal(bearer(token)).member_id == "bailu"
    with pytest.raises(InsecureConfiguration, match="EXAMPLE_JWT_SECRET must be set"):
        TokenVerifier(ExampleSettings(persistence="postgres", jwt_secret=DEVELOPMENT_JWT_SECRET))


# ---- RS256 ---------------------------------------------------------------------------------------


def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def hs256_by_hand(payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 token with any secret (PyJWT refuses PEM keys as HMAC secrets)."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(payload).encode())
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


def test_rs256_verifies_with_the_public_key_only() -> None:
    key, other = private_key(), private_key()
    settings = ExampleSettings(
        persistence="postgres", jwt_algorithm="RS256", jwt_public_key=public_pem(key)
    )
    verifier = TokenVerifier(settings)
    token = jwt.encode(claims(roles=["admin"]), key, algorithm="RS256")
    assert verifier.principal(bearer(token)) == Principal("bailu", "acme", frozenset({"admin"}))

    assert refused(verifier, bearer(jwt.encode(claims(), other, "RS256"))).code == "invalid_token"
    # An HS256 token "signed" with the public key must not pass (algorithm confusion).
    confused = hs256_by_hand(claims(iat=None, exp=None), public_pem(key).encode())
    assert refused(verifier, bearer(confused)).code == "invalid_token"
    past = datetime.now(UTC) - timedelta(hours=1)
    expired = jwt.encode(claims(exp=past, iat=past - timedelta(hours=1)), key, algorithm="RS256")
    assert refused(verifier, bearer(expired)).code == "token_expired"


@pytest.fixture
def jwks_url() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A JWKS endpoint on 127.0.0.1 with one RSA key, kid "k1"."""
    key = private_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [jwk | {"kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    finally:
        server.shutdown()
        server.server_close()


def test_rs256_finds_the_key_in_the_jwks_by_kid(jwks_url: tuple[str, Any]) -> None:
    url, key = jwks_url
    settings = ExampleSettings(persistence="postgres", jwt_algorithm="RS256", jwt_jwks_url=url)
    verifier = TokenVerifier(settings)
    token = jwt.encode(claims(), key, algorithm="RS256", headers={"kid": "k1"})
    assert verifier.principal(bearer(token)).member_id == "bailu"
    unknown = jwt.encode(claims(), key, algorithm="RS256", headers={"kid": "k2"})
    assert refused(verifier, bearer(unknown)).code == "invalid_token"


# ---- settings ------------------------------------------------------------------------------------


def test_outside_the_embedded_default_a_real_key_is_required() -> None:
    with pytest.raises(InsecureConfiguration) as caught:
        ExampleSettings(persistence="postgres").check_secure()
    assert str(caught.value) == (
        "EXAMPLE_JWT_SECRET must be set to a real secret of at least 32 characters when "
        "EXAMPLE_PERSISTENCE is not the embedded 'sqlite' default"
    )
    with pytest.raises(InsecureConfiguration, match="at least 32 characters"):
        ExampleSettings(persistence="postgres", jwt_secret="short").check_secure()
    with pytest.raises(InsecureConfiguration) as caught:
        ExampleSettings(persistence="postgres", jwt_algorithm="RS256").check_secure()
    assert str(caught.value) == (
        "EXAMPLE_JWT_ALGORITHM=RS256 needs EXAMPLE_JWT_PUBLIC_KEY or EXAMPLE_JWT_JWKS_URL"
    )
    ExampleSettings(persistence="postgres", jwt_secret=SECRET).check_secure()
    ExampleSettings().check_secure()  # embedded: the development secret


@pytest.mark.parametrize(
    ("settings_class", "prefix"), [(GoalsSettings, "GOALS_"), (NotifierSettings, "NOTIFIER_")]
)
def test_each_service_reads_the_jwt_settings_under_its_own_prefix(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[JWTSettings], prefix: str
) -> None:
    other = "NOTIFIER_" if prefix == "GOALS_" else "GOALS_"
    monkeypatch.setenv(f"{other}JWT_SECRET", "the-other-service-s-secret-0123456789")
    monkeypatch.setenv(f"{prefix}JWT_SECRET", SECRET)
    monkeypatch.setenv(f"{prefix}JWT_ALGORITHM", "RS256")
    monkeypatch.setenv(f"{prefix}JWT_JWKS_URL", "https://id.example/jwks.json")
    monkeypatch.setenv(f"{prefix}JWT_PUBLIC_KEY", "PEM")
    settings = settings_class()
    assert settings.jwt_secret is not None and settings.jwt_secret.get_secret_value() == SECRET
    assert (settings.jwt_algorithm, settings.jwt_jwks_url, settings.jwt_public_key) == (
        "RS256",
        "https://id.example/jwks.json",
        "PEM",
    )
    monkeypatch.setenv(f"{prefix}PERSISTENCE", "postgres")
    monkeypatch.setenv(f"{prefix}JWT_SECRET", "short")
    monkeypatch.setenv(f"{prefix}JWT_ALGORITHM", "HS256")
    with pytest.raises(InsecureConfiguration) as caught:
        settings_class().check_secure()
    assert str(caught.value) == (
        f"{prefix}JWT_SECRET must be set to a real secret of at least 32 characters when "
        f"{prefix}PERSISTENCE is not the embedded 'sqlite' default"
    )
