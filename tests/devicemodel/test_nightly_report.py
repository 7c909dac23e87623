"""The optional nightly base report (beat job devicemodel.nightly_base_report): once per station per night."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.utils import timezone

from devicemodel import services
from devicemodel.models import ReportJob
from devicemodel.tasks import nightly_base_report_task
from stations.models import ChargingStation, Command

pytestmark = pytest.mark.django_db(transaction=True)


def online(station_factory: Any, identity: str, **kwargs: Any) -> ChargingStation:
    station = station_factory(identity, **kwargs)
    ChargingStation.objects.filter(pk=station.pk).update(is_online=True, channel_name=f"test.{identity}")
    return station


def test_nightly_report_goes_once_per_night_to_online_accepted_stations(station_factory):
    a = online(station_factory, "CS-A")
    b = online(station_factory, "CS-B")
    online(station_factory, "CS-PENDING", registration_status="Pending")
    station_factory("CS-OFFLINE")
    # Before the hour: nothing.
    evening = datetime(2026, 12, 2, 22, 59, tzinfo=UTC)
    assert services.nightly_base_reports_send(kind="FullInventory", hour_utc=23, now=evening) == 0
    night = timezone.now()
    # B was asked tonight through another door already.
    services.report_request(station=b, kind="FullInventory")
    assert services.nightly_base_reports_send(kind="FullInventory", hour_utc=night.hour, now=night) == 1
    assert services.nightly_base_reports_send(kind="FullInventory", hour_utc=night.hour, now=night) == 0  # idempotent
    jobs = ReportJob.objects.order_by("pk")
    assert [(j.station.identity, j.kind, j.state) for j in jobs] == [
        ("CS-B", "FullInventory", "requested"),
        ("CS-A", "FullInventory", "requested"),
    ]
    command = Command.objects.get(station=a)
    assert (command.action, command.request) == (
        "GetBaseReport",
        {"requestId": jobs[1].request_id, "reportBase": "FullInventory"},
    )


def test_nightly_report_task_is_off_by_default_and_runs_once_per_slot(station_factory, settings):
    online(station_factory, "CS-A")
    assert settings.CSMS_NIGHTLY_BASE_REPORT == ""
    assert nightly_base_report_task() == 0
    assert not ReportJob.objects.exists()
    settings.CSMS_NIGHTLY_BASE_REPORT = "ConfigurationInventory"
    settings.CSMS_NIGHTLY_BASE_REPORT_HOUR_UTC = 0
    assert nightly_base_report_task() is None  # this 10-minute slot already ran (off): the beat lock
    from csms.models import JobRun

    JobRun.objects.all().delete()
    assert nightly_base_report_task() == 1
    assert ReportJob.objects.get().kind == "ConfigurationInventory"
