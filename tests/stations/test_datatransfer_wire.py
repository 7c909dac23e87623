"""DataTransfer (block P) both ways against a live server: the vendor registry's answers, storage, and the
CSMS->CS request from the station page's form."""

from __future__ import annotations

import asyncio
import json

import pytest

from stations import command_forms, datatransfer
from stations.commands import command_send
from stations.models import ChargingStation, Command, DataTransferRecord
from tests.conftest import in_thread
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.live

ENV = {
    "CSMS_DATA_TRANSFER_MODULES": "tests.stations.datatransfer_vendor",
    "CSMS_DATA_TRANSFER_ACCEPT_VENDORS": "com.example.store, com.other",
}


def test_data_transfer_to_registered_and_unknown_vendors(csms_server, station_factory):
    server = csms_server("datatransfer", **ENV)
    station = station_factory("CS-1")

    async def scenario() -> list[list]:
        async with RawStation.connect(server.ws_url, "CS-1") as st:
            await st.boot()
            return [
                await st.call("DataTransfer", {"vendorId": "com.example.test", "messageId": "Echo", "data": {"a": 1}}),
                await st.call("DataTransfer", {"vendorId": "com.example.test", "messageId": "Refuse"}),
                await st.call("DataTransfer", {"vendorId": "com.example.test", "messageId": "Nope", "data": "x"}),
                await st.call("DataTransfer", {"vendorId": "com.example.test"}),
                await st.call("DataTransfer", {"vendorId": "com.unknown", "messageId": "Echo"}),
                await st.call("DataTransfer", {"vendorId": "com.example.store", "messageId": "Log", "data": [1, 2]}),
            ]

    replies = run(scenario())
    assert [r[0] for r in replies] == [3] * 6, replies
    assert replies[0][2] == {"status": "Accepted", "data": {"echo": {"a": 1}, "station_id": station.pk}}
    assert [r[2] for r in replies[1:]] == [
        {"status": "Rejected"},
        {"status": "UnknownMessageId"},
        {"status": "UnknownMessageId"},
        {"status": "UnknownVendorId"},
        {"status": "Accepted"},
    ]
    stored = list(
        DataTransferRecord.objects.filter(station=station)
        .order_by("id")
        .values_list("vendor_id", "message_id", "data", "status")
    )
    assert stored == [
        ("com.example.test", "Echo", {"a": 1}, "Accepted"),
        ("com.example.test", "Refuse", None, "Rejected"),
        ("com.example.test", "Nope", "x", "UnknownMessageId"),
        ("com.example.test", "", None, "UnknownMessageId"),
        ("com.unknown", "Echo", None, "UnknownVendorId"),
        ("com.example.store", "Log", [1, 2], "Accepted"),
    ]


def test_default_server_knows_no_vendor(live_server_ws, station_factory):
    station_factory("CS-1")

    async def scenario() -> list:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            return await st.call("DataTransfer", {"vendorId": "com.example.test", "messageId": "Echo"})

    reply = run(scenario())
    assert reply[0] == 3 and reply[2] == {"status": "UnknownVendorId"}  # never NotSupported
    assert DataTransferRecord.objects.get().status == "UnknownVendorId"


def test_csms_to_station_data_transfer_from_the_form(live_server_ws, station_factory):
    station = station_factory("CS-1")
    action, payload = command_forms.build(
        "data-transfer", {"vendor_id": "com.acme", "message_id": "Ping", "data": '{"n": 1}'}
    )
    assert (action, payload) == ("DataTransfer", {"vendorId": "com.acme", "messageId": "Ping", "data": {"n": 1}})
    assert command_forms.build("data-transfer", {"vendor_id": "com.acme", "data": "plain"})[1] == {
        "vendorId": "com.acme",
        "data": "plain",
    }

    async def scenario() -> tuple[list, int]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            command = await in_thread(
                lambda: command_send(station=ChargingStation.objects.get(pk=station.pk), action=action, payload=payload)
            )
            frame = await st.recv(10)
            await st.send_raw(json.dumps([3, frame[1], {"status": "Accepted", "data": "pong"}]))
            for _ in range(200):
                if await in_thread(lambda: Command.objects.filter(pk=command.pk, state="answered").exists()):
                    break
                await asyncio.sleep(0.05)
            return frame, command.pk

    frame, pk = run(scenario())
    assert frame[2:] == ["DataTransfer", {"vendorId": "com.acme", "messageId": "Ping", "data": {"n": 1}}]
    assert Command.objects.get(pk=pk).response == {"status": "Accepted", "data": "pong"}


def test_registry_rules_in_process(settings):
    settings.CSMS_DATA_TRANSFER_ACCEPT_VENDORS = frozenset()
    request = datatransfer.DataTransferRequest(1, "com.inproc", "M", None)
    assert datatransfer.data_transfer_answer(request).status == "UnknownVendorId"

    @datatransfer.data_transfer_handler("com.inproc")
    def any_message(req: datatransfer.DataTransferRequest) -> datatransfer.DataTransferReply:
        return datatransfer.DataTransferReply("Accepted", data=req.message_id)

    try:
        assert datatransfer.data_transfer_answer(request) == datatransfer.DataTransferReply("Accepted", data="M")
        with pytest.raises(ValueError, match="already registered"):
            datatransfer.data_transfer_handler("com.inproc")(lambda req: datatransfer.DataTransferReply("Rejected"))
    finally:
        datatransfer.data_transfer_unregister("com.inproc")
    assert datatransfer.data_transfer_answer(request).status == "UnknownVendorId"


def test_custom_data_in_any_request_is_accepted_stored_and_logged(asgi_server, station_factory):
    """TC_P_03: a station adds vendor ``customData`` to a standard request; the CSMS answers and stores the
    request as usual, and the message log keeps the custom data for the operator."""
    from stations.models import Connector, MessageLog
    from tests.stations.helpers import exchange

    station_factory("CS-1")
    custom = {"vendorId": "com.example", "mood": "sunny"}
    status = {
        "timestamp": "2026-01-01T10:00:00Z",
        "connectorStatus": "Occupied",
        "evseId": 1,
        "connectorId": 1,
        "customData": custom,
    }
    [reply] = exchange(asgi_server, "CS-1", [json.dumps([2, "cd-1", "StatusNotification", status])])
    assert reply == [3, "cd-1", {}]
    assert Connector.objects.get(evse__station__identity="CS-1", connector_id=1).status == "Occupied"
    logged = MessageLog.objects.get(message_id="cd-1", action="StatusNotification", message_type=2)
    assert logged.payload is not None and logged.payload["customData"] == custom
