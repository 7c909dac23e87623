"""The hot path: what a station waits for (its data committed) and what it does not (the message log, heartbeats)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from stations.message_log import rows_write
from stations.models import Connector, MessageLog
from tests.conftest import wait_until
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import exchange

pytestmark = pytest.mark.live

STATUS = {"timestamp": "2026-01-01T10:00:00Z", "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}


@contextlib.contextmanager
def table_locked(table: str) -> Iterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on ``table`` from another database session (every read and write waits)."""
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
        other.rollback()


def test_station_is_answered_while_the_message_log_table_is_locked(live_server_ws, station_factory):
    station = station_factory("CS-1")

    async def scenario() -> list:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            with table_locked("stations_messagelog"):
                return await st.call("StatusNotification", STATUS, message_id="s1")

    assert run(scenario()) == [3, "s1", {}]
    assert Connector.objects.get(evse__station=station).status == "Occupied"
    # The log rows arrive once the table is free again, stamped with the instant the frame was handled.
    assert wait_until(lambda: MessageLog.objects.filter(message_id="s1").count() == 2)
    assert sorted(MessageLog.objects.filter(message_id="s1").values_list("direction", "message_type")) == [
        ("in", 2),
        ("out", 3),
    ]


def test_heartbeat_is_answered_while_every_database_thread_is_busy(csms_server, station_factory):
    # last_seen_at written at most once a minute: a heartbeat right after the boot has nothing to store.
    server = csms_server("one-db-thread", CSMS_DB_THREADS="1", CSMS_LAST_SEEN_RESOLUTION_S="60")
    station_factory("CS-A")
    station_factory("CS-B")

    async def scenario() -> tuple[list, list, bool]:
        async with RawStation.connect(server.ws_url, "CS-A") as a, RawStation.connect(server.ws_url, "CS-B") as b:
            await a.boot()
            await b.boot()
            with table_locked("stations_evse"):
                # A's StatusNotification holds the only database thread, waiting for the lock.
                blocked = asyncio.ensure_future(a.call("StatusNotification", STATUS, message_id="s1"))
                await asyncio.sleep(0.5)
                heartbeat = await b.call("Heartbeat", {}, message_id="hb")
                still_blocked = not blocked.done()
            return heartbeat, await blocked, still_blocked

    heartbeat, status, still_blocked = run(scenario())
    assert heartbeat[:2] == [3, "hb"] and set(heartbeat[2]) == {"currentTime"}
    assert still_blocked is True
    assert status == [3, "s1", {}]


def test_log_rows_are_kept_and_written_once_the_database_takes_them_again(
    live_server_ws, station_factory, db_failure_trigger
):
    station_factory("CS-1")
    db_failure_trigger("stations_messagelog")
    [reply] = exchange(live_server_ws, "CS-1", [json.dumps([2, "s1", "StatusNotification", STATUS])])
    assert reply == [3, "s1", {}]  # the station's data does not depend on its log
    assert not MessageLog.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER csms_test_fail ON stations_messagelog")
    assert wait_until(lambda: MessageLog.objects.filter(message_id="s1").count() == 2, timeout_s=15)
    # Boot and the heartbeat of the exchange were kept too, in order.
    assert list(MessageLog.objects.order_by("id").values_list("message_id", "direction")) == [
        ("m1", "in"), ("m1", "out"), ("s1", "in"), ("s1", "out"), ("alive", "in"), ("alive", "out"),
    ]  # fmt: skip


def test_log_rows_the_database_refuses_are_dropped_without_blocking_the_others(station_factory):
    kept = station_factory("CS-KEPT")
    gone = station_factory("CS-GONE")
    gone_pk = gone.pk
    gone.delete()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows_write([
        {"station_id": kept.pk, "direction": "in", "message_id": "a", "created_at": at},
        {"station_id": gone_pk, "direction": "in", "message_id": "b", "created_at": at},
        {"station_id": kept.pk, "direction": "in", "message_type": 70_000, "created_at": at},  # beyond smallint
        {"station_id": kept.pk, "direction": "out", "message_id": "a", "created_at": at},
    ])  # fmt: skip
    assert list(MessageLog.objects.order_by("id").values_list("station_id", "message_id", "created_at")) == [
        (kept.pk, "a", at),
        (kept.pk, "a", at),
    ]


def test_synchronous_log_mode_commits_the_rows_with_the_call(csms_server, station_factory):
    server = csms_server("log-sync", CSMS_MESSAGE_LOG_FLUSH_MS="0")
    station = station_factory("CS-1")
    exchange(server, "CS-1", [json.dumps([2, "s1", "StatusNotification", STATUS])])
    # No waiting: the rows were committed before the answers left.
    assert list(MessageLog.objects.filter(station=station).order_by("id").values_list("message_id", "direction")) == [
        ("m1", "in"), ("m1", "out"), ("s1", "in"), ("s1", "out"), ("alive", "in"), ("alive", "out"),
    ]  # fmt: skip


def test_buffered_log_rows_are_written_when_the_server_stops(transactional_db, station_factory):
    from tests.conftest import start_daphne

    # A flush interval far longer than the test: the rows can only get out through the shutdown flush.
    server = start_daphne({"CSMS_MESSAGE_LOG_FLUSH_MS": "600000"}, "log-shutdown")
    try:
        station = station_factory("CS-1")
        exchange(server, "CS-1", [json.dumps([2, "s1", "StatusNotification", STATUS])])
        assert not MessageLog.objects.filter(station=station).exists()
    finally:
        server.stop()  # SIGTERM: daphne stops its reactor, which runs the writer's flush first
    assert server.process.returncode == 0
    assert list(MessageLog.objects.filter(station=station).order_by("id").values_list("message_id", "direction")) == [
        ("m1", "in"), ("m1", "out"), ("s1", "in"), ("s1", "out"), ("alive", "in"), ("alive", "out"),
    ]  # fmt: skip
