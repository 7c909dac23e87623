"""Every RequestStartTransaction, whichever door sent it, is a RemoteStartRequest linked to the session the station
then reports (its id is the remoteStartId sent)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from stations.models import Command
from stations.services import station_register
from tests.api_client import api, make_user
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online
from tests.transactions.factories import tx_event
from transactions import services
from transactions.models import RemoteStartRequest

pytestmark = pytest.mark.live

CARD = {"idToken": "CARD-1", "type": "ISO14443"}


async def answer_next(st: RawStation, payload: dict[str, Any]) -> list[Any]:
    frame = await st.recv(10)
    assert frame[0] == 2, frame
    await st.send_raw(json.dumps([3, frame[1], payload]))
    return frame


def test_a_remote_start_from_the_api_is_linked_to_its_session(live_server_ws, station_factory):
    station_factory("CS-1")
    _, token = make_user("op")
    path = "/api/v1/stations/CS-1/commands/"

    async def scenario() -> tuple[Any, list[Any], Any, list[Any]]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            # The caller's remoteStartId (4242) is replaced by the CSMS's; a wait returns the station's answer.
            body = {
                "action": "RequestStartTransaction",
                "wait": 10,
                "payload": {"idToken": CARD, "remoteStartId": 4242, "evseId": 1},
            }
            posted = asyncio.create_task(asyncio.to_thread(api, live_server_ws.http_url, "POST", path, body, token))
            call = await answer_next(st, {"status": "Accepted"})
            code, command = await posted
            started = await st.call(
                "TransactionEvent",
                tx_event(
                    "Started",
                    0,
                    "2026-01-01T10:00:00Z",
                    "TX-API",
                    trigger="RemoteStart",
                    id_token=CARD,
                    evse={"id": 1},
                    info={"chargingState": "Charging", "remoteStartId": call[3]["remoteStartId"]},
                ),
            )
            # Without a remoteStartId at all (the schema requires one): the CSMS allocates it.
            code2, second = await asyncio.to_thread(
                api,
                live_server_ws.http_url,
                "POST",
                path,
                {"action": "RequestStartTransaction", "payload": {"idToken": CARD}},
                token,
            )
            second_call = await answer_next(st, {"status": "Rejected"})
            return (code, command, code2, second), call, started, second_call

    (code, command, code2, second), call, started, second_call = run(scenario())
    assert code == 200 and command["state"] == "answered", command
    request = RemoteStartRequest.objects.get(command_id=command["id"])
    assert call[3] == {"idToken": CARD, "remoteStartId": request.pk, "evseId": 1}
    assert command["request"]["remoteStartId"] == request.pk  # the audit trail shows what was sent
    assert started[0] == 3
    txn = services.remote_start_transaction(request=request)
    assert txn is not None and txn.transaction_id == "TX-API"
    assert code2 == 202, second
    other = RemoteStartRequest.objects.get(command_id=second["id"])
    assert second_call[3] == {"idToken": CARD, "remoteStartId": other.pk} and other.pk != request.pk


def test_the_dashboard_form_records_the_remote_start(transactional_db):
    station_register(identity="UI-1")
    user = User.objects.create_user("op", password="pw")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="stations", codename="add_command"))
    client = Client()
    client.force_login(user)
    response = client.post(
        "/stations/UI-1/commands/",
        {"form": "request-start", "id_token": "CARD", "id_token_type": "Central", "evse_id": "2"},
    )
    assert response.status_code == 200, response.content
    command = Command.objects.get()
    request = RemoteStartRequest.objects.get(command=command)
    assert command.request == {
        "idToken": {"idToken": "CARD", "type": "Central"},
        "evseId": 2,
        "remoteStartId": request.pk,
    }
    assert (request.evse_id, request.id_token) == (2, {"idToken": "CARD", "type": "Central"})


def test_a_bulk_remote_start_gives_each_station_its_own_remote_start_id(transactional_db):
    from stations.commands import bulk_command_send
    from stations.models import ChargingStation

    station_register(identity="B-1")
    station_register(identity="B-2")
    bulk = bulk_command_send(
        action="RequestStartTransaction", payload={"idToken": CARD}, stations=ChargingStation.objects.all()
    )
    commands = list(bulk.commands.order_by("station__identity"))
    ids = [c.request["remoteStartId"] for c in commands]
    assert ids == [RemoteStartRequest.objects.get(command=c).pk for c in commands] and len(set(ids)) == 2
