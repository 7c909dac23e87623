"""OCPP-J transport over a live daphne server: what needs the real process (its log, the message log writer,
its settings). The CALLERROR codes themselves are checked in process: test_error_mapping.py."""

from __future__ import annotations

import json
import time

import pytest

from stations.models import ChargingStation, Connector, MessageLog, ProtocolViolation, StatusNotificationRecord
from tests.conftest import wait_until
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import exchange

pytestmark = pytest.mark.live

STATUS = {"timestamp": "2026-01-01T10:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1}


def test_handler_exception_is_internal_error_and_connection_kept(live_server_ws, station_factory):
    station_factory("CS-1")
    # A date the schema accepts but Python cannot represent makes the handler raise.
    bad = STATUS | {"timestamp": "9999-12-31T23:59:59-23:59"}
    [reply] = exchange(live_server_ws, "CS-1", [json.dumps([2, "ie1", "StatusNotification", bad])])
    assert reply[:3] == [4, "ie1", "InternalError"]
    assert reply[3] == "Internal error: OverflowError"
    # Only what the server logged during this test (csms_server gives each test its own view of the log).
    assert "Traceback" in live_server_ws.log()


def test_failed_db_write_is_internal_error_with_nothing_persisted(live_server_ws, station_factory, db_failure_trigger):
    station_factory("CS-1")
    db_failure_trigger("stations_statusnotificationrecord")
    [reply] = exchange(live_server_ws, "CS-1", [json.dumps([2, "db1", "StatusNotification", STATUS])])
    assert reply == [4, "db1", "InternalError", "Database error; nothing of this message was stored", {}]
    # The EVSE/connector rows created before the failing insert were rolled back with it.
    assert not Connector.objects.exists()
    assert not StatusNotificationRecord.objects.exists()
    # No success log rows for the CALL; the error itself is logged.
    assert wait_until(lambda: MessageLog.objects.filter(message_id="db1").count() == 2)
    assert sorted(MessageLog.objects.filter(message_id="db1").values_list("direction", "error_code")) == [
        ("in", "InternalError"),
        ("out", "InternalError"),
    ]


def test_reply_to_unknown_message_id_is_logged_and_dropped(live_server_ws, station_factory):
    station_factory("CS-1")

    async def scenario() -> list:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await st.send_raw('[3, "nobody-asked", {}]')
            await st.send_raw('[4, "nobody-asked-2", "GenericError", "x", {}]')
            return await st.call("Heartbeat", {}, message_id="hb")

    reply = run(scenario())
    assert reply[:2] == [3, "hb"]
    assert wait_until(lambda: MessageLog.objects.filter(message_id="hb").count() == 2)
    dropped = MessageLog.objects.filter(message_id__startswith="nobody-asked").order_by("id")
    assert [(m.message_type, m.error_description) for m in dropped] == [
        (3, "reply to an unknown message id: dropped"),
        (4, "reply to an unknown message id: dropped"),
    ]


def test_every_frame_is_in_the_message_log(live_server_ws, station_factory):
    station = station_factory("CS-1")
    exchange(live_server_ws, "CS-1", [json.dumps([2, "s1", "StatusNotification", STATUS])])
    assert wait_until(lambda: MessageLog.objects.filter(station=station).count() == 6)
    rows = list(
        MessageLog.objects.filter(station=station)
        .order_by("id")
        .values_list("direction", "message_type", "message_id", "action", "error_code")
    )
    assert rows == [
        ("in", 2, "m1", "BootNotification", ""),
        ("out", 3, "m1", "BootNotification", ""),
        ("in", 2, "s1", "StatusNotification", ""),
        ("out", 3, "s1", "StatusNotification", ""),
        ("in", 2, "alive", "Heartbeat", ""),
        ("out", 3, "alive", "Heartbeat", ""),
    ]
    assert MessageLog.objects.get(message_id="s1", direction="in").payload == STATUS


def test_message_log_errors_mode_keeps_only_errors(csms_server, station_factory):
    server = csms_server("log-errors", CSMS_MESSAGE_LOG="errors")
    station = station_factory("CS-1")
    exchange(server, "CS-1", ['[2, "e1", "Nope", {}]'])
    assert wait_until(lambda: MessageLog.objects.filter(message_id="e1").count() == 2)
    assert sorted(MessageLog.objects.filter(station=station).values_list("direction", "message_id", "error_code")) == [
        ("in", "e1", "NotImplemented"),
        ("out", "e1", "NotImplemented"),
    ]


def test_message_log_none_mode_logs_nothing(csms_server, station_factory):
    server = csms_server("log-none", CSMS_MESSAGE_LOG="none")
    station_factory("CS-1")
    exchange(server, "CS-1", ['[2, "e1", "Nope", {}]'])
    time.sleep(0.5)  # longer than the log's flush interval: nothing was merely not written yet
    assert MessageLog.objects.count() == 0


def test_lenient_station_is_processed_and_violations_recorded(live_server_ws, station_factory):
    station = station_factory("CS-1")
    ChargingStation.objects.filter(pk=station.pk).update(validation_mode="lenient")
    payload = STATUS | {"colour": "red", "timestamp": "2026-01-01T10:00:00"}
    [reply] = exchange(live_server_ws, "CS-1", [json.dumps([2, "l1", "StatusNotification", payload])])
    assert reply == [3, "l1", {}]
    connector = Connector.objects.get()
    assert connector.status == "Available"
    assert connector.status_at is not None
    assert connector.status_at.isoformat() == "2026-01-01T10:00:00+00:00"
    violation = ProtocolViolation.objects.get(message_id="l1")
    assert violation.tolerated is True
    assert sorted(v["keyword"] for v in violation.violations) == ["additionalProperties", "format"]
