"""Operational jobs and endpoints: stale-station sweep, metrics."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from stations.models import ChargingStation, Connection, Connector, Evse
from stations.tasks import mark_stale_offline


def test_silent_station_of_a_dead_process_is_marked_offline(db, settings):
    settings.CSMS_HEARTBEAT_INTERVAL_S = 300
    settings.CSMS_STALE_GRACE_S = 120
    now = timezone.now()
    stale = ChargingStation.objects.create(identity="STALE", is_online=True, last_seen_at=now - timedelta(seconds=721))
    connection = Connection.objects.create(station=stale, identity="STALE", outcome="accepted")
    stale.current_connection = connection
    stale.save()
    fresh = ChargingStation.objects.create(identity="FRESH", is_online=True, last_seen_at=now - timedelta(seconds=700))

    assert mark_stale_offline.apply().get() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.is_online, fresh.is_online) == (False, True)
    connection.refresh_from_db()
    assert connection.disconnected_at is not None
    assert mark_stale_offline.apply().get() == 0  # idempotent


def test_metrics_exposes_station_and_connector_gauges(db):
    station = ChargingStation.objects.create(identity="M1", is_online=True)
    ChargingStation.objects.create(identity="M2")
    evse = Evse.objects.create(station=station, evse_id=1)
    Connector.objects.create(evse=evse, connector_id=1, status="Faulted")
    body = Client().get("/metrics").content.decode()
    assert 'csms_stations{state="online"} 1.0' in body
    assert 'csms_stations{state="offline"} 1.0' in body
    assert 'csms_connectors{status="Faulted"} 1.0' in body
