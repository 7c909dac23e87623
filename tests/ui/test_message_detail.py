"""The message detail page without a browser: who may see it, frames that could not be parsed, related frames."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from stations.models import MessageLog
from stations.services import station_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("viewer", "", "pw"))
    return client


def test_message_page_needs_a_login_and_an_existing_message() -> None:
    message = MessageLog.objects.create(direction="in", message_type=2, message_id="m1", action="Heartbeat", payload={})
    response = Client().get(f"/messages/{message.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next=/messages/{message.pk}/"
    client = Client()
    client.force_login(User.objects.create_user("viewer", "", "pw"))
    assert client.get(f"/messages/{message.pk + 1}/").status_code == 404


def test_an_unparsable_frame_is_shown_as_received(viewer: Client) -> None:
    message = MessageLog.objects.create(
        direction="in", raw='[2, "x", "Heart', error_code="RpcFrameworkError", error_description="Unreadable frame"
    )
    page = viewer.get(f"/messages/{message.pk}/").content.decode()
    assert '<pre class="frame" data-testid="message-payload">[2, &quot;x&quot;, &quot;Heart</pre>' in page
    assert "<h2>Frame as received</h2>" in page
    assert "RpcFrameworkError: Unreadable frame" in page
    assert "— (not registered)" in page and "Same message id" not in page


def test_a_call_links_to_its_answer_but_not_to_other_stations_or_old_frames(viewer: Client) -> None:
    a, b = station_register(identity="A")[0], station_register(identity="B")[0]
    now = timezone.now()
    call = MessageLog.objects.create(
        station=a, direction="in", message_type=2, message_id="7", action="Heartbeat", payload={}, created_at=now
    )
    answer = MessageLog.objects.create(
        station=a,
        direction="out",
        message_type=3,
        message_id="7",
        action="Heartbeat",
        payload={"currentTime": "2026-01-01T00:00:00Z"},
        created_at=now + timedelta(milliseconds=5),
    )
    other_station = MessageLog.objects.create(
        station=b, direction="out", message_type=3, message_id="7", payload={}, created_at=now
    )
    long_ago = MessageLog.objects.create(
        station=a, direction="out", message_type=3, message_id="7", payload={}, created_at=now - timedelta(days=2)
    )
    page = viewer.get(f"/messages/{call.pk}/").content.decode()
    assert "<title>CALL Heartbeat · CSMS</title>" in page
    assert f'href="/messages/{answer.pk}/"' in page
    assert f'href="/messages/{other_station.pk}/"' not in page and f'href="/messages/{long_ago.pk}/"' not in page
    assert page.count("<tr><td>") == 1  # the answer's row only
