"""Domain events to signed HTTP callbacks.

Emitting (:func:`emit`) is called by the domain services inside their DB transaction: it writes one
``WebhookDelivery`` row per interested subscription (an outbox, so a crash after commit loses nothing) and enqueues
the delivery job with ``transaction.on_commit`` (so nothing is ever sent for rolled-back data). With no active
subscription for the event it does nothing but read a briefly cached set of subscribed event names.

Delivery (:func:`delivery_attempt`): ``POST <url>`` with the JSON body ``{"id", "event", "created_at", "data"}`` and
the headers ``X-CSMS-Event``, ``X-CSMS-Timestamp`` (Unix seconds) and
``X-CSMS-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``. A 2xx answer is delivered; anything
else is retried with exponential backoff (``CSMS_WEBHOOK_BACKOFF_S`` * 2^(attempt-1), at most
``CSMS_WEBHOOK_BACKOFF_MAX_S``) up to ``CSMS_WEBHOOK_MAX_ATTEMPTS`` attempts, then the row is ``failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from csms import metrics

from .models import DeliveryState, WebhookDelivery, WebhookEvent, WebhookSubscription

logger = logging.getLogger(__name__)

EVENTS: tuple[str, ...] = tuple(WebhookEvent.values)
_CACHE_KEY = "webhooks:active-events"

Data = dict[str, Any] | Callable[[], dict[str, Any]]


# --- Subscriptions --------------------------------------------------------------------------------------------


def active_events() -> frozenset[str]:
    """Event names with at least one active subscription (cached ``CSMS_WEBHOOK_CACHE_S`` seconds per process)."""
    cached = cache.get(_CACHE_KEY)
    if cached is None:
        names: set[str] = set()
        for events in WebhookSubscription.objects.filter(active=True).values_list("events", flat=True):
            names.update(e for e in events if isinstance(e, str))
        cached = frozenset(names)
        cache.set(_CACHE_KEY, cached, settings.CSMS_WEBHOOK_CACHE_S)
    return cached


def subscriptions_changed(**kwargs: Any) -> None:
    """Forget the cached event set (this process at once, others within ``CSMS_WEBHOOK_CACHE_S``)."""
    cache.delete(_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(_CACHE_KEY))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# --- Emitting -------------------------------------------------------------------------------------------------


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def emit(event: str, data: Data) -> list[int]:
    """Record ``event`` for every active subscription wanting it; deliver after commit. ``data`` may be a callable,
    evaluated only when someone subscribed. Returns the delivery ids (empty when nobody listens)."""
    if event not in active_events():
        return []
    active = WebhookSubscription.objects.filter(active=True).only("pk", "events")
    subscriptions = [s for s in active if event in s.events]
    if not subscriptions:
        return []
    payload = _jsonable(data() if callable(data) else data)
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(subscription=s, event=event, payload=payload, next_attempt_at=now) for s in subscriptions
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: _enqueue(ids))
    return ids


def _enqueue(ids: list[int]) -> None:
    from .tasks import deliver

    for delivery_id in ids:
        try:
            deliver.delay(delivery_id)
        except Exception:  # broker down: the row stays pending and the periodic sweep sends it
            logger.exception("could not enqueue webhook delivery %s", delivery_id)


# --- Delivering -----------------------------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def delivery_body(delivery: WebhookDelivery) -> bytes:
    envelope = {
        "id": delivery.pk,
        "event": delivery.event,
        "created_at": delivery.created_at,
        "data": delivery.payload,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer, not a delivery


# --- Private addresses ----------------------------------------------------------------------------------------
# A receiver URL on a loopback, private, link-local, multicast or reserved address would let whoever manages
# webhooks make the CSMS send requests into its own network; refused unless CSMS_WEBHOOK_ALLOW_PRIVATE_URLS.


class PrivateAddressRefused(OSError):
    """The receiver's host is (or resolves to) an address webhooks may not reach."""


def _address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved


def _resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _checked_addresses(host: str, port: int) -> list[tuple[Any, ...]]:
    """Resolve ``host``; raise PrivateAddressRefused when any of its addresses is not public."""
    infos = _resolve(host, port)
    refused = sorted({str(info[4][0]) for info in infos if _address_refused(str(info[4][0]))})
    if refused:
        raise PrivateAddressRefused(
            f"{host} resolves to a non-public address ({', '.join(refused)}); refused "
            "(CSMS_WEBHOOK_ALLOW_PRIVATE_URLS=1 allows it)"
        )
    return infos


def url_refusal(url: str) -> str:
    """Why webhooks may not be sent to ``url`` ("" when they may): its host is, or resolves to, a non-public
    address. A name that does not resolve (yet) passes here; every delivery checks again (DNS may change)."""
    if settings.CSMS_WEBHOOK_ALLOW_PRIVATE_URLS:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        return "the URL has no host"
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is a loopback name; refused (CSMS_WEBHOOK_ALLOW_PRIVATE_URLS=1 allows it)"
    try:
        if _address_refused(host):  # a literal address: no lookup needed
            return f"{host} is not a public address; refused (CSMS_WEBHOOK_ALLOW_PRIVATE_URLS=1 allows it)"
        return ""
    except ValueError:
        pass  # a name
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        _checked_addresses(host, port)
    except PrivateAddressRefused as exc:
        return str(exc)
    except (OSError, ValueError):
        return ""
    return ""


# http.client's "no timeout given" sentinel, which create_connection receives (private in the socket module).
_NO_TIMEOUT_GIVEN: Any = socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


def _guarded_connection(
    address: tuple[str, int], timeout: Any = _NO_TIMEOUT_GIVEN, source_address: Any = None
) -> socket.socket:
    """socket.create_connection that connects only to the addresses it checked (no second lookup that DNS
    rebinding could answer differently)."""
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in _checked_addresses(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not _NO_TIMEOUT_GIVEN:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"{host} has no address")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection  # http.client's hook for opening the socket


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_GuardedHTTPSConnection, req, context=self._context)  # type: ignore[attr-defined]


_opener = urllib.request.build_opener(_NoRedirect)
_guarded_opener = urllib.request.build_opener(_NoRedirect, _GuardedHTTPHandler, _GuardedHTTPSHandler)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    opener = _opener if settings.CSMS_WEBHOOK_ALLOW_PRIVATE_URLS else _guarded_opener
    try:
        with opener.open(request, timeout=settings.CSMS_WEBHOOK_TIMEOUT_S) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, PrivateAddressRefused):
            return None, f"PrivateAddressRefused: {exc.reason}"[:1000]
        return None, f"{type(exc).__name__}: {exc}"[:1000]
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:1000]


def backoff_s(attempts: int) -> float:
    """Wait before attempt ``attempts + 1``."""
    delay = settings.CSMS_WEBHOOK_BACKOFF_S * (2 ** max(attempts - 1, 0))
    return float(min(delay, settings.CSMS_WEBHOOK_BACKOFF_MAX_S))


def delivery_attempt(*, delivery_id: int) -> float | None:
    """Attempt a pending delivery whose time has come. Returns the seconds until the next attempt after a failure
    (None when delivered, given up, not due or not pending)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("subscription")
            .filter(pk=delivery_id, state=DeliveryState.PENDING)
            .first()
        )
        now = timezone.now()
        if delivery is None or not delivery.subscription.active:
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            return None
        body = delivery_body(delivery)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "csms-webhooks/1",
            "X-CSMS-Event": delivery.event,
            "X-CSMS-Timestamp": timestamp,
            "X-CSMS-Signature": signature(delivery.subscription.secret, timestamp, body),
            "X-CSMS-Delivery": str(delivery.pk),
        }
        code, error = _post(delivery.subscription.url, body, headers)
        now = timezone.now()
        delivery.attempts += 1
        delivery.response_code = code
        delivery.last_attempt_at = now
        retry_in: float | None = None
        if code is not None and 200 <= code < 300:
            delivery.state = DeliveryState.DELIVERED
            delivery.delivered_at = now
            delivery.error = ""
            delivery.next_attempt_at = None
        else:
            delivery.error = error
            if delivery.attempts >= settings.CSMS_WEBHOOK_MAX_ATTEMPTS:
                delivery.state = DeliveryState.FAILED
                delivery.next_attempt_at = None
            else:
                retry_in = backoff_s(delivery.attempts)
                delivery.next_attempt_at = now + timedelta(seconds=retry_in)
        delivery.save()
        outcomes = {DeliveryState.DELIVERED.value: "delivered", DeliveryState.FAILED.value: "failed"}
        outcome = outcomes.get(str(delivery.state), "retry")
        metrics.WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc()
    if retry_in is not None:
        logger.info("webhook delivery %s failed (%s); retry in %s s", delivery_id, error, retry_in)
    return retry_in


def deliveries_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now, subscription__active=True)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
