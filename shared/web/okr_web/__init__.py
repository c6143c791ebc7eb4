"""What every HTTP service of the OKR suite answers the same way (DESIGN "Auth", "Errors").

- ``okr_web.principal``: the authenticated caller (no dependencies: domain code may use it).
- ``okr_web.auth``: JWT bearer verification (HS256 secret, RS256 PEM key or JWKS URL).
- ``okr_web.settings``: the JWT settings each service inherits under its own env prefix.
- ``okr_web.problems``: RFC 9457 problem+json responses and the handlers every service shares.

Service-specific errors (a service's domain errors and their statuses) stay in the service."""
