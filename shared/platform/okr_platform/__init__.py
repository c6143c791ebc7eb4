"""The service kit every context of the OKR suite is built with (docs/service-kit.md).

Serving and the web:
- ``serving``: the composition protocol (`BoundedContext`) and `serve_contexts` (/health,
  /ready, problem+json, tracing), used by each service's own process and by the suite's root.
- ``auth`` and ``principal``: JWT bearer verification and the authenticated caller.
- ``problems`` and ``openapi``: RFC 9457 problem+json handlers, and the `Problem` schema with
  `problem_responses(*statuses)` every route declares its errors with.
- ``settings``: `JWTSettings` and `ServiceSettings` (storage, event-store environment), each
  service's settings inherit them under its own prefix.

Domain rules every context shares (no framework in them; domain code may import them):
- ``errors``: the domain error classes and their HTTP statuses.
- ``access`` and ``directory``: the one access policy over an organisation's directory.
- ``progress``: KR and objective progress, pace and "behind".
- ``clock``: the clock the contexts read "now" from (a fake one in tests), and `utc_text`.

Application plumbing:
- ``writes``: the optimistic write loop (lock stripes, retries, If-Match)."""
