"""Forwarded headers (address, scheme, client certificate) are believed only from CSMS_TRUSTED_PROXIES: in process,
the ASGI application with the middleware of security/transport.py, and the handshake's enforcement."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from security import limiter as limiter_module
from security.transport import Transport, TrustedProxyMiddleware, forwarded_client, parse_networks, transport_of
from stations.models import ChargingStation, Connection
from tests.ocpp_client import AsgiStation, basic_auth, run
from tests.security import tlskit

PASSWORD = "correct-horse-battery-42"


def scope(peer: str, headers: dict[str, str], kind: str = "websocket", scheme: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "type": kind,
        "client": [peer, 4242],
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    if scheme:
        found["scheme"] = scheme
    return found


def certificate_pem(cn: str) -> str:
    ca = tlskit.make_ca()
    return tlskit.issue(ca, cn).cert.public_bytes(tlskit.serialization.Encoding.PEM).decode()


FORWARDED = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Forwarded-Proto": "https", "Host": "csms"}


def test_headers_from_an_untrusted_peer_are_dropped(settings: Any) -> None:
    settings.CSMS_TRUSTED_PROXIES = ["10.0.0.0/8"]
    pem = quote(certificate_pem("CS-1"))
    rewritten = TrustedProxyMiddleware.rewrite(
        scope(
            "192.0.2.7",
            FORWARDED | {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-Cert": pem},
            kind="http",
            scheme="http",
        )
    )
    assert rewritten["client"] == ["192.0.2.7", 4242]
    assert rewritten["scheme"] == "http"
    assert rewritten["headers"] == [(b"host", b"csms")]  # Django's SECURE_PROXY_SSL_HEADER sees no X-Forwarded-Proto
    assert transport_of(rewritten) == Transport(tls=False)


def test_headers_from_a_trusted_proxy_give_address_scheme_and_certificate(settings: Any) -> None:
    settings.CSMS_TRUSTED_PROXIES = ["10.0.0.0/8"]
    pem = quote(certificate_pem("CS-1"))
    rewritten = TrustedProxyMiddleware.rewrite(
        scope("10.1.2.3", FORWARDED | {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-Cert": pem})
    )
    assert rewritten["client"] == ["203.0.113.9", 0]  # the rightmost untrusted entry: the proxy's own view
    assert rewritten["scheme"] == "wss"
    assert transport_of(rewritten) == Transport(tls=True, via_proxy=True, client_verify="SUCCESS", client_cn="CS-1")
    failed = TrustedProxyMiddleware.rewrite(
        scope(
            "10.1.2.3", FORWARDED | {"X-SSL-Client-Verify": "FAILED:certificate has expired", "X-SSL-Client-Cert": pem}
        )
    )
    assert transport_of(failed).client_cn is None and not transport_of(failed).client_verified


def test_no_trusted_proxies_by_default_and_forwarded_chains() -> None:
    from django.conf import settings

    assert settings.CSMS_TRUSTED_PROXIES == []
    assert transport_of(TrustedProxyMiddleware.rewrite(scope("127.0.0.1", FORWARDED))) == Transport()
    networks = parse_networks(["10.0.0.0/8", "::1"])
    assert forwarded_client("1.1.1.1, 10.0.0.2, 10.0.0.3", networks) == "1.1.1.1"
    assert forwarded_client("not-an-address", networks) is None


def register(identity: str, profile: int, password: str | None = PASSWORD) -> None:
    station = ChargingStation(identity=identity, security_profile=profile)
    if password:
        station.set_password(password)
    station.save()


async def attempt(asgi_server: Any, identity: str, headers: dict[str, str]) -> bool:
    try:
        async with AsgiStation.connect(asgi_server.application, identity, headers=headers) as st:
            return (await st.boot())[0] == 3
    except ConnectionRefusedError:
        return False


def test_a_forged_client_certificate_header_from_a_non_proxy_address_is_ignored(
    asgi_server: Any, settings: Any
) -> None:
    register("CS-3", 3, password=None)
    forged = {
        "X-Forwarded-Proto": "wss",
        "X-SSL-Client-Verify": "SUCCESS",
        "X-SSL-Client-Cert": quote(certificate_pem("CS-3")),
    }
    assert run(attempt(asgi_server, "CS-3", forged)) is False
    assert Connection.objects.get().reason == "plain connection: security profile 3 requires TLS (wss://)"
    settings.CSMS_TRUSTED_PROXIES = ["127.0.0.1/32"]  # now the peer (AsgiStation.CLIENT) is the proxy
    assert run(attempt(asgi_server, "CS-3", forged)) is True


def test_per_address_limits_use_the_forwarded_address_behind_a_trusted_proxy(asgi_server: Any, settings: Any) -> None:
    settings.CSMS_TRUSTED_PROXIES = ["127.0.0.1/32"]
    settings.CSMS_AUTH_MAX_FAILURES = 2
    limiter_module._limiter = None
    try:
        register("CS-1", 1)
        attacker = {"X-Forwarded-For": "203.0.113.66"} | basic_auth("CS-1", "wrong-password-000000")
        assert run(attempt(asgi_server, "CS-1", attacker)) is False
        assert run(attempt(asgi_server, "CS-1", attacker)) is False
        assert limiter_module.limiter().address_blocked("203.0.113.66")
        assert not limiter_module.limiter().address_blocked("127.0.0.1")  # the proxy itself is not blocked
        station = {"X-Forwarded-For": "198.51.100.5"} | basic_auth("CS-1", PASSWORD)
        assert run(attempt(asgi_server, "CS-1", station)) is True
        accepted = Connection.objects.get(outcome="accepted")
        assert accepted.remote_addr == "198.51.100.5:0"
    finally:
        limiter_module._limiter = None


def test_upgrade_from_profile_1_to_2_accepts_both_until_the_first_tls_connection(
    asgi_server: Any, settings: Any
) -> None:
    settings.CSMS_TRUSTED_PROXIES = ["127.0.0.1/32"]
    register("CS-UP", 1)
    ChargingStation.objects.filter(identity="CS-UP").update(pending_security_profile=2)
    plain = {"X-Forwarded-Proto": "http"} | basic_auth("CS-UP", PASSWORD)
    tls = {"X-Forwarded-Proto": "https"} | basic_auth("CS-UP", PASSWORD)
    assert run(attempt(asgi_server, "CS-UP", plain)) is True
    assert ChargingStation.objects.values_list("security_profile", "pending_security_profile").get() == (1, 2)
    assert run(attempt(asgi_server, "CS-UP", tls)) is True
    assert ChargingStation.objects.values_list("security_profile", "pending_security_profile").get() == (2, None)
    assert run(attempt(asgi_server, "CS-UP", plain)) is False
    assert Connection.objects.filter(outcome="refused").get().reason == (
        "plain connection: security profile 2 requires TLS (wss://)"
    )
