"""The SSRF guard: a member must not make the notifier call internal addresses (the cloud
metadata service, an admin port on 127.0.0.1, a cluster service on 10.x).

`check_target` is run when a webhook is registered: https only, no user name or password in the
URL, and every address the host resolves to must be public (`forbidden_kind`). At delivery,
`GuardedBackend` resolves the host again, checks every address and connects to a checked one,
in the connection itself (no second lookup an attacker's DNS could answer differently: "DNS
rebinding"); a refused delivery fails at once, with the reason as its last error.
``NOTIFIER_WEBHOOK_ALLOW_PRIVATE_TARGETS`` turns the address checks off (and allows http://)
for tests and the local stack, whose receivers listen on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

if TYPE_CHECKING:
    from ..settings import NotifierSettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: RFC 6052's well-known NAT64 prefix: an IPv6-only network's DNS64 maps every IPv4 address
#: into it, so what counts is the embedded IPv4 address.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
DEFAULT_PORTS = {"https": 443, "http": 80}
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's defaults


class UnsafeTarget(Exception):
    """A webhook URL the notifier refuses to call; ``code`` is the problem code at registration
    (``invalid_input`` for the URL's form, ``webhook_target_forbidden`` for its addresses)."""

    def __init__(self, reason: str, code: str = "invalid_input") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def resolve_host(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (the system resolver, as a plain connection would
    use), without duplicates, in the resolver's order. Raises OSError when it does not resolve.
    The one place the guard resolves names: tests replace it to fake DNS."""
    addresses: list[Address] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def forbidden_kind(address: Address) -> str | None:
    """Why the notifier must not connect to ``address`` ("loopback", "private", "IPv4-mapped
    link-local" ...), or None when it is a public (globally routable unicast) address."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that IPv4 address: judge that one.
        nat64 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None
        for label, embedded in (
            ("IPv4-mapped", address.ipv4_mapped),
            ("6to4", address.sixtofour),
            ("NAT64", nat64),
        ):
            if embedded is not None:
                kind = forbidden_kind(embedded)
                return f"{label} {kind}" if kind else None
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("private", address.is_private),
        ("non-global", not address.is_global),  # e.g. 100.64.0.0/10, carrier-grade NAT
    )
    return next((kind for kind, matches in checks if matches), None)


def check_addresses(host: str, addresses: Iterable[Address]) -> None:
    """Raise UnsafeTarget unless every address is public (one internal address is enough to
    refuse: the connection might pick it)."""
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    for address in addresses:
        kind = forbidden_kind(address)
        if kind is None:
            continue
        where = "is" if literal == address else f"resolves to {address},"
        raise UnsafeTarget(
            f"the URL's host {host} {where} not a public address ({kind})",
            code="webhook_target_forbidden",
        )


def check_url_form(url: str, *, allow_private_targets: bool) -> httpx.URL:
    """The guard's checks of the URL itself: https (http too when private targets are
    allowed), no user name or password. Returns the URL as httpx parses it (as it sends it)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise UnsafeTarget(f"the URL is malformed: {error}") from None
    if parsed.userinfo:
        raise UnsafeTarget("the URL must not contain a user name or password")
    allowed = ("https", "http") if allow_private_targets else ("https",)
    if parsed.scheme not in allowed:
        raise UnsafeTarget(
            "the URL must start with https://"
            if not allow_private_targets
            else "the URL must start with http:// or https://"
        )
    if not parsed.raw_host:
        raise UnsafeTarget("the URL must name a host")
    return parsed


def check_target(url: str, *, allow_private_targets: bool) -> None:
    """Registration's check (webhook_api): the URL's form, then, unless private targets are
    allowed, that its host resolves and only to public addresses. Raises UnsafeTarget."""
    parsed = check_url_form(url, allow_private_targets=allow_private_targets)
    if allow_private_targets:
        return
    host = parsed.raw_host.decode("ascii")  # IDNA-encoded, as the connection resolves it
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    try:
        addresses = resolve_host(host, port)
    except (OSError, UnicodeError) as error:
        raise UnsafeTarget(f"the URL's host {parsed.host} does not resolve ({error})") from None
    if not addresses:
        raise UnsafeTarget(f"the URL's host {parsed.host} does not resolve")
    check_addresses(parsed.host, addresses)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend with the guard in ``connect_tcp``: it resolves the host
    (`resolve_host`), refuses (UnsafeTarget) if any address is not public, and connects to a
    checked address. httpcore still knows the connection by the URL's host, so the Host header,
    TLS SNI and certificate checks, and connection reuse are those of the name, unchanged.
    With private targets allowed it connects as httpcore does."""

    def __init__(self, *, allow_private_targets: bool = False) -> None:
        self.allow_private_targets = allow_private_targets

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self.allow_private_targets:
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = resolve_host(host, port)
        except (OSError, UnicodeError) as error:  # DNS may be back on the next attempt
            raise httpcore.ConnectError(f"the host {host} does not resolve ({error})") from None
        if not addresses:
            raise httpcore.ConnectError(f"the host {host} does not resolve")
        check_addresses(host, addresses)
        last_error: httpcore.ConnectError | None = None
        for address in addresses:  # each in turn, as socket.create_connection would
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as refused:
                last_error = refused
        assert last_error is not None
        raise last_error


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a connection pool whose network backend is a `GuardedBackend`.

    httpx 0.28.1 has no parameter for a network backend (encode/httpx#3749 proposes one), so
    this replaces the transport's pool, ``_pool``, with one built the same way plus the backend:
    the attribute `HTTPTransport.handle_request` sends through. No proxy: the guard needs the
    direct connection (HTTP(S)_PROXY are not used for webhooks)."""

    def __init__(self, *, allow_private_targets: bool = False) -> None:
        super().__init__(limits=LIMITS)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("httpx.HTTPTransport changed: the webhook guard cannot attach")
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # verified, SSL_CERT_FILE/DIR honoured
            max_connections=LIMITS.max_connections,
            max_keepalive_connections=LIMITS.max_keepalive_connections,
            keepalive_expiry=LIMITS.keepalive_expiry,
            network_backend=GuardedBackend(allow_private_targets=allow_private_targets),
        )


def guarded_client(settings: NotifierSettings) -> httpx.Client:
    """The delivery worker's HTTP client: no redirects (a 3xx is an answer, not a hop to an
    unchecked address), no proxies or .netrc from the environment, the guard in every
    connection."""
    return httpx.Client(
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        transport=GuardedTransport(allow_private_targets=settings.webhook_allow_private_targets),
    )
