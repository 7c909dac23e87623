"""Remote control and availability (blocks F and G) end to end: a live server, a simulated station over a real
socket, real PostgreSQL. What a command's answer means is stored by its answer hook, whichever door sent it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.authtoken.models import Token

from csms.roles import roles_ensure
from stations.commands import command_send, triggerable_messages
from stations.models import ChargingStation, Command, Connector, Evse, ResetState
from tests.api_client import api
from tests.conftest import in_thread
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online
from tests.transactions.factories import tx_event
from transactions.models import ChargingTransaction

pytestmark = pytest.mark.live


def operator() -> tuple[User, str]:
    roles_ensure()
    user = User.objects.create_user("op", password="pw")
    user.groups.add(Group.objects.get(name="operator"))
    return user, Token.objects.create(user=user).key


async def answer_next(st: RawStation, payload: dict[str, Any]) -> list[Any]:
    frame = await st.recv(10)
    assert frame[0] == 2, frame
    await st.send_raw(json.dumps([3, frame[1], payload]))
    return frame


async def until(predicate: Any, timeout_s: float = 10) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if value := await in_thread(predicate):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def send(station_pk: int, action: str, payload: dict[str, Any]) -> Command:
    return command_send(station=ChargingStation.objects.get(pk=station_pk), action=action, payload=payload)


def finished(pk: int) -> bool:
    return Command.objects.get(pk=pk).is_final


def page(user: User, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_get_transaction_status_is_shown_on_the_session(live_server_ws, station_factory):
    station = station_factory("CS-1")
    user, token = operator()

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            started = await st.call("TransactionEvent", tx_event("Started", 0, "2026-01-01T10:00:00Z", "TX-Q"))
            assert started[0] == 3
            # From the API's commands door: the answer hook stores it on the session all the same.
            code, body = await asyncio.to_thread(
                api,
                live_server_ws.http_url,
                "POST",
                "/api/v1/stations/CS-1/commands/",
                {"action": "GetTransactionStatus", "payload": {"transactionId": "TX-Q"}},
                token,
            )
            assert code == 202, body
            call = await answer_next(st, {"ongoingIndicator": True, "messagesInQueue": True})
            assert call[2:] == ["GetTransactionStatus", {"transactionId": "TX-Q"}]
            await until(lambda: finished(body["id"]))
            # Without a transactionId the answer is about the whole queue: the session keeps what it had.
            other = await in_thread(lambda: send(station.pk, "GetTransactionStatus", {}))
            await answer_next(st, {"messagesInQueue": False})
            await until(lambda: finished(other.pk))
            # A stop request, refused by the station: shown on the session it was about.
            stop = await in_thread(lambda: send(station.pk, "RequestStopTransaction", {"transactionId": "TX-Q"}))
            await answer_next(st, {"status": "Rejected"})
            await until(lambda: finished(stop.pk))

    run(scenario())
    txn = ChargingTransaction.objects.get(transaction_id="TX-Q")
    assert (txn.ongoing_indicator, txn.messages_in_queue) == (True, True) and txn.status_checked_at is not None
    code, listed = api(live_server_ws.http_url, "GET", f"/api/v1/transactions/{txn.pk}/", token=token)
    assert code == 200 and (listed["messages_in_queue"], listed["ongoing_indicator"]) == (True, True)
    assert listed["status_checked_at"]
    html = page(user, f"/sessions/{txn.pk}/")
    assert "the station still holds events of it" in html
    stops = html.split('data-testid="session-stop-requests">')[1].split("</dd>")[0]
    assert "answered Rejected" in stops


def test_change_availability_accepted_scheduled_rejected(live_server_ws, station_factory):
    station = station_factory("CS-1")
    user, _ = operator()

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            # Accepted on a connector: applied at once.
            c = await in_thread(
                lambda: send(
                    station.pk,
                    "ChangeAvailability",
                    {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 1}},
                )
            )
            await answer_next(st, {"status": "Accepted"})
            await until(lambda: finished(c.pk))
            # Scheduled on EVSE 2: pending until a connector of it reports Unavailable.
            c = await in_thread(
                lambda: send(station.pk, "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 2}})
            )
            await answer_next(st, {"status": "Scheduled"})
            await until(lambda: finished(c.pk))
            assert await in_thread(lambda: Evse.objects.get(station=station, evse_id=2).availability_scheduled)
            status = {"timestamp": "2026-01-01T10:00:00Z", "connectorStatus": "Occupied", "evseId": 2, "connectorId": 1}
            await st.call("StatusNotification", status)
            assert await in_thread(lambda: Evse.objects.get(station=station, evse_id=2).availability_scheduled)
            await st.call(
                "StatusNotification", status | {"timestamp": "2026-01-01T10:05:00Z", "connectorStatus": "Unavailable"}
            )
            # Rejected for the whole station: nothing changes.
            c = await in_thread(lambda: send(station.pk, "ChangeAvailability", {"operationalStatus": "Inoperative"}))
            await answer_next(st, {"status": "Rejected", "statusInfo": {"reasonCode": "Busy"}})
            await until(lambda: finished(c.pk))
            # Scheduled for the whole station: pending until its next boot.
            c = await in_thread(lambda: send(station.pk, "ChangeAvailability", {"operationalStatus": "Inoperative"}))
            await answer_next(st, {"status": "Scheduled"})
            await until(lambda: finished(c.pk))

    run(scenario())
    connector = Connector.objects.get(evse__station=station, evse__evse_id=1, connector_id=1)
    assert (connector.intended_operational, connector.availability_scheduled) == ("Inoperative", "")
    evse2 = Evse.objects.get(station=station, evse_id=2)
    assert (evse2.intended_operational, evse2.availability_scheduled) == ("Inoperative", "")
    fresh = ChargingStation.objects.get(pk=station.pk)
    assert (fresh.intended_operational, fresh.availability_scheduled) == ("", "Inoperative")
    html = page(user, "/stations/CS-1/")
    assert "Inoperative scheduled" in html and 'data-testid="availability-connector-1-1">Inoperative' in html
    last = html.split('data-testid="last-ChangeAvailability"')[1].split("</tr>")[0]
    assert "Scheduled" in last  # the last one sent

    async def reboot() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            assert (await st.boot())[0] == 3

    run(reboot())
    fresh = ChargingStation.objects.get(pk=station.pk)
    assert (fresh.intended_operational, fresh.availability_scheduled) == ("Inoperative", "")


def test_reset_scheduled_is_confirmed_by_the_next_boot(live_server_ws, station_factory):
    station = station_factory("CS-1")
    user, _ = operator()

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            c = await in_thread(lambda: send(station.pk, "Reset", {"type": "OnIdle"}))
            await answer_next(st, {"status": "Scheduled"})
            await until(lambda: finished(c.pk))
            # An EVSE reset reboots no station: it leaves the station's reset state alone.
            c = await in_thread(lambda: send(station.pk, "Reset", {"type": "Immediate", "evseId": 1}))
            await answer_next(st, {"status": "Accepted"})
            await until(lambda: finished(c.pk))
        assert await in_thread(lambda: ChargingStation.objects.get(pk=station.pk).reset_state) == "awaiting_reboot"
        assert "awaiting the reboot" in await in_thread(lambda: page(user, "/stations/CS-1/"))
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            assert (await st.boot({"reason": "ScheduledReset", "chargingStation": {"model": "M", "vendorName": "V"}}))[
                0
            ] == 3

    run(scenario())
    fresh = ChargingStation.objects.get(pk=station.pk)
    assert fresh.reset_state == ResetState.CONFIRMED and fresh.reset_confirmed_at is not None
    assert fresh.reset_requested_at is not None and fresh.reset_confirmed_at > fresh.reset_requested_at
    assert "confirmed by the boot" in page(user, "/stations/CS-1/")

    async def rejected() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            c = await in_thread(lambda: send(station.pk, "Reset", {"type": "Immediate"}))
            await answer_next(st, {"status": "Rejected"})
            await until(lambda: finished(c.pk))

    run(rejected())
    fresh = ChargingStation.objects.get(pk=station.pk)
    assert fresh.reset_state == ResetState.REJECTED and fresh.reset_confirmed_at is None


def test_unlock_and_clear_cache_outcomes_on_the_station_page(live_server_ws, station_factory):
    station = station_factory("CS-1")
    user, _ = operator()

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            # The dashboard's form door.
            client = Client()
            await in_thread(lambda: client.force_login(user))
            posted = await in_thread(
                lambda: client.post(
                    "/stations/CS-1/commands/", {"form": "unlock-connector", "evse_id": "1", "connector_id": "1"}
                )
            )
            assert posted.status_code == 200
            call = await answer_next(st, {"status": "UnlockFailed"})
            assert call[2:] == ["UnlockConnector", {"evseId": 1, "connectorId": 1}]
            c = await in_thread(lambda: send(station.pk, "ClearCache", {}))
            await answer_next(st, {"status": "Accepted"})
            await until(lambda: finished(c.pk))
            await until(lambda: Command.objects.filter(action="UnlockConnector", state="answered").exists())

    run(scenario())
    html = page(user, "/stations/CS-1/")
    unlock = html.split('data-testid="last-UnlockConnector"')[1].split("</tr>")[0]
    assert "UnlockFailed" in unlock and "answered" in unlock
    clear = html.split('data-testid="last-ClearCache"')[1].split("</tr>")[0]
    assert "Accepted" in clear


def test_trigger_message_only_for_handled_messages(live_server_ws, station_factory, monkeypatch):
    from csms.ocpp import actions, router
    from stations.commands import CommandValidationError, command_send

    station = station_factory("CS-1")
    user, token = operator()
    offered = triggerable_messages()
    handled = router.registered_actions()
    # Offered exactly when the message it makes the station send has a handler.
    assert offered == [value for value, target in actions.TRIGGER_TARGETS.items() if target in handled]
    assert {"BootNotification", "Heartbeat", "StatusNotification", "MeterValues", "TransactionEvent"} <= set(offered)
    assert {"LogStatusNotification", "SignChargingStationCertificate", "SignV2GCertificate"} <= set(offered)

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            c = await in_thread(lambda: send(station.pk, "TriggerMessage", {"requestedMessage": "Heartbeat"}))
            call = await answer_next(st, {"status": "Accepted"})
            assert call[2:] == ["TriggerMessage", {"requestedMessage": "Heartbeat"}]
            await until(lambda: finished(c.pk))

    run(scenario())
    html = page(user, "/stations/CS-1/")
    options = html.split('name="requested_message">')[1].split("</select>")[0]
    assert all(f"<option>{value}</option>" in options for value in offered)
    # A message without a handler (here: SignCertificate's taken away) is refused before anything is stored or sent.
    monkeypatch.setattr(router, "registered_actions", lambda: handled - {"SignCertificate"})
    with pytest.raises(CommandValidationError, match="does not handle SignCertificate"):
        command_send(station=station, action="TriggerMessage", payload={"requestedMessage": "SignV2GCertificate"})
    assert list(Command.objects.filter(action="TriggerMessage").values_list("request", flat=True)) == [
        {"requestedMessage": "Heartbeat"}
    ]
