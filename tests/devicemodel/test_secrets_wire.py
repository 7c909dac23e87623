"""Secrets sent to stations (WriteOnly variables such as SecurityCtrlr.BasicAuthPassword, SetNetworkProfile's
VPN/APN passwords) and WriteOnly values stations report reach the wire but are stored nowhere: not in the
Command's request, the message log, the device model, nor any other table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.apps import apps

from devicemodel.models import VariableAttribute
from stations.commands import command_send
from stations.models import ChargingStation, Command, MessageLog
from tests.conftest import in_thread, wait_until_async
from tests.devicemodel.factories import notify_report, report_entry
from tests.ocpp_client import run
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "BasicAuthSecret-4711-abcdef"
CUSTOM = "CustomWriteOnlySecret-42"
APN = "ApnSecret-987"
VPN = "VpnSecret-654"
VPN_KEY = "VpnKey-321"
SECRETS = (PASSWORD, CUSTOM, APN, VPN, VPN_KEY)


def stored_anywhere(*needles: str) -> list[str]:
    """Every table of ours, every row as text: which needles appear."""
    found = set()
    for model in apps.get_models():
        if model._meta.app_label not in {"csms", "stations", "transactions", "devicemodel", "security", "webhooks"}:
            continue
        for row in model._default_manager.values():
            text = json.dumps(row, default=str)
            found |= {f"{n} in {model.__name__}" for n in needles if n in text}
    return sorted(found)


def test_secrets_go_to_the_station_and_are_stored_nowhere(asgi_server, station_factory):
    station = station_factory("CS-1")

    def setting(component: str, variable: str, value: str) -> dict[str, Any]:
        return {"component": {"name": component}, "variable": {"name": variable}, "attributeValue": value}

    set_variables = {
        "setVariableData": [
            setting("SecurityCtrlr", "BasicAuthPassword", PASSWORD),
            setting("VendorCtrlr", "Token", CUSTOM),
            setting("OCPPCommCtrlr", "HeartbeatInterval", "120"),
        ]
    }
    network_profile = {
        "configurationSlot": 1,
        "connectionData": {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": "wss://csms.example.com/ocpp",
            "messageTimeout": 30,
            "securityProfile": 2,
            "ocppInterface": "Wireless0",
            "apn": {"apn": "internet", "apnPassword": APN, "simPin": 90817263, "apnAuthentication": "AUTO"},
            "vpn": {"server": "vpn.example.com", "user": "cs", "password": VPN, "key": VPN_KEY, "type": "IPSec"},
        },
    }

    async def scenario() -> list[dict[str, Any]]:
        on_wire = []
        async with asgi_server.station("CS-1") as st:
            assert (await st.boot())[2]["status"] == "Accepted"
            # The station reports VendorCtrlr.Token as WriteOnly (with a value it should not send): scrubbed.
            report = [
                report_entry("VendorCtrlr", "Token", CUSTOM, mutability="WriteOnly", data_type="string"),
                report_entry("OCPPCommCtrlr", "HeartbeatInterval", "300"),
            ]
            assert (await st.call("NotifyReport", notify_report(7, 0, False, report)))[0] == 3
            await wait_online("CS-1")
            live = await in_thread(lambda: ChargingStation.objects.get(identity="CS-1"))
            for action, payload in (("SetVariables", set_variables), ("SetNetworkProfile", network_profile)):
                command = await in_thread(lambda a=action, p=payload: command_send(station=live, action=a, payload=p))
                call = await st.recv()
                assert call[0] == 2 and call[2] == action
                on_wire.append(call[3])
                if action == "SetVariables":
                    result = [
                        {"attributeStatus": "Accepted", "component": d["component"], "variable": d["variable"]}
                        for d in call[3]["setVariableData"]
                    ]
                    await st.send_raw(json.dumps([3, call[1], {"setVariableResult": result}]))
                else:
                    await st.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))

                def answered(pk: int = command.pk) -> bool:
                    return Command.objects.get(pk=pk).state == "answered"

                assert await wait_until_async(answered, timeout_s=10)
        return on_wire

    wire_set, wire_profile = run(scenario())
    # The station got the real values.
    assert [d["attributeValue"] for d in wire_set["setVariableData"]] == [PASSWORD, CUSTOM, "120"]
    assert wire_profile == network_profile
    # Stored: [redacted] in their place; the harmless value as it was.
    stored = Command.objects.get(action="SetVariables").request
    assert [d["attributeValue"] for d in stored["setVariableData"]] == ["[redacted]", "[redacted]", "120"]
    profile = Command.objects.get(action="SetNetworkProfile").request["connectionData"]
    assert (profile["apn"]["apnPassword"], profile["vpn"]["password"], profile["vpn"]["key"]) == ("[redacted]",) * 3
    assert profile["vpn"]["user"] == "cs"
    assert "simPin" not in profile["apn"]  # a number: left out of what is stored (it is optional)
    logged = MessageLog.objects.get(action="SetNetworkProfile", direction="out", message_type=2).payload
    assert logged is not None and logged["connectionData"] == profile
    sent_log = MessageLog.objects.get(action="SetVariables", direction="out", message_type=2).payload
    assert sent_log == stored
    # The accepted secrets are not stored as values either; HeartbeatInterval is.
    assert VariableAttribute.objects.get(variable__name="HeartbeatInterval").value == "120"
    assert VariableAttribute.objects.get(variable__name="Token").value is None
    assert stored_anywhere(*SECRETS) == []
    assert station.pk


def test_notify_event_values_of_write_only_variables_are_redacted_in_the_log_and_stored_nowhere(
    asgi_server, station_factory
):
    station_factory("CS-EV")

    def event(event_id: int, component: str, variable: str, value: str) -> dict[str, Any]:
        return {"eventId": event_id, "timestamp": "2026-03-01T10:00:00Z", "trigger": "Delta", "actualValue": value,
                "eventNotificationType": "CustomMonitor", "component": {"name": component},
                "variable": {"name": variable}}  # fmt: skip

    notify = {
        "generatedAt": "2026-03-01T10:00:01Z",
        "seqNo": 0,
        "eventData": [
            event(1, "VendorCtrlr", "Token", CUSTOM),  # WriteOnly in the station's reported model
            event(2, "SecurityCtrlr", "BasicAuthPassword", PASSWORD),  # a secret before any report says so
            event(3, "OCPPCommCtrlr", "HeartbeatInterval", "300"),
        ],
    }

    async def scenario() -> None:
        async with asgi_server.station("CS-EV") as st:
            assert (await st.boot())[2]["status"] == "Accepted"
            report = [report_entry("VendorCtrlr", "Token", "", mutability="WriteOnly", data_type="string")]
            assert (await st.call("NotifyReport", notify_report(7, 0, False, report)))[0] == 3
            assert (await st.call("NotifyEvent", notify))[0] == 3

    run(scenario())
    from stations.models import StationEvent

    logged = MessageLog.objects.get(action="NotifyEvent", direction="in").payload
    assert logged is not None
    assert [e["actualValue"] for e in logged["eventData"]] == ["[redacted]", "[redacted]", "300"]
    assert [e["component"]["name"] for e in logged["eventData"]] == ["VendorCtrlr", "SecurityCtrlr", "OCPPCommCtrlr"]
    assert list(StationEvent.objects.order_by("event_id").values_list("event_id", "actual_value")) == [
        (1, ""),
        (2, ""),
        (3, "300"),
    ]
    assert VariableAttribute.objects.get(variable__name="Token").value is None
    assert stored_anywhere(PASSWORD, CUSTOM) == []


def test_schema_invalid_messages_keep_their_secrets_out_of_the_log(asgi_server, station_factory):
    """A CALLERROR'd NotifyEvent / NotifyReport is logged for the operator, but never with a WriteOnly value: redacted
    where the redactor can read the payload, not kept where it cannot."""
    station_factory("CS-BAD")
    bad_event = {  # no generatedAt: a schema violation
        "seqNo": 0,
        "eventData": [{"eventId": 1, "timestamp": "2026-03-01T10:00:00Z", "trigger": "Delta", "actualValue": PASSWORD,
                       "eventNotificationType": "CustomMonitor", "component": {"name": "SecurityCtrlr"},
                       "variable": {"name": "BasicAuthPassword"}}],
    }  # fmt: skip
    bad_report = {  # variableAttribute an object, not an array: neither the schema nor the redactor can read it
        "requestId": 3,
        "generatedAt": "2026-03-01T10:00:01Z",
        "seqNo": 0,
        "reportData": [{"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
                        "variableAttribute": {"value": PASSWORD, "mutability": "WriteOnly"}}],
    }  # fmt: skip

    async def scenario() -> None:
        async with asgi_server.station("CS-BAD") as st:
            assert (await st.boot())[2]["status"] == "Accepted"
            assert (await st.call("NotifyEvent", bad_event))[0] == 4
            assert (await st.call("NotifyReport", bad_report))[0] == 4

    run(scenario())
    event_log = MessageLog.objects.get(action="NotifyEvent", direction="in")
    assert event_log.error_code in {"FormatViolation", "OccurrenceConstraintViolation"}
    assert event_log.payload is not None
    assert event_log.payload["eventData"][0]["actualValue"] == "[redacted]"
    assert event_log.payload["eventData"][0]["variable"] == {"name": "BasicAuthPassword"}
    report_log = MessageLog.objects.get(action="NotifyReport", direction="in")
    assert report_log.payload is not None
    assert set(report_log.payload) == {"unlogged"}
    assert "BasicAuthSecret" not in report_log.error_description
    assert stored_anywhere(PASSWORD) == []
