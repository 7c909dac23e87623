"""Webhook URLs on non-public addresses are refused when saved and again at delivery (DNS may change).

Nothing here connects anywhere but loopback: non-public addresses appear only as literals that validation never
connects to, or as mocked DNS answers that the guard refuses before opening a socket.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.utils import timezone

from tests.api.helpers import call
from webhooks import services
from webhooks.models import DeliveryState, WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def strict(settings: Any) -> None:
    settings.CSMS_WEBHOOK_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fail the test if anything tries to connect outside loopback."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if not str(address[0]).startswith(("127.", "::1")):
            attempts.append(address)
            raise AssertionError(f"test tried to connect to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(services, "_resolve", resolve)


NON_PUBLIC = [
    "http://127.0.0.1:8080/hook",
    "http://10.0.0.1/hook",
    "https://192.168.1.20/hook",
    "http://172.16.5.5/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://224.0.0.1/hook",
    "http://0.0.0.0/hook",
    "http://localhost:9000/hook",
    "http://api.localhost/hook",
]


def test_non_public_urls_are_refused_with_a_clear_message(strict, no_connect, tokens):
    for url in NON_PUBLIC:
        code, body = call(tokens["admin"], "POST", "/api/v1/webhooks/", {"url": url, "events": ["station.connected"]})
        assert code == 400, (url, body)
        assert "CSMS_WEBHOOK_ALLOW_PRIVATE_URLS=1" in body["url"][0]
    assert not WebhookSubscription.objects.exists() and not no_connect


def test_names_resolving_to_private_addresses_are_refused(strict, no_connect, tokens, monkeypatch):
    fake_dns(monkeypatch, {"intranet.example": ["10.20.30.40"], "hooks.example": ["93.184.216.34"]})
    body = {"url": "https://intranet.example/hook", "events": ["station.connected"]}
    code, errors = call(tokens["admin"], "POST", "/api/v1/webhooks/", body)
    assert code == 400 and "10.20.30.40" in errors["url"][0]
    body["url"] = "https://hooks.example/hook"
    assert call(tokens["admin"], "POST", "/api/v1/webhooks/", body)[0] == 201
    # A name that does not resolve yet is accepted: each delivery checks again.
    body["url"] = "https://not-yet.example/hook"
    assert call(tokens["admin"], "POST", "/api/v1/webhooks/", body)[0] == 201
    # PATCH is checked too.
    sub = WebhookSubscription.objects.get(url="https://hooks.example/hook")
    code, errors = call(tokens["admin"], "PATCH", f"/api/v1/webhooks/{sub.pk}/", {"url": "http://10.0.0.1/"})
    assert code == 400 and "url" in errors
    assert not no_connect


def test_delivery_checks_the_address_again(strict, no_connect, monkeypatch):
    """Saved while public, the name now resolves to a private address (DNS rebinding): the attempt is refused
    before any socket is opened and its error recorded; it is retried like any failed attempt."""
    sub = WebhookSubscription.objects.create(
        url="http://hooks.example/hook", secret="s" * 32, events=["station.connected"]
    )
    delivery = WebhookDelivery.objects.create(
        subscription=sub, event="station.connected", payload={}, next_attempt_at=timezone.now()
    )
    fake_dns(monkeypatch, {"hooks.example": ["93.184.216.34", "10.0.0.1"]})
    retry_in = services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert retry_in is not None and delivery.state == DeliveryState.PENDING and delivery.attempts == 1
    assert delivery.response_code is None
    assert "non-public address (10.0.0.1)" in delivery.error and "PrivateAddressRefused" in delivery.error
    assert not no_connect


def test_loopback_receiver_is_reached_when_allowed(settings, no_connect):
    """With CSMS_WEBHOOK_ALLOW_PRIVATE_URLS=1 (the test suite's setting) a local receiver gets its POST."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(self.headers["X-CSMS-Event"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        sub = WebhookSubscription.objects.create(url=url, secret="s" * 32, events=["station.connected"])
        delivery = WebhookDelivery.objects.create(
            subscription=sub, event="station.connected", payload={}, next_attempt_at=timezone.now()
        )
        settings.CSMS_WEBHOOK_ALLOW_PRIVATE_URLS = False
        services.delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.state == DeliveryState.PENDING and "127.0.0.1" in delivery.error and not got
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        settings.CSMS_WEBHOOK_ALLOW_PRIVATE_URLS = True
        services.delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.state == DeliveryState.DELIVERED and got == ["station.connected"]
    finally:
        server.shutdown()
        server.server_close()
