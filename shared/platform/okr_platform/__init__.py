"""The service kit every context of the OKR suite is built with (docs/architecture.md).

- ``okr_platform.serving``: the composition protocol and `serve_contexts` (/health, /ready,
  problem+json, tracing), used by each service's own process and by the suite's root.
- ``okr_platform.principal``: the authenticated caller (no dependencies: domain code may use it).
- ``okr_platform.auth``: JWT bearer verification (HS256 secret, RS256 PEM key or JWKS URL).
- ``okr_platform.settings``: the JWT settings each service inherits under its own env prefix.
- ``okr_platform.errors``: the domain error classes and their HTTP statuses (no framework).
- ``okr_platform.problems``: RFC 9457 problem+json responses and the handlers every service shares.
- ``okr_platform.openapi``: the Problem schema and `problem_responses`, how a route declares
  its error statuses in OpenAPI.
- ``okr_platform.clock``: the clock the contexts read "now" from (a fake one in tests)."""
