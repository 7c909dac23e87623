"""An active session whose station has gone quiet is shown as "station offline since …", not as charging."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from stations.models import ChargingStation
from tests.api_client import make_user
from transactions.models import ChargingTransaction

pytestmark = pytest.mark.django_db


def session(identity: str, *, online: bool, quiet_for: timedelta, active: bool = True) -> ChargingTransaction:
    station = ChargingStation.objects.create(
        identity=identity, is_online=online, last_seen_at=timezone.now() - quiet_for
    )
    return ChargingTransaction.objects.create(
        station=station,
        transaction_id=f"TX-{identity}",
        started_at=timezone.now() - timedelta(hours=1),
        is_active=active,
    )


def test_only_sessions_of_stations_offline_longer_than_the_setting_are_flagged(settings):
    settings.CSMS_SESSION_OFFLINE_NOTICE_S = 300
    gone = session("GONE", online=False, quiet_for=timedelta(minutes=10))
    assert gone.station_offline_since() == gone.station.last_seen_at
    assert session("BLIP", online=False, quiet_for=timedelta(minutes=1)).station_offline_since() is None
    assert session("UP", online=True, quiet_for=timedelta(minutes=10)).station_offline_since() is None
    assert session("DONE", online=False, quiet_for=timedelta(hours=2), active=False).station_offline_since() is None


def test_pages_and_api_show_the_offline_station(settings):
    settings.CSMS_SESSION_OFFLINE_NOTICE_S = 300
    gone = session("GONE", online=False, quiet_for=timedelta(minutes=10))
    session("UP", online=True, quiet_for=timedelta(seconds=5))
    user, token = make_user()
    user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    listing = client.get("/sessions/").content.decode()
    assert listing.count('data-testid="station-offline"') == 1
    assert "station offline since" in client.get(f"/sessions/{gone.pk}/").content.decode()
    assert 'data-testid="station-offline"' in client.get("/stations/GONE/").content.decode()
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    body = api.get("/api/v1/transactions/?is_active=true").json()
    flagged = {row["transaction_id"]: row["station_offline_since"] for row in body["results"]}
    assert flagged["TX-UP"] is None
    seen = gone.station.last_seen_at
    assert seen is not None and flagged["TX-GONE"] is not None
    assert flagged["TX-GONE"].startswith(seen.strftime("%Y-%m-%dT%H:%M"))
