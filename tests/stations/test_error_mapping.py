"""OCPP-J error mapping on the ASGI app in process: every CALLERROR code a station gets, with the exact frames.

No daphne: the station consumer runs behind Channels' WebsocketCommunicator, on the test database (PostgreSQL)
and Redis. What needs real processes, sockets or the server's log stays in test_transport.py.
"""

from __future__ import annotations

import json

import pytest

from stations.models import ChargingStation
from tests.conftest import AsgiServer
from tests.ocpp_client import run
from tests.stations.helpers import exchange

STATUS = {"timestamp": "2026-01-01T10:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1}


def test_unreadable_frame_is_rpc_framework_error_with_id_minus_one(asgi_server, station_factory):
    station_factory("CS-1")
    [reply] = exchange(asgi_server, "CS-1", ["this is not json"])
    assert reply[:3] == [4, "-1", "RpcFrameworkError"]
    assert reply[3].startswith("Frame is not valid JSON")
    assert reply[4] == {}


def test_non_array_frame_is_rpc_framework_error(asgi_server, station_factory):
    station_factory("CS-1")
    assert exchange(asgi_server, "CS-1", ['{"a": 1}']) == [
        [4, "-1", "RpcFrameworkError", "Frame is not a JSON array", {}]
    ]


def test_wrong_length_frame_is_rpc_framework_error_with_its_id(asgi_server, station_factory):
    station_factory("CS-1")
    replies = exchange(asgi_server, "CS-1", ['[2, "abc", "Heartbeat"]', '[2, "abd", "Heartbeat", {}, 5]'])
    assert replies == [
        [4, "abc", "RpcFrameworkError", "CALL has 3 elements; 4 expected", {}],
        [4, "abd", "RpcFrameworkError", "CALL has 5 elements; 4 expected", {}],
    ]


def test_unknown_message_type_is_message_type_not_supported(asgi_server, station_factory):
    station_factory("CS-1")
    assert exchange(asgi_server, "CS-1", ['[5, "x1", "Heartbeat", {}]']) == [
        [4, "x1", "MessageTypeNotSupported", "Message type 5 is not supported", {}]
    ]


def test_unknown_action_is_not_implemented(asgi_server, station_factory):
    station_factory("CS-1")
    assert exchange(asgi_server, "CS-1", ['[2, "x2", "MakeCoffee", {}]']) == [
        [4, "x2", "NotImplemented", "Action MakeCoffee is not known", {}]
    ]


def test_known_action_without_handler_is_not_supported(asgi_server, station_factory):
    station_factory("CS-1")
    # Reset is an OCPP 2.0.1 action, but a CSMS->CS one: a station may not send it.
    assert exchange(asgi_server, "CS-1", ['[2, "x3", "Reset", {"type": "Immediate"}]']) == [
        [4, "x3", "NotSupported", "Action Reset is not supported by this CSMS", {}]
    ]


def test_payload_not_an_object_is_format_violation(asgi_server, station_factory):
    station_factory("CS-1")
    assert exchange(asgi_server, "CS-1", ['[2, "x4", "Heartbeat", []]']) == [
        [4, "x4", "FormatViolation", "HeartbeatRequest payload must be a JSON object, got list", {}]
    ]


def test_missing_required_field_is_occurrence_constraint_violation(asgi_server, station_factory):
    station_factory("CS-1")
    payload = {k: v for k, v in STATUS.items() if k != "connectorStatus"}
    [reply] = exchange(asgi_server, "CS-1", [json.dumps([2, "x5", "StatusNotification", payload])])
    assert reply == [
        4,
        "x5",
        "OccurrenceConstraintViolation",
        "StatusNotificationRequest (root): 'connectorStatus' is a required property",
        {"path": "(root)", "keyword": "required"},
    ]


def test_item_count_is_occurrence_constraint_violation(asgi_server, station_factory):
    station_factory("CS-1")
    payload = {"generatedAt": "2026-01-01T10:00:00Z", "seqNo": 0, "eventData": []}
    [reply] = exchange(asgi_server, "CS-1", [json.dumps([2, "x6", "NotifyEvent", payload])])
    assert reply[:3] == [4, "x6", "OccurrenceConstraintViolation"]
    assert reply[4] == {"path": "eventData", "keyword": "minItems"}


def test_wrong_json_type_is_type_constraint_violation(asgi_server, station_factory):
    station_factory("CS-1")
    [reply] = exchange(asgi_server, "CS-1", [json.dumps([2, "x7", "StatusNotification", STATUS | {"evseId": "1"}])])
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
def test_property_violations_are_property_constraint_violation(asgi_server, station_factory, change, keyword, path):
    station_factory("CS-1")
    [reply] = exchange(asgi_server, "CS-1", [json.dumps([2, "x8", "StatusNotification", STATUS | change])])
    assert reply[:3] == [4, "x8", "PropertyConstraintViolation"]
    assert reply[4] == {"path": path, "keyword": keyword}
    assert len(reply[3]) <= 255


def test_too_long_string_is_property_constraint_violation(asgi_server, station_factory):
    station_factory("CS-1")
    boot = {"reason": "PowerUp", "chargingStation": {"vendorName": "V" * 51, "model": "M"}}
    [reply] = exchange(asgi_server, "CS-1", [json.dumps([2, "x9", "BootNotification", boot])])
    assert reply[:3] == [4, "x9", "PropertyConstraintViolation"]
    assert reply[4] == {"path": "chargingStation/vendorName", "keyword": "maxLength"}


def test_oversize_frame_is_format_violation_and_connection_kept(asgi_server, station_factory):
    station_factory("CS-1")
    big = json.dumps([2, "big1", "DataTransfer", {"vendorId": "x", "data": "A" * 300_000}])
    assert exchange(asgi_server, "CS-1", [big]) == [[4, "big1", "FormatViolation", "Frame exceeds 262144 bytes", {}]]


def test_binary_frame_is_rpc_framework_error(asgi_server, station_factory):
    station_factory("CS-1")

    async def scenario() -> list:
        async with asgi_server.station("CS-1") as st:
            await st.send_raw(b"\x00\x01")
            return await st.recv()

    assert run(scenario()) == [4, "-1", "RpcFrameworkError", "Binary frames are not supported; use text", {}]


def test_request_before_boot_accepted_is_security_error(asgi_server, station_factory):
    station_factory("CS-1")
    replies = run(_before_boot(asgi_server))
    assert replies == [
        4,
        "hb0",
        "SecurityError",
        "Heartbeat refused: the station is not accepted (BootNotification first)",
        {},
    ]


async def _before_boot(server: AsgiServer) -> list:
    async with server.station("CS-1") as st:
        return await st.call("Heartbeat", {}, message_id="hb0")


def test_lenient_station_still_gets_errors_for_intolerable_violations(asgi_server, station_factory):
    station = station_factory("CS-1")
    ChargingStation.objects.filter(pk=station.pk).update(validation_mode="lenient")
    payload = {k: v for k, v in STATUS.items() if k != "evseId"}
    [reply] = exchange(asgi_server, "CS-1", [json.dumps([2, "l2", "StatusNotification", payload])])
    assert reply[:3] == [4, "l2", "OccurrenceConstraintViolation"]


def test_connection_survives_a_burst_of_garbage_frames(asgi_server, station_factory):
    station_factory("CS-1")
    replies = exchange(asgi_server, "CS-1", ["[", "[]", "[2]", "null", '[2, 5, "Heartbeat", {}]'])
    assert [r[:3] for r in replies] == [[4, "-1", "RpcFrameworkError"]] * 5
