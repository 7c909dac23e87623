"""Transport security: what a connection came over (plain, TLS, TLS with a verified client certificate), which
proxies are trusted to say so, and whether that is strong enough for a station's security profile.

Forwarded headers are trusted only from ``CSMS_TRUSTED_PROXIES`` (addresses or CIDRs; empty: none). From a trusted
proxy (the TLS terminator, e.g. nginx of ``deploy/nginx.conf``), ``TrustedProxyMiddleware`` takes

- ``X-Forwarded-For``: the client's address (the rightmost entry that is not itself a trusted proxy),
- ``X-Forwarded-Proto``: ``https``/``wss`` means the client's connection to the proxy was TLS,
- ``X-SSL-Client-Verify`` (nginx ``$ssl_client_verify``: ``SUCCESS``, ``FAILED:reason`` or ``NONE``) and
  ``X-SSL-Client-Cert`` (nginx ``$ssl_client_escaped_cert``: the verified certificate, PEM, URL-escaped): the
  station's client certificate (security profile 3), its CN read from the certificate itself.

From any other peer these headers are removed before Django or the consumers see them: a client cannot claim TLS,
another address or a certificate. daphne's own ``--proxy-headers`` trusts every peer and is not used.

daphne serving TLS itself (``make run TLS=1``; an ``ssl:`` endpoint) puts no scheme into a WebSocket scope:
``daphne_tls_scheme_install`` makes it ``wss`` when the socket is TLS, so a station connected straight to daphne's
TLS port counts as TLS (server authentication only: daphne cannot verify client certificates for us).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from django.conf import settings

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

FORWARDED_FOR = b"x-forwarded-for"
FORWARDED_PROTO = b"x-forwarded-proto"
CLIENT_VERIFY = b"x-ssl-client-verify"
CLIENT_CERT = b"x-ssl-client-cert"
PROXY_HEADERS = frozenset({FORWARDED_FOR, FORWARDED_PROTO, CLIENT_VERIFY, CLIENT_CERT, b"x-forwarded-port"})
SCOPE_KEY = "csms_transport"
TLS_SCHEMES = frozenset({"https", "wss"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Transport:
    """What a connection came over, as far as the CSMS can trust it."""

    tls: bool = False
    via_proxy: bool = False
    client_verify: str = ""  # the terminator's verification result ("SUCCESS", "FAILED:...", "NONE"), if it said
    client_cn: str | None = None  # the CN of a verified client certificate

    @property
    def client_verified(self) -> bool:
        return self.client_verify == "SUCCESS" and self.client_cn is not None


PLAIN = Transport()


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` -> networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.CSMS_TRUSTED_PROXIES))


def is_trusted_proxy(host: str, networks: tuple[Network, ...] | None = None) -> bool:
    networks = trusted_networks() if networks is None else networks
    if not networks or not host:
        return False
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def forwarded_client(header: str, networks: tuple[Network, ...]) -> str | None:
    """The client address of an ``X-Forwarded-For`` chain: the rightmost entry that is not a trusted proxy (entries
    to its left were written by the client itself and prove nothing)."""
    entries = [e.strip() for e in header.split(",") if e.strip()]
    for entry in reversed(entries):
        if not is_trusted_proxy(entry, networks):
            try:
                ipaddress.ip_address(entry.strip("[]"))
            except ValueError:
                return None  # garbage: keep the proxy's own address
            return entry.strip("[]")
    return entries[0].strip("[]") if entries else None


def certificate_cn(pem: str) -> str | None:
    """The subject CN of a PEM certificate (URL-escaped as nginx's ``$ssl_client_escaped_cert`` or not)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    text = unquote(pem) if "%" in pem else pem
    try:
        certificate = x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        return None
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _headers(scope: Scope) -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for key, value in scope.get("headers", []):
        name = key.lower()
        if name in PROXY_HEADERS:
            text = value.decode("latin-1")
            # Repeated X-Forwarded-For headers form one chain; of the others the last counts.
            found[name] = f"{found[name]},{text}" if name == FORWARDED_FOR and name in found else text
    return found


def transport_of(scope: Scope) -> Transport:
    """The transport ``TrustedProxyMiddleware`` put in the scope (plain when it did not run)."""
    found = scope.get(SCOPE_KEY)
    return found if isinstance(found, Transport) else PLAIN


class TrustedProxyMiddleware:
    """ASGI middleware: forwarded address, scheme and client certificate from trusted proxies only (module doc)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            scope = self.rewrite(scope)
        await self.app(scope, receive, send)

    @staticmethod
    def rewrite(scope: Scope) -> Scope:
        scope = dict(scope)
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        networks = trusted_networks()
        direct_tls = scope.get("scheme") in TLS_SCHEMES
        found = _headers(scope)
        # Django (SECURE_PROXY_SSL_HEADER, REMOTE_ADDR) and the consumers see forwarded headers only from a trusted
        # proxy: from anyone else they are dropped here.
        if found and not is_trusted_proxy(peer, networks):
            scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in PROXY_HEADERS]
            scope[SCOPE_KEY] = Transport(tls=direct_tls)
            return scope
        if not found:
            scope[SCOPE_KEY] = Transport(tls=direct_tls)
            return scope
        address = forwarded_client(found[FORWARDED_FOR], networks) if FORWARDED_FOR in found else None
        if address:
            scope["client"] = [address, 0]
        proto = found.get(FORWARDED_PROTO, "").split(",")[-1].strip().lower()
        tls = proto in TLS_SCHEMES if proto else direct_tls
        if proto:
            http = scope.get("type") == "http"
            scope["scheme"] = ("https" if tls else "http") if http else ("wss" if tls else "ws")
        verify = found.get(CLIENT_VERIFY, "").strip()
        cn = None
        if verify == "SUCCESS" and found.get(CLIENT_CERT):
            cn = certificate_cn(found[CLIENT_CERT])
        scope[SCOPE_KEY] = Transport(tls=tls, via_proxy=True, client_verify=verify, client_cn=cn)
        return scope


# --- Enforcement: is the connection strong enough for the station's profile? -----------------------------------


def transport_refusal(*, profiles: Iterable[int], transport: Transport, identity: str) -> str:
    """Why the connection is weaker than every profile the station may use now (its profile and, during an upgrade,
    the pending one), or "" when one of them is met by the transport. The password itself is checked elsewhere."""
    wanted = set(profiles)
    if min(wanted) <= 1:
        return ""
    if not transport.tls:
        return f"plain connection: security profile {min(wanted)} requires TLS (wss://)"
    if 2 in wanted:
        return ""
    if not transport.via_proxy or not transport.client_verify or transport.client_verify == "NONE":
        return "no client certificate: security profile 3 requires one (verified by the TLS terminator)"
    if not transport.client_verified:
        return f"client certificate not verified: {transport.client_verify}"[:200]
    if transport.client_cn != identity:
        return f"client certificate CN {transport.client_cn!r} does not match the identity"[:200]
    return ""


def certificate_matches(*, transport: Transport, identity: str) -> bool:
    """A verified client certificate whose CN is the identity: a profile-3 connection."""
    return transport.tls and transport.client_verified and transport.client_cn == identity


def achieved_profile(*, transport: Transport, identity: str, password_ok: bool) -> int:
    """The security profile this connection actually meets (3, 2, 1 or 0)."""
    if certificate_matches(transport=transport, identity=identity):
        return 3
    if password_ok:
        return 2 if transport.tls else 1
    return 0


# --- daphne's own TLS ------------------------------------------------------------------------------------------


def daphne_tls_scheme_install() -> None:
    """Put ``scheme: wss`` into the WebSocket scopes of TLS sockets served by daphne itself (daphne 4 leaves the
    scheme out of WebSocket scopes; HTTP scopes already say ``https``)."""
    try:
        from daphne.server import Server
        from twisted.internet.interfaces import ISSLTransport
    except ImportError:  # not running under daphne
        return
    if getattr(Server.create_application, "_csms_tls_scheme", False):
        return
    original = Server.create_application

    def create_application(self: Any, protocol: Any, scope: dict[str, Any]) -> Any:
        if scope.get("type") == "websocket" and "scheme" not in scope:
            transport = getattr(protocol, "transport", None)
            secure = transport is not None and ISSLTransport.providedBy(transport)
            scope = {**scope, "scheme": "wss" if secure else "ws"}
        return original(self, protocol, scope)

    create_application._csms_tls_scheme = True  # type: ignore[attr-defined]
    Server.create_application = create_application
