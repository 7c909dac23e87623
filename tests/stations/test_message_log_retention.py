"""Message-log retention (beat job stations.message_log_retention): exactly the old rows go, in batches, while
stations keep being answered."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from csms.models import JobRun
from stations import message_log
from stations.models import ChargingStation, MessageLog
from stations.tasks import message_log_retention
from tests.ocpp_client import run

pytestmark = pytest.mark.django_db(transaction=True)


def old_rows(station: ChargingStation, n: int, age_days: float) -> None:
    at = timezone.now() - timedelta(days=age_days)
    MessageLog.objects.bulk_create(
        [
            MessageLog(station=station, direction="in", message_type=2, action="Heartbeat", payload={}, created_at=at)
            for _ in range(n)
        ],
        batch_size=5000,
    )


def test_retention_deletes_exactly_the_rows_older_than_the_setting(station_factory, settings):
    station = station_factory("CS-1")
    old_rows(station, 2500, 31)
    old_rows(station, 40, 29.9)
    settings.CSMS_MESSAGE_LOG_RETENTION_DAYS = 30
    settings.CSMS_MESSAGE_LOG_RETENTION_BATCH = 1000
    settings.CSMS_MESSAGE_LOG_RETENTION_PAUSE_MS = 0
    assert message_log_retention() == 2500
    left = MessageLog.objects.all()
    assert left.count() == 40
    assert all((timezone.now() - r.created_at) < timedelta(days=30) for r in left)
    # Beat sent it again within the hour (a second beat): not run twice.
    old_rows(station, 3, 31)
    assert message_log_retention() is None
    assert MessageLog.objects.count() == 43
    assert JobRun.objects.get(job="stations.message_log_retention").result == 2500


def test_retention_off_keeps_everything(station_factory, settings):
    station = station_factory("CS-1")
    old_rows(station, 5, 400)
    settings.CSMS_MESSAGE_LOG_RETENTION_DAYS = 0
    assert message_log_retention() == 0
    assert MessageLog.objects.count() == 5


def test_a_station_is_answered_while_retention_deletes_many_rows(asgi_server, station_factory):
    station = station_factory("CS-1")
    old_rows(station, 8_000, 60)
    done = threading.Event()
    deleted: list[int] = []

    def prune() -> None:
        try:
            deleted.append(message_log.message_log_prune(older_than_days=30, batch_rows=200, pause_s=0.05))
        finally:
            done.set()
            connection.close()

    async def scenario() -> list[bool]:
        pruner = asyncio.get_running_loop().run_in_executor(None, prune)
        answered_while_pruning = []
        async with asgi_server.station("CS-1") as st:
            assert (await st.boot())[2]["status"] == "Accepted"
            for i in range(5):
                reply = await st.call("Heartbeat", {}, message_id=f"hb-{i}")
                answered_while_pruning.append(reply[0] == 3 and not done.is_set())
        await pruner
        return answered_while_pruning

    assert run(scenario()) == [True] * 5
    assert deleted == [8_000]
    # The station's own (new) rows are kept: boot and heartbeats, CALL and answer each.
    assert MessageLog.objects.filter(station=station).count() == 12
