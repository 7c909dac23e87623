"""OCPP-J transport over a live daphne server: every CALLERROR code with the exact frames."""

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


def test_unreadable_frame_is_rpc_framework_error_with_id_minus_one(live_server_ws, station_factory):
    station_factory("CS-1")
    [reply] = exchange(live_server_ws, "CS-1", ["this is not json"])
    assert reply[:3] == [4, "-1", "RpcFrameworkError"]
    assert reply[3].startswith("Frame is not valid JSON")
    assert reply[4] == {}


def test_non_array_frame_is_rpc_framework_error(live_server_ws, station_factory):
    station_factory("CS-1")
    assert exchange(live_server_ws, "CS-1", ['{"a": 1}']) == [
        [4, "-1", "RpcFrameworkError", "Frame is not a JSON array", {}]
    ]


def test_wrong_length_frame_is_rpc_framework_error_with_its_id(live_server_ws, station_factory):
    station_factory("CS-1")
    replies = exchange(live_server_ws, "CS-1", ['[2, "abc", "Heartbeat"]', '[2, "abd", "Heartbeat", {}, 5]'])
    assert replies == [
        [4, "abc", "RpcFrameworkError", "CALL has 3 elements; 4 expected", {}],
        [4, "abd", "RpcFrameworkError", "CALL has 5 elements; 4 expected", {}],
    ]


def test_unknown_message_type_is_message_type_not_supported(live_server_ws, station_factory):
    station_factory("CS-1")
    assert exchange(live_server_ws, "CS-1", ['[5, "x1", "Heartbeat", {}]']) == [
        [4, "x1", "MessageTypeNotSupported", "Message type 5 is not supported", {}]
    ]


def test_unknown_action_is_not_implemented(live_server_ws, station_factory):
    station_factory("CS-1")
    assert exchange(live_server_ws, "CS-1", ['[2, "x2", "MakeCoffee", {}]']) == [
        [4, "x2", "NotImplemented", "Action MakeCoffee is not known", {}]
    ]


def test_known_action_without_handler_is_not_supported(live_server_ws, station_factory):
    station_factory("CS-1")
    # Reset is an OCPP 2.0.1 action, but a CSMS->CS one: a station may not send it.
    assert exchange(live_server_ws, "CS-1", ['[2, "x3", "Reset", {"type": "Immediate"}]']) == [
        [4, "x3", "NotSupported", "Action Reset is not supported by this CSMS", {}]
    ]


def test_payload_not_an_object_is_format_violation(live_server_ws, station_factory):
    station_factory("CS-1")
    assert exchange(live_server_ws, "CS-1", ['[2, "x4", "Heartbeat", []]']) == [
        [4, "x4", "FormatViolation", "HeartbeatRequest payload must be a JSON object, got list", {}]
    ]


def test_missing_required_field_is_occurrence_constraint_violation(live_server_ws, station_factory):
    station_factory("CS-1")
    payload = {k: v for k, v in STATUS.items() if k != "connectorStatus"}
    [reply] = exchange(live_server_ws, "CS-1", [json.dumps([2, "x5", "StatusNotification", payload])])
    assert reply == [
        4,
        "x5",
        "OccurrenceConstraintViolation",
        "StatusNotificationRequest (root): 'connectorStatus' is a required property",
        {"path": "(root)", "keyword": "required"},
    ]


def test_item_count_is_occurrence_constraint_violation(live_server_ws, station_factory):
    station_factory("CS-1")
    payload = {"generatedAt": "2026-01-01T10:00:00Z", "seqNo": 0, "eventData": []}
    [reply] = exchange(live_server_ws, "CS-1", [json.dumps([2, "x6", "NotifyEvent", payload])])
    assert reply[:3] == [4, "x6", "OccurrenceConstraintViolation"]
    assert reply[4] == {"path": "eventData", "keyword": "minItems"}


def test_wrong_json_type_is_type_constraint_violation(live_server_ws, station_factory):
    station_factory("CS-1")
    [reply] = exchange(live_server_ws, "CS-1", [json.dumps([2, "x7", "StatusNotification", STATUS | {"evseId": "1"}])])
    assert reply == [
        4,
        "x7",
        "TypeConstraintViolation",
        "StatusNotificationRequest evseId: '1' is not of type 'integer'",
        {"path": "evseId", "keyword": "type"},
    ]


@pytest.mark.parametrize(
    ("change", "keyword", "path"),
    [
        ({"connectorStatus": "Broken"}, "enum", "connectorStatus"),
        ({"evseId": -1}, "minimum", "evseId"),
        ({"timestamp": "yesterday"}, "format", "timestamp"),
        ({"colour": "red"}, "additionalProperties", "(root)"),
    ],
)
def test_property_violations_are_property_constraint_violation(live_server_ws, station_factory, change, keyword, path):
    station_factory("CS-1")
    [reply] = exchange(live_server_ws, "CS-1", [json.dumps([2, "x8", "StatusNotification", STATUS | change])])
    assert reply[:3] == [4, "x8", "PropertyConstraintViolation"]
    assert reply[4] == {"path": path, "keyword": keyword}
    assert len(reply[3]) <= 255


def test_too_long_string_is_property_constraint_violation(live_server_ws, station_factory):
    station_factory("CS-1")
    boot = {"reason": "PowerUp", "chargingStation": {"vendorName": "V" * 51, "model": "M"}}
    [reply] = exchange(live_server_ws, "CS-1", [json.dumps([2, "x9", "BootNotification", boot])])
    assert reply[:3] == [4, "x9", "PropertyConstraintViolation"]
    assert reply[4] == {"path": "chargingStation/vendorName", "keyword": "maxLength"}


def test_oversize_frame_is_format_violation_and_connection_kept(live_server_ws, station_factory):
    station_factory("CS-1")
    big = json.dumps([2, "big1", "DataTransfer", {"vendorId": "x", "data": "A" * 300_000}])
    assert exchange(live_server_ws, "CS-1", [big]) == [[4, "big1", "FormatViolation", "Frame exceeds 262144 bytes", {}]]


def test_binary_frame_is_rpc_framework_error(live_server_ws, station_factory):
    station_factory("CS-1")

    async def scenario() -> list:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.ws.send(b"\x00\x01")
            return await st.recv()

    assert run(scenario()) == [4, "-1", "RpcFrameworkError", "Binary frames are not supported; use text", {}]


def test_request_before_boot_accepted_is_security_error(live_server_ws, station_factory):
    station_factory("CS-1")
    replies = run(_before_boot(live_server_ws))
    assert replies == [
        4,
        "hb0",
        "SecurityError",
        "Heartbeat refused: the station is not accepted (BootNotification first)",
        {},
    ]


async def _before_boot(server) -> list:
    async with RawStation.connect(server.ws_url, "CS-1") as st:
        return await st.call("Heartbeat", {}, message_id="hb0")


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
    assert connector.status_at.isoformat() == "2026-01-01T10:00:00+00:00"
    violation = ProtocolViolation.objects.get(message_id="l1")
    assert violation.tolerated is True
    assert sorted(v["keyword"] for v in violation.violations) == ["additionalProperties", "format"]


def test_lenient_station_still_gets_errors_for_intolerable_violations(live_server_ws, station_factory):
    station = station_factory("CS-1")
    ChargingStation.objects.filter(pk=station.pk).update(validation_mode="lenient")
    payload = {k: v for k, v in STATUS.items() if k != "evseId"}
    [reply] = exchange(live_server_ws, "CS-1", [json.dumps([2, "l2", "StatusNotification", payload])])
    assert reply[:3] == [4, "l2", "OccurrenceConstraintViolation"]


def test_connection_survives_a_burst_of_garbage_frames(live_server_ws, station_factory):
    station_factory("CS-1")
    replies = exchange(live_server_ws, "CS-1", ["[", "[]", "[2]", "null", '[2, 5, "Heartbeat", {}]'])
    assert [r[:3] for r in replies] == [[4, "-1", "RpcFrameworkError"]] * 5
