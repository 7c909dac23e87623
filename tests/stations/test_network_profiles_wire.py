"""SetNetworkProfile's answer recorded per station and configuration slot (TC_B_43), and the migration to another
CSMS as one flow of exact frames (TC_B_45): a live server and a simulated station over a real socket."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from stations.commands import command_send
from stations.models import ChargingStation, Command, NetworkProfile
from stations.network_profiles import csms_migration_start
from tests.conftest import in_thread, wait_until_async
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online
from tests.stations.test_remote_control_wire import answer_next, operator, page

pytestmark = pytest.mark.live


def connection_data(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": url,
        "messageTimeout": 30,
        "securityProfile": 1,
        "ocppInterface": "Wired0",
        **extra,
    }


APN = {"apn": "internet", "apnUserName": "u", "apnPassword": "apn-secret-42", "apnAuthentication": "AUTO"}


def test_set_network_profile_answers_are_recorded_per_slot(live_server_ws: Any, station_factory: Any) -> None:
    station = station_factory("CS-1")
    user, _ = operator()
    answers: dict[int, dict[str, Any]] = {1: {"status": "Rejected", "statusInfo": {"reasonCode": "NoSlot"}}}
    answers[2] = {"status": "Failed"}
    answers[3] = {"status": "Accepted"}

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            for slot, answer in answers.items():
                data = connection_data(f"ws://csms{slot}.example.com/ocpp/CS-1", apn=APN)
                payload = {"configurationSlot": slot, "connectionData": data}
                await in_thread(lambda p=payload: command_send(station=station, action="SetNetworkProfile", payload=p))
                call = await answer_next(st, answer)
                assert call[2:] == ["SetNetworkProfile", payload]  # the password reaches the station
            assert await wait_until_async(lambda: not Command.objects.exclude(state="answered").exists())

    run(scenario())
    rows = {p.configuration_slot: p for p in NetworkProfile.objects.filter(station=station)}
    assert {slot: (p.status, p.status_reason) for slot, p in rows.items()} == {
        1: ("Rejected", "NoSlot"),
        2: ("Failed", ""),
        3: ("Accepted", ""),
    }
    assert rows[3].connection_data["ocppCsmsUrl"] == "ws://csms3.example.com/ocpp/CS-1"
    assert rows[3].connection_data["apn"]["apnPassword"] == "[redacted]"
    assert not any(p.migrating for p in rows.values())
    # A plain SetNetworkProfile chains nothing (neither upgrade nor migration).
    assert list(Command.objects.values_list("action", flat=True)) == ["SetNetworkProfile"] * 3
    html = page(user, "/stations/CS-1/")
    assert "apn-secret-42" not in html
    rejected = html.split('data-testid="network-profile-1"')[1].split("</tr>")[0]
    assert "Rejected (NoSlot)" in rejected and "ws://csms1.example.com/ocpp/CS-1" in rejected
    assert "Failed" in html.split('data-testid="network-profile-2"')[1].split("</tr>")[0]
    assert "Accepted" in html.split('data-testid="network-profile-3"')[1].split("</tr>")[0]


def test_migration_to_a_new_csms_sends_profile_priority_and_reset_in_order(
    live_server_ws: Any, station_factory: Any
) -> None:
    station = station_factory("CS-1")
    priority_ok = {
        "attributeStatus": "Accepted",
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "NetworkConfigurationPriority"},
    }

    async def scenario() -> list[list[Any]]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            await in_thread(
                lambda: csms_migration_start(
                    station=ChargingStation.objects.get(pk=station.pk),
                    csms_url="ws://new-csms.example.com/ocpp/CS-1",
                    configuration_slot=2,
                )
            )
            frames = [await answer_next(st, {"status": "Accepted"})]
            assert await wait_until_async(lambda: NetworkProfile.objects.get().status == "Accepted")
            frames.append(await answer_next(st, {"setVariableResult": [priority_ok]}))
            frames.append(await answer_next(st, {"status": "Accepted"}))
            assert await wait_until_async(lambda: not Command.objects.exclude(state="answered").exists())
            return frames

    network, priority, reset = run(scenario())
    assert network[2:] == [
        "SetNetworkProfile",
        {  # the station's own security profile (the factory's 0)
            "configurationSlot": 2,
            "connectionData": connection_data("ws://new-csms.example.com/ocpp/CS-1", securityProfile=0),
        },
    ]
    assert priority[2:] == [
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": "2",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "NetworkConfigurationPriority"},
                }
            ]
        },
    ]
    assert reset[2:] == ["Reset", {"type": "OnIdle"}]
    assert list(Command.objects.order_by("id").values_list("action", flat=True)) == [
        "SetNetworkProfile",
        "SetVariables",
        "Reset",
    ]
    profile = NetworkProfile.objects.get()
    assert (profile.configuration_slot, profile.status, profile.migrating) == (2, "Accepted", False)
    assert ChargingStation.objects.get(pk=station.pk).reset_state == "awaiting_reboot"


def test_csms_migrate_command_is_refused_while_an_upgrade_is_pending(transactional_db: None) -> None:
    ChargingStation.objects.create(identity="CS-X", pending_security_profile=2)
    with pytest.raises(CommandError, match="upgrade is pending"):
        call_command("csms_migrate", "CS-X", "--url", "wss://new/ocpp/CS-X", "--slot", "1")
    assert not Command.objects.exists() and not NetworkProfile.objects.exists()
    ChargingStation.objects.filter(identity="CS-X").update(pending_security_profile=None)
    call_command("csms_migrate", "CS-X", "--url", "ws://new/ocpp/CS-X", "--slot", "3", stdout=io.StringIO())
    profile = NetworkProfile.objects.get()  # an offline station: the command waits, the slot is migrating
    assert (profile.configuration_slot, profile.migrating, profile.connection_data["ocppCsmsUrl"]) == (
        3,
        True,
        "ws://new/ocpp/CS-X",
    )
