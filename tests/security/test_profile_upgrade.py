"""The security-profile upgrade flow over the wire: SetNetworkProfile, then NetworkConfigurationPriority, then Reset,
each sent when the station accepted the step before; a rejected step stops it. (Both profiles accepted until the
first connection on the new one: tests/security/test_trusted_proxies.py and test_transport_tls.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from security.upgrade import security_profile_upgrade_start
from stations.models import ChargingStation, Command, NetworkProfile
from tests.conftest import in_thread, wait_until_async
from tests.ocpp_client import RawStation, basic_auth, run
from tests.security import pki
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.live

PASSWORD = "correct-horse-battery-42"


async def answer(st: RawStation, payload: dict[str, Any]) -> list[Any]:
    frame = await st.recv()
    assert frame[0] == 2, frame
    await st.send_raw(json.dumps([3, frame[1], payload]))
    return frame


def start(server: Any, network_status: str) -> list[list[Any]]:
    station = ChargingStation(identity="CS-UP", security_profile=1)
    station.set_password(PASSWORD)
    station.save()

    async def scenario() -> list[list[Any]]:
        async with RawStation.connect(server.ws_url, "CS-UP", headers=basic_auth("CS-UP", PASSWORD)) as st:
            await st.boot()
            await wait_online("CS-UP")
            await in_thread(
                lambda: security_profile_upgrade_start(
                    station=ChargingStation.objects.get(identity="CS-UP"),
                    profile=2,
                    csms_url="wss://csms.example.com/ocpp/CS-UP",
                    configuration_slot=2,
                )
            )
            frames = [await answer(st, {"status": network_status})]
            if network_status == "Accepted":
                result = {
                    "attributeStatus": "Accepted",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "NetworkConfigurationPriority"},
                }
                frames.append(await answer(st, {"setVariableResult": [result]}))
                frames.append(await answer(st, {"status": "Accepted"}))
            assert await wait_until_async(lambda: not Command.objects.exclude(state="answered").exists())
            return frames

    return run(scenario())


def test_upgrade_steps_follow_each_accepted_answer(live_server_ws: Any) -> None:
    network, priority, reset = start(live_server_ws, "Accepted")
    assert network[2:] == [
        "SetNetworkProfile",
        {
            "configurationSlot": 2,
            "connectionData": {
                "ocppVersion": "OCPP20",
                "ocppTransport": "JSON",
                "ocppCsmsUrl": "wss://csms.example.com/ocpp/CS-UP",
                "messageTimeout": 30,
                "securityProfile": 2,
                "ocppInterface": "Wired0",
            },
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
    station = ChargingStation.objects.get(identity="CS-UP")
    assert (station.security_profile, station.pending_security_profile) == (1, 2)  # until it connects over TLS


def test_a_rejected_network_profile_sends_nothing_more(live_server_ws: Any) -> None:
    (network,) = start(live_server_ws, "Rejected")
    assert network[2] == "SetNetworkProfile"
    assert list(Command.objects.values_list("action", flat=True)) == ["SetNetworkProfile"]


def test_upgrade_refuses_a_profile_2_or_3_url_without_tls(transactional_db: None) -> None:
    station = ChargingStation.objects.create(identity="CS-X")
    with pytest.raises(ValueError, match="needs a wss:// URL"):
        security_profile_upgrade_start(station=station, profile=3, csms_url="ws://x/ocpp/CS-X", configuration_slot=1)
    assert ChargingStation.objects.get().pending_security_profile is None


def test_upgrade_with_the_root_installs_it_before_the_network_profile(live_server_ws: Any) -> None:
    station = ChargingStation(identity="CS-UP", security_profile=1)
    station.set_password(PASSWORD)
    station.save()
    root_pem = pki.pem(pki.certificate("CSMS Root", key=pki.ec_key(), ca=True))

    async def scenario() -> list[list[Any]]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-UP", headers=basic_auth("CS-UP", PASSWORD)) as st:
            await st.boot()
            await wait_online("CS-UP")
            await in_thread(
                lambda: security_profile_upgrade_start(
                    station=ChargingStation.objects.get(identity="CS-UP"),
                    profile=2,
                    csms_url="wss://csms.example.com/ocpp/CS-UP",
                    configuration_slot=2,
                    csms_root_pem=root_pem,
                )
            )
            frames = [await answer(st, {"status": "Accepted"})]
            frames.append(await answer(st, {"status": "Rejected"}))
            assert await wait_until_async(lambda: not Command.objects.exclude(state="answered").exists())
            return frames

    root, network = run(scenario())
    assert root[2:] == ["InstallCertificate", {"certificateType": "CSMSRootCertificate", "certificate": root_pem}]
    assert network[2] == "SetNetworkProfile"
    assert network[3]["configurationSlot"] == 2 and network[3]["connectionData"]["securityProfile"] == 2
    assert list(Command.objects.order_by("id").values_list("action", flat=True)) == [
        "InstallCertificate",
        "SetNetworkProfile",
    ]
    assert NetworkProfile.objects.get().status == "Rejected"  # the station's answer, and nothing sent after it
