"""SecurityEventNotification over the wire, duplicates, the critical flag, the webhook, the API feeds, the station
page's feed and the alerts (overview, station page, acknowledging), the read-only admin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from csms.roles import roles_ensure
from security.models import SecurityEvent, SecurityEventSource
from security.services import security_event_record
from stations.models import StationEvent
from stations.services import station_events_record, station_register
from tests.api.helpers import call
from tests.ocpp_client import RawStation, run
from webhooks.models import WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.django_db(transaction=True)

T0 = "2026-12-01T08:00:00Z"


@pytest.mark.live
def test_security_event_notification_is_stored_once_and_flagged(live_server_ws, station_factory):
    station_factory("CS-SE")

    async def scenario() -> list[Any]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-SE") as st:
            assert (await st.boot())[2]["status"] == "Accepted"
            answers = [
                await st.call("SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": T0}),
                # a retry: new message id, same type and timestamp
                await st.call("SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": T0}),
                await st.call(
                    "SecurityEventNotification",
                    {"type": "InvalidMessages", "timestamp": T0, "techInfo": "bad frame from CSMS"},
                ),
                await st.call("SecurityEventNotification", {"timestamp": T0}),  # no type: schema violation
            ]
            return answers

    answers = run(scenario())
    assert [a[0] for a in answers] == [3, 3, 3, 4]
    assert answers[0][2] == {} and answers[3][2] == "OccurrenceConstraintViolation"
    rows = {e.type: e for e in SecurityEvent.objects.filter(identity="CS-SE")}
    assert set(rows) == {"TamperDetectionActivated", "InvalidMessages"}
    assert rows["TamperDetectionActivated"].critical and not rows["InvalidMessages"].critical
    assert rows["InvalidMessages"].tech_info == "bad frame from CSMS"
    assert rows["InvalidMessages"].source == SecurityEventSource.STATION
    assert rows["TamperDetectionActivated"].timestamp == datetime(2026, 12, 1, 8, tzinfo=UTC)


def test_webhook_once_per_new_event_and_critical_list_is_a_setting(settings):
    settings.CSMS_CRITICAL_SECURITY_EVENTS = frozenset({"InvalidMessages"})
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the delivery rows are what is checked here; nothing is sent
    from csms import celery_app

    eager, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, False
    try:
        station, _ = station_register(identity="CS-WH")
        WebhookSubscription.objects.create(url="http://127.0.0.1:9/hook", secret="s" * 32, events=["security.event"])
        at = datetime(2026, 12, 1, 9, tzinfo=UTC)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("webhooks.services._enqueue", lambda ids: None)
            first = security_event_record(station_id=station.pk, event_type="InvalidMessages", timestamp=at)
            again = security_event_record(station_id=station.pk, event_type="InvalidMessages", timestamp=at)
            other = security_event_record(station_id=station.pk, event_type="TamperDetectionActivated", timestamp=at)
    finally:
        celery_app.conf.task_always_eager = eager
    assert first is not None and first.critical and again is None and other is not None and not other.critical
    payloads = [d.payload for d in WebhookDelivery.objects.filter(event="security.event").order_by("pk")]
    assert [(p["type"], p["critical"], p["station"]) for p in payloads] == [
        ("InvalidMessages", True, "CS-WH"),
        ("TamperDetectionActivated", False, "CS-WH"),
    ]


def _station_with_events() -> Any:
    station, _ = station_register(identity="CS-F")
    security_event_record(
        station_id=station.pk,
        event_type="SecurityLogWasCleared",
        timestamp=datetime(2026, 12, 1, 7, tzinfo=UTC),
        tech_info="log wiped",
    )
    security_event_record(
        station_id=station.pk, event_type="InvalidTLSVersion", timestamp=datetime(2026, 12, 1, 6, tzinfo=UTC)
    )
    station_events_record(
        station_id=station.pk,
        generated_at=datetime(2026, 12, 1, 7, tzinfo=UTC),
        seq_no=0,
        event_data=[
            {
                "eventId": 1,
                "timestamp": "2026-12-01T07:00:00Z",
                "trigger": "Alerting",
                "actualValue": "true",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Door"},
                "variable": {"name": "Problem"},
            }
        ],
    )
    return station


def test_api_feeds(tokens):
    _station_with_events()
    code, body = call(tokens["billing"], "GET", "/api/v1/stations/CS-F/security-events/")
    assert code == 200 and body["count"] == 2
    first = body["results"][0]
    assert first["type"] == "SecurityLogWasCleared" and first["critical"] is True and first["station"] == "CS-F"
    assert first["source"] == "station" and first["tech_info"] == "log wiped" and first["acknowledged_at"] is None
    code, body = call(tokens["billing"], "GET", "/api/v1/stations/CS-F/security-events/?critical=false")
    assert code == 200 and [r["type"] for r in body["results"]] == ["InvalidTLSVersion"]
    assert call(tokens["billing"], "GET", "/api/v1/stations/CS-F/security-events/?critical=maybe")[0] == 400
    code, body = call(tokens["billing"], "GET", "/api/v1/stations/CS-F/events/")
    assert code == 200 and body["count"] == 1
    assert body["results"][0]["trigger"] == "Alerting" and body["results"][0]["component"] == {"name": "Door"}
    assert StationEvent.objects.count() == 1
    for path in ("/api/v1/stations/CS-F/security-events/", "/api/v1/stations/CS-F/events/"):
        assert call(None, "GET", path)[0] == 401
        assert call(tokens["none"], "GET", path)[0] == 403
        assert call(tokens["billing"], "GET", path.replace("CS-F", "CS-NOPE"))[0] == 404


def test_feed_alerts_and_acknowledging():
    _station_with_events()
    roles_ensure()
    viewer = User.objects.create_user("viewer", password="pw")
    operator = User.objects.create_user("op", password="pw")
    operator.groups.add(Group.objects.get(name="operator"))
    as_viewer, as_operator = Client(), Client()
    as_viewer.force_login(viewer)
    as_operator.force_login(operator)

    page = as_viewer.get("/stations/CS-F/").content.decode()
    assert 'data-testid="security-feed"' in page and "InvalidTLSVersion" in page and "Door / Problem" in page
    assert 'data-testid="station-security-alerts"' in page and "log wiped" in page
    assert "Acknowledge" not in page  # no permission
    security = as_viewer.get("/security/").content.decode()
    assert 'data-testid="security-alerts"' in security and "SecurityLogWasCleared" in security
    alerts_part = security.split('data-testid="recent-security-events"')[0]
    assert "InvalidTLSVersion" not in alerts_part and "InvalidTLSVersion" in security  # not critical: no alert
    assert 'href="/security/"' in as_viewer.get("/").content.decode()  # linked from every page's nav

    alert = SecurityEvent.objects.get(type="SecurityLogWasCleared")
    assert as_viewer.post(f"/security/events/{alert.pk}/acknowledge/").status_code == 403
    assert "Acknowledge" in as_operator.get("/security/").content.decode()
    response = as_operator.post(f"/security/events/{alert.pk}/acknowledge/", {"next": "/stations/CS-F/"})
    assert response.status_code == 302 and response["Location"] == "/stations/CS-F/"
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None and alert.acknowledged_by == operator
    assert 'data-testid="no-security-alerts"' in as_viewer.get("/security/").content.decode()
    page = as_viewer.get("/stations/CS-F/").content.decode()
    assert 'data-testid="station-security-alerts"' not in page and "SecurityLogWasCleared" in page  # still in feed
    response = as_operator.post(f"/security/events/{alert.pk}/acknowledge/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content == b""


def test_admin_is_read_only():
    _station_with_events()
    admin = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(admin)
    event = SecurityEvent.objects.first()
    assert event is not None
    assert client.get("/admin/security/securityevent/").status_code == 200
    assert client.get("/admin/security/securityevent/add/").status_code == 403
    change = client.get(f"/admin/security/securityevent/{event.pk}/change/")
    assert change.status_code == 200 and b'name="_save"' not in change.content  # view only
    assert client.post(f"/admin/security/securityevent/{event.pk}/delete/").status_code == 403
