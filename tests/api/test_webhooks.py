"""Webhooks: admin-only CRUD, signed deliveries checked by a real HTTP receiver, retries, nothing for rollbacks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from csms import celery_app
from csms.ocpp.router import CallContext
from stations.commands import command_finish
from stations.connections import connection_close, connection_open
from stations.handlers import status_notification
from stations.models import Command
from stations.services import station_register
from tests.api.helpers import call
from tests.transactions.factories import tx_event
from transactions.services import transaction_event_apply
from webhooks import services, tasks
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """A webhook receiver on 127.0.0.1 that checks every signature with the shared secret."""

    def __init__(self) -> None:
        self.secret = ""
        self.codes: list[int] = []  # answers to give, in order; then 200
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers["X-CSMS-Timestamp"]
                expected = hmac.new(receiver.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
                valid = hmac.compare_digest(self.headers["X-CSMS-Signature"], "sha256=" + expected.hexdigest())
                code = receiver.codes.pop(0) if receiver.codes else 200
                receiver.received.append(
                    {
                        "event": self.headers["X-CSMS-Event"],
                        "valid": valid,
                        "body": json.loads(body),
                        "code": code,
                    }
                )
                self.send_response(code if valid else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def eager(settings: Any) -> Iterator[None]:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def subscribe(tokens: dict[str, str], receiver: Receiver, events: list[str]) -> dict[str, Any]:
    code, body = call(tokens["admin"], "POST", "/api/v1/webhooks/", {"url": receiver.url, "events": events})
    assert code == 201, body
    receiver.secret = body["secret"]
    return body


def test_crud_is_admin_only_and_secret_shown_once(tokens, receiver):
    body = {"url": receiver.url, "events": ["transaction.ended"]}
    assert call(None, "GET", "/api/v1/webhooks/")[0] == 401
    for role in ("none", "billing", "operator"):
        assert call(tokens[role], "GET", "/api/v1/webhooks/")[0] == 403
        assert call(tokens[role], "POST", "/api/v1/webhooks/", body)[0] == 403
    code, created = call(tokens["admin"], "POST", "/api/v1/webhooks/", body)
    assert code == 201 and len(created["secret"]) >= 32
    assert created["events"] == ["transaction.ended"] and created["active"] is True
    code, listed = call(tokens["admin"], "GET", "/api/v1/webhooks/")
    assert code == 200 and listed["count"] == 1 and "secret" not in listed["results"][0]
    path = f"/api/v1/webhooks/{created['id']}/"
    code, patched = call(tokens["admin"], "PATCH", path, {"active": False, "secret": "another-secret-1234"})
    assert code == 200 and patched["active"] is False and "secret" not in patched
    code, errors = call(tokens["admin"], "POST", "/api/v1/webhooks/", {"url": "ftp://x", "events": ["nope"]})
    assert code == 400 and set(errors) == {"url", "events"}
    assert call(tokens["admin"], "POST", "/api/v1/webhooks/", {"url": receiver.url, "events": []})[0] == 400
    assert call(tokens["admin"], "GET", f"{path}deliveries/")[1]["count"] == 0
    assert call(tokens["admin"], "DELETE", path) == (204, None)
    assert call(tokens["admin"], "GET", path)[0] == 404


def test_transaction_events_are_delivered_signed(tokens, receiver, eager):
    station, _ = station_register(identity="CS-W")
    sub = subscribe(tokens, receiver, ["transaction.started", "transaction.ended"])
    transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-02-01T08:00:00Z", "T-1"))
    transaction_event_apply(station_id=station.pk, event=tx_event("Updated", 1, "2026-02-01T08:10:00Z", "T-1"))
    transaction_event_apply(
        station_id=station.pk,
        event=tx_event("Ended", 2, "2026-02-01T09:00:00Z", "T-1", info={"stoppedReason": "Remote"}),
    )
    # a retried event (same seqNo) sends nothing again
    transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-02-01T08:00:00Z", "T-1"))
    assert [(r["event"], r["valid"]) for r in receiver.received] == [
        ("transaction.started", True),
        ("transaction.ended", True),
    ]
    ended = receiver.received[1]["body"]
    assert ended["event"] == "transaction.ended"
    assert {k: ended["data"][k] for k in ("station", "transaction_id", "started_at", "ended_at", "is_active")} == {
        "station": "CS-W",
        "transaction_id": "T-1",
        "started_at": "2026-02-01T08:00:00Z",
        "ended_at": "2026-02-01T09:00:00Z",
        "is_active": False,
    }
    assert ended["data"]["stopped_reason"] == "Remote"
    code, log = call(tokens["admin"], "GET", f"/api/v1/webhooks/{sub['id']}/deliveries/?state=delivered")
    assert code == 200 and log["count"] == 2
    assert {(d["event"], d["attempts"], d["response_code"]) for d in log["results"]} == {
        ("transaction.started", 1, 200),
        ("transaction.ended", 1, 200),
    }


def test_wrong_secret_is_rejected_by_the_receiver(tokens, receiver, eager):
    station, _ = station_register(identity="CS-W")
    subscribe(tokens, receiver, ["transaction.started"])
    receiver.secret = "not-the-secret"
    transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-02-01T08:00:00Z", "T-1"))
    assert [r["valid"] for r in receiver.received] == [False]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.response_code, delivery.attempts) == ("pending", 401, 1)


def test_retry_after_a_receiver_failure(tokens, receiver, eager, settings):
    settings.CSMS_WEBHOOK_BACKOFF_S = 0  # eager mode: the retry task runs at once
    station, _ = station_register(identity="CS-W")
    subscribe(tokens, receiver, ["transaction.started"])
    receiver.codes = [500]
    transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-02-01T08:00:00Z", "T-1"))
    assert [(r["code"], r["valid"]) for r in receiver.received] == [(500, True), (200, True)]
    assert receiver.received[0]["body"] == receiver.received[1]["body"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.response_code) == ("delivered", 2, 200)
    assert delivery.delivered_at is not None and delivery.error == ""


def test_receiver_down_keeps_the_event_for_the_sweep(tokens, receiver, eager):
    station, _ = station_register(identity="CS-W")
    subscribe(tokens, receiver, ["transaction.started"])
    receiver.codes = [503]
    transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-02-01T08:00:00Z", "T-1"))
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.response_code, delivery.error) == (
        "pending",
        1,
        503,
        "HTTP 503",
    )
    # exponential backoff: CSMS_WEBHOOK_BACKOFF_S (30) after the first failure
    assert delivery.next_attempt_at is not None and delivery.last_attempt_at is not None
    assert timedelta(seconds=29) < delivery.next_attempt_at - delivery.last_attempt_at <= timedelta(seconds=30)
    assert tasks.deliver_due() == 0  # not due yet
    assert services.backoff_s(1) == 30 and services.backoff_s(3) == 120 and services.backoff_s(20) == 3600
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert tasks.deliver_due() == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.response_code) == ("delivered", 2, 200)
    assert len(receiver.received) == 2


def test_unreachable_receiver_records_the_error(tokens, receiver, eager, settings):
    settings.CSMS_WEBHOOK_MAX_ATTEMPTS = 2
    settings.CSMS_WEBHOOK_BACKOFF_S = 0
    station, _ = station_register(identity="CS-W")
    subscribe(tokens, receiver, ["transaction.started"])
    receiver.stop()
    transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-02-01T08:00:00Z", "T-1"))
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.response_code) == ("failed", 2, None)
    assert "Connection refused" in delivery.error or "URLError" in delivery.error


def test_nothing_sent_for_a_rolled_back_transaction(tokens, receiver, eager):
    station, _ = station_register(identity="CS-W")
    subscribe(tokens, receiver, ["transaction.started"])
    with pytest.raises(RuntimeError), transaction.atomic():
        transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-02-01T08:00:00Z", "T-1"))
        assert WebhookDelivery.objects.count() == 1  # written with the data...
        raise RuntimeError("the CALL failed")
    assert WebhookDelivery.objects.count() == 0  # ...and gone with it
    assert receiver.received == []
    transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-02-01T08:00:00Z", "T-1"))
    assert [r["event"] for r in receiver.received] == ["transaction.started"]


def test_no_subscription_no_rows_no_queries(tokens, eager):
    station, _ = station_register(identity="CS-W")
    transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-02-01T08:00:00Z", "T-1"))
    assert WebhookDelivery.objects.count() == 0
    with CaptureQueriesContext(connection) as queries:
        assert services.emit("transaction.updated", lambda: pytest.fail("data built with nobody listening")) == []
    assert len(queries) == 0  # the subscribed-event set is cached


def test_station_and_command_events(tokens, receiver, eager):
    station, _ = station_register(identity="CS-E")
    subscribe(
        tokens,
        receiver,
        ["station.connected", "station.disconnected", "station.status_changed", "command.finished"],
    )
    opened = connection_open(station_id=station.pk, remote_addr="10.0.0.9", subprotocol="ocpp2.0.1", channel_name="c")
    ctx = CallContext(station_id=station.pk, identity="CS-E", unique_id="1", action="StatusNotification")
    notification = {"timestamp": "2026-02-01T08:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    status_notification(ctx, notification)
    status_notification(ctx, notification | {"timestamp": "2026-02-01T08:00:05Z"})  # same status: no event
    status_notification(ctx, notification | {"timestamp": "2026-02-01T08:01:00Z", "connectorStatus": "Occupied"})
    command = Command.objects.create(station=station, action="ClearCache", request={}, state="sent")
    command_finish(command_id=command.pk, state="answered", response={"status": "Accepted"})
    connection_close(connection_id=opened.connection_id, close_code=1000)
    events = [(r["event"], r["valid"]) for r in receiver.received]
    assert events == [
        ("station.connected", True),
        ("station.status_changed", True),
        ("station.status_changed", True),
        ("command.finished", True),
        ("station.disconnected", True),
    ]
    data = [r["body"]["data"] for r in receiver.received]
    assert data[0]["station"] == "CS-E" and data[0]["remote_addr"] == "10.0.0.9"
    assert (data[2]["status"], data[2]["previous_status"], data[2]["evse_id"]) == ("Occupied", "Available", 1)
    assert (data[3]["action"], data[3]["state"]) == ("ClearCache", "answered")
    assert data[3]["response"] == {"status": "Accepted"}
    assert (data[4]["station"], data[4]["close_code"]) == ("CS-E", 1000)


def test_admin_pages_render(tokens, receiver, eager):
    from django.contrib.auth.models import User
    from django.test import Client

    station, _ = station_register(identity="CS-W")
    subscribe(tokens, receiver, ["transaction.started"])
    transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-02-01T08:00:00Z", "T-1"))
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    for path in (
        "/admin/webhooks/webhooksubscription/",
        f"/admin/webhooks/webhooksubscription/{WebhookDelivery.objects.get().subscription_id}/change/",
        "/admin/webhooks/webhookdelivery/",
        f"/admin/webhooks/webhookdelivery/{WebhookDelivery.objects.get().pk}/change/",
    ):
        assert client.get(path).status_code == 200, path
