"""Handshake, authentication, unknown-station policy, boot/heartbeat/status flows and duplicate connections."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from stations.models import (
    BootRecord,
    ChargingStation,
    Connection,
    Connector,
    StationEvent,
    StatusNotificationRecord,
)
from tests.conftest import LiveServer, wait_until_connections_closed
from tests.ocpp_client import BOOT, RawStation, basic_auth, run

pytestmark = pytest.mark.live


def handshake_status(server: LiveServer, identity: str, **kwargs: Any) -> int:
    """HTTP status of the refused handshake (101 when accepted)."""

    async def scenario() -> int:
        try:
            async with RawStation.connect(server.ws_url, identity, **kwargs):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return run(scenario())


# --- handshake ---------------------------------------------------------------------------------------------------


def test_subprotocol_is_negotiated(live_server_ws, station_factory):
    station_factory("CS-1")

    async def scenario() -> str | None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1", subprotocols=["ocpp1.6", "ocpp2.0.1"]) as st:
            return st.ws.subprotocol

    assert run(scenario()) == "ocpp2.0.1"
    assert Connection.objects.get().subprotocol == "ocpp2.0.1"


def test_handshake_without_ocpp201_subprotocol_is_refused(live_server_ws, station_factory):
    station_factory("CS-1")
    assert handshake_status(live_server_ws, "CS-1", subprotocols=["ocpp1.6"]) == 403
    assert handshake_status(live_server_ws, "CS-1", subprotocols=[]) == 403
    reasons = list(Connection.objects.values_list("outcome", "reason"))
    assert sorted(reasons) == [
        ("refused", "subprotocol ocpp2.0.1 not offered (offered: none)"),
        ("refused", "subprotocol ocpp2.0.1 not offered (offered: ocpp1.6)"),
    ]
    assert not ChargingStation.objects.get().is_online


def test_identity_longer_than_48_chars_is_refused(csms_server):
    server = csms_server("accept-all", CSMS_UNKNOWN_STATION_POLICY="accept")
    assert handshake_status(server, "X" * 49) == 403
    assert not ChargingStation.objects.exists()
    assert Connection.objects.get().reason == "identity must be 1 to 48 characters"


def test_identity_with_colon_is_refused_even_url_encoded(csms_server):
    server = csms_server("accept-all", CSMS_UNKNOWN_STATION_POLICY="accept")
    assert handshake_status(server, "CS%3A1") == 403
    assert Connection.objects.get().reason == "identity must not contain ':'"


def test_url_encoded_identity_is_decoded(csms_server):
    server = csms_server("accept-all", CSMS_UNKNOWN_STATION_POLICY="accept")
    assert handshake_status(server, "Depot%20North%2F7".replace("%2F", "-")) == 101
    wait_until_connections_closed()
    assert list(ChargingStation.objects.values_list("identity", flat=True)) == ["Depot North-7"]


def test_station_with_password_connects_with_correct_basic_auth(live_server_ws, station_factory):
    station = station_factory("CS-1", password="s3cret-Passw0rd")
    assert station.password_hash.startswith("station_sha256$") and "s3cret" not in station.password_hash
    assert handshake_status(live_server_ws, "CS-1", headers=basic_auth("CS-1", "s3cret-Passw0rd")) == 101


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (None, "missing HTTP Basic credentials"),
        (basic_auth("CS-1", "wrong"), "wrong password"),
        (basic_auth("CS-2", "s3cret-Passw0rd"), "Basic auth user does not match the identity"),
        ({"Authorization": "Basic !!!notbase64"}, "missing HTTP Basic credentials"),
        ({"Authorization": "Bearer abc"}, "missing HTTP Basic credentials"),
    ],
)
def test_wrong_or_missing_password_is_refused_and_logged(live_server_ws, station_factory, headers, reason):
    station_factory("CS-1", password="s3cret-Passw0rd")
    assert handshake_status(live_server_ws, "CS-1", headers=headers) == 403
    connection = Connection.objects.get()
    assert (connection.outcome, connection.reason, connection.identity) == ("refused", reason, "CS-1")
    # The log holds only what the server wrote during this test (csms_server gives each test its own view).
    assert "wrong password" in live_server_ws.log() or reason != "wrong password"


def test_unknown_station_is_refused_by_default(live_server_ws):
    assert handshake_status(live_server_ws, "NEW-1") == 403
    assert not ChargingStation.objects.exists()
    assert Connection.objects.get().reason == "unknown station (CSMS_UNKNOWN_STATION_POLICY=reject)"


def test_unknown_station_policy_pending_registers_it_pending(csms_server):
    server = csms_server("pending", CSMS_UNKNOWN_STATION_POLICY="pending")

    async def scenario() -> tuple[list, list]:
        async with RawStation.connect(server.ws_url, "NEW-1") as st:
            boot = await st.boot()
            heartbeat = await st.call("Heartbeat", {}, message_id="hb")
            return boot, heartbeat

    boot, heartbeat = run(scenario())
    assert boot[2]["status"] == "Pending"
    assert boot[2]["interval"] == 60  # CSMS_BOOT_RETRY_INTERVAL_S
    assert heartbeat[:3] == [4, "hb", "SecurityError"]
    station = ChargingStation.objects.get(identity="NEW-1")
    assert (station.registration_status, station.boot_status) == ("Pending", "Pending")


def test_unknown_station_policy_accept_registers_and_accepts(csms_server):
    server = csms_server("accept-all", CSMS_UNKNOWN_STATION_POLICY="accept")

    async def scenario() -> list:
        async with RawStation.connect(server.ws_url, "NEW-2") as st:
            await st.boot()
            return await st.call("Heartbeat", {})

    assert run(scenario())[0] == 3
    assert ChargingStation.objects.get(identity="NEW-2").boot_status == "Accepted"


def test_addstation_command_registers_a_station_with_hashed_password(transactional_db):
    from django.core.management import call_command

    call_command("addstation", "CS-9", "--password", "pw-123456789")
    station = ChargingStation.objects.get(identity="CS-9")
    assert station.security_profile == 1
    assert station.check_password("pw-123456789")
    assert not station.check_password("other")
    call_command("addstation", "CS-10", "--security-profile", "0")
    assert ChargingStation.objects.get(identity="CS-10").password_hash == ""


# --- boot, heartbeat, status ------------------------------------------------------------------------------------


def test_boot_accepted_stores_boot_data_and_answers_interval(live_server_ws, station_factory):
    station_factory("CS-1")
    boot = {
        "reason": "PowerUp",
        "chargingStation": {
            "vendorName": "ACME",
            "model": "Wallbox-1",
            "serialNumber": "SN-0001",
            "firmwareVersion": "1.2.3",
            "modem": {"iccid": "8931", "imsi": "2620"},
        },
    }

    async def scenario() -> list:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            return await st.call("BootNotification", boot)

    reply = run(scenario())
    assert reply[0] == 3 and reply[2]["status"] == "Accepted" and reply[2]["interval"] == 300
    now = datetime.now(UTC)
    sent = datetime.fromisoformat(reply[2]["currentTime"])
    assert abs((now - sent).total_seconds()) < 10 and reply[2]["currentTime"].endswith("Z")
    station = ChargingStation.objects.get()
    assert (
        station.vendor_name,
        station.model,
        station.serial_number,
        station.firmware_version,
        station.modem_iccid,
        station.modem_imsi,
        station.boot_status,
    ) == ("ACME", "Wallbox-1", "SN-0001", "1.2.3", "8931", "2620", "Accepted")
    record = BootRecord.objects.get()
    assert (record.reason, record.status) == ("PowerUp", "Accepted")


def test_rejected_station_gets_rejected_and_security_errors(live_server_ws, station_factory):
    station_factory("CS-1", registration_status="Rejected")

    async def scenario() -> tuple[list, list]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            return await st.boot(), await st.call(
                "StatusNotification",
                {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
            )

    boot, status = run(scenario())
    assert boot[2]["status"] == "Rejected" and boot[2]["interval"] == 60
    assert status[2] == "SecurityError"
    assert not Connector.objects.exists()


def test_operator_accepting_a_pending_station_takes_effect_at_next_boot(live_server_ws, station_factory):
    station = station_factory("CS-1", registration_status="Pending")

    async def boot_and_heartbeat() -> tuple[str, int]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            boot = await st.boot()
            heartbeat = await st.call("Heartbeat", {})
            return boot[2]["status"], heartbeat[0]

    assert run(boot_and_heartbeat()) == ("Pending", 4)
    ChargingStation.objects.filter(pk=station.pk).update(registration_status="Accepted")
    wait_until_connections_closed()
    assert run(boot_and_heartbeat()) == ("Accepted", 3)


def test_accepted_station_reconnecting_without_boot_is_still_accepted(live_server_ws, station_factory):
    station_factory("CS-1")

    async def first() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()

    async def second() -> list:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            return await st.call("Heartbeat", {})

    run(first())
    wait_until_connections_closed()
    assert run(second())[0] == 3


def test_heartbeat_answers_utc_time_and_updates_last_seen(live_server_ws, station_factory):
    station_factory("CS-1")

    async def scenario() -> list:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            return await st.call("Heartbeat", {})

    before = datetime.now(UTC)
    reply = run(scenario())
    current = datetime.fromisoformat(reply[2]["currentTime"])
    assert current.utcoffset() == timedelta(0)
    assert abs((current - before).total_seconds()) < 10
    station = ChargingStation.objects.get()
    assert station.last_seen_at is not None
    assert station.last_seen_at >= before.replace(microsecond=0)


def test_status_notifications_create_evse_connector_and_history(live_server_ws, station_factory):
    station_factory("CS-1")

    def status(ts: str, value: str, evse: int = 1, connector: int = 1) -> dict:
        return {"timestamp": ts, "connectorStatus": value, "evseId": evse, "connectorId": connector}

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            for payload in [
                status("2026-01-01T10:00:00Z", "Available"),
                status("2026-01-01T10:05:00Z", "Occupied"),
                status("2026-01-01T10:05:00Z", "Occupied"),  # a retry with a new message id
                status("2026-01-01T10:01:00Z", "Faulted"),  # late: older than what we hold
                status("2026-01-01T10:00:00Z", "Available", evse=2),
            ]:
                assert (await st.call("StatusNotification", payload))[0] == 3

    run(scenario())
    connectors = {(c.evse.evse_id, c.connector_id): c.status for c in Connector.objects.select_related("evse")}
    assert connectors == {(1, 1): "Occupied", (2, 1): "Available"}
    history = list(
        StatusNotificationRecord.objects.filter(connector__evse__evse_id=1)
        .order_by("timestamp")
        .values_list("status", flat=True)
    )
    assert history == ["Available", "Faulted", "Occupied"]


def test_notify_event_is_stored_once(live_server_ws, station_factory):
    station_factory("CS-1")
    payload = {
        "generatedAt": "2026-01-01T10:00:00Z",
        "seqNo": 0,
        "tbc": False,
        "eventData": [
            {
                "eventId": 7,
                "timestamp": "2026-01-01T09:59:00Z",
                "trigger": "Alerting",
                "actualValue": "true",
                "techCode": "E42",
                "eventNotificationType": "HardWiredNotification",
                "cleared": False,
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "Problem"},
            }
        ],
    }

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            assert (await st.call("NotifyEvent", payload, message_id="e1"))[0] == 3
            assert (await st.call("NotifyEvent", payload, message_id="e2"))[0] == 3

    run(scenario())
    event = StationEvent.objects.get()
    assert (event.event_id, event.trigger, event.tech_code, event.actual_value, event.cleared) == (
        7,
        "Alerting",
        "E42",
        "true",
        False,
    )
    assert event.component == {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}


# --- connection state and duplicates -----------------------------------------------------------------------------


def test_connect_and_disconnect_are_recorded(live_server_ws, station_factory):
    station_factory("CS-1")

    async def scenario() -> bool:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1"):
            return await asyncio.to_thread(lambda: ChargingStation.objects.get().is_online)

    assert run(scenario()) is True
    wait_until_connections_closed()
    station = ChargingStation.objects.get()
    assert station.is_online is False and station.channel_name == ""
    connection = Connection.objects.get()
    assert (connection.outcome, connection.close_code) == ("accepted", 1000)
    assert connection.remote_addr.startswith("127.0.0.1:") and connection.disconnected_at is not None


def test_second_connection_with_same_identity_replaces_the_first(live_server_ws, station_factory):
    station_factory("CS-1")

    async def scenario() -> tuple[int | None, list]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as old:
            await old.boot()
            async with RawStation.connect(live_server_ws.ws_url, "CS-1") as new:
                with pytest.raises(ConnectionClosed):
                    await old.recv(timeout=10)
                # The new connection works; the station stays online after the old one closed.
                reply = await new.call("Heartbeat", {})
                online = await asyncio.to_thread(lambda: ChargingStation.objects.get().is_online)
                assert online is True
                return old.ws.close_code, reply

    close_code, reply = run(scenario())
    assert close_code == 4001
    assert reply[0] == 3
    wait_until_connections_closed()
    first, second = Connection.objects.order_by("id")
    assert first.replaced_by_id == second.pk
    assert first.close_code == 4001 and first.disconnected_at is not None


def test_ocpp_package_client_boots_heartbeats_and_reports_status(live_server_ws, station_factory):
    """The same flows driven by the reference `ocpp` library's ChargePoint, as a real station would."""
    import websockets
    from ocpp.v201 import ChargePoint, call

    station_factory("LIB-1")

    async def scenario() -> tuple[str, str]:
        url = f"{live_server_ws.ws_url}/ocpp/LIB-1"
        async with websockets.connect(url, subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
            cp = ChargePoint("LIB-1", ws)
            task = asyncio.create_task(cp.start())
            try:
                boot = await cp.call(
                    call.BootNotification(charging_station={"vendor_name": "Lib", "model": "Ref"}, reason="PowerUp")
                )
                heartbeat = await cp.call(call.Heartbeat())
                await cp.call(
                    call.StatusNotification(
                        timestamp="2026-01-01T00:00:00Z", connector_status="Available", evse_id=1, connector_id=1
                    )
                )
            finally:
                task.cancel()
            return boot.status, heartbeat.current_time

    status, current_time = run(scenario())
    assert status == "Accepted" and current_time.endswith("Z")
    assert Connector.objects.get().status == "Available"
    assert BootRecord.objects.get().vendor_name == "Lib"


def test_unparseable_boot_does_not_kill_the_server(live_server_ws, station_factory):
    station_factory("CS-1")

    async def scenario() -> list:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.send_raw(json.dumps([2, "b1", "BootNotification", {"reason": "PowerUp"}]))
            await st.recv()
            return await st.boot()

    assert run(scenario())[2]["status"] == "Accepted"
    assert BOOT["chargingStation"]["model"] == ChargingStation.objects.get().model


def test_dashboard_socket_refuses_anonymous_browsers(live_server_ws):
    async def scenario() -> int:
        import websockets

        try:
            async with websockets.connect(
                f"{live_server_ws.ws_url}/ws/dashboard/", origin=Origin(f"http://127.0.0.1:{live_server_ws.port}")
            ):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert run(scenario()) == 403
