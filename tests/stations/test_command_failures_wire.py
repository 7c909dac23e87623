"""A command that gets a CALLERROR (or no answer) ends what it started: failure hooks of the command pipeline.

Without them a SetDisplayMessage, GetDisplayMessages, CustomerInformation or ReserveNow refused with a CALLERROR
stayed ``requested`` for ever (no answer hook runs for an error).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from stations import display_messages
from stations.commands import commands_expire_stale
from stations.models import ChargingStation, Command, CommandState, DisplayMessage, DisplayMessageReport
from tests.conftest import in_thread
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online
from transactions import customers, reservations
from transactions.models import CustomerInformationRequest, Reservation

pytestmark = pytest.mark.live


async def refuse_next(st: RawStation, code: str, description: str) -> list[Any]:
    frame = await st.recv(10)
    assert frame[0] == 2, frame
    await st.send_raw(json.dumps([4, frame[1], code, description, {}]))
    return frame


def test_callerror_answers_end_display_messages_customer_information_and_reservations(live_server_ws, station_factory):
    station = station_factory("CS-1")

    async def scenario() -> list[str]:
        actions = []
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            senders = [
                lambda: display_messages.display_message_set(station=station, content="Hi", priority="NormalCycle"),
                lambda: display_messages.display_messages_request(station=station),
                lambda: customers.customer_information_request(
                    station=station, report=True, clear=False, id_token="TOKEN-1"
                ),
                lambda: reservations.reservation_create(
                    station=station, id_token="TOKEN-1", expires_at=timezone.now() + timedelta(hours=1), evse_id=1
                ),
            ]
            for send in senders:
                await in_thread(send)
                frame = await refuse_next(st, "NotSupported", "not on this firmware")
                actions.append(frame[2])
            # Every outcome is recorded before the station's next CALL is answered (one connection, in order).
            await st.call("Heartbeat", {})
        return actions

    assert run(scenario()) == ["SetDisplayMessage", "GetDisplayMessages", "CustomerInformation", "ReserveNow"]
    message = DisplayMessage.objects.get(station=station, source="csms")
    assert (message.status, message.status_info) == (
        "failed",
        {"reasonCode": "NotSupported", "additionalInfo": "not on this firmware"},
    )
    assert DisplayMessageReport.objects.get(station=station).state == "failed"
    request = CustomerInformationRequest.objects.get(station=station)
    assert (request.state, request.status_info) == (
        "failed",
        {"reasonCode": "NotSupported", "additionalInfo": "not on this firmware"},
    )
    reservation = Reservation.objects.get(station=station)
    assert (reservation.state, reservation.reason) == ("failed", "CALLERROR NotSupported")
    assert reservation.ended_at is not None


def test_a_stations_next_call_waits_for_the_outcome_of_the_reply_before_it(live_server_ws, station_factory):
    """The outcome of a command the station answered is committed before its next CALL is answered: with the
    command's row locked (its outcome cannot be written), the Heartbeat after the CALLERROR stays unanswered."""
    station = station_factory("CS-1")

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            await in_thread(
                lambda: reservations.reservation_create(
                    station=station, id_token="TOKEN-1", expires_at=timezone.now() + timedelta(hours=1), evse_id=1
                )
            )
            frame = await st.recv(10)
            assert frame[2] == "ReserveNow"
            command_pk = await in_thread(lambda: Command.objects.get(station=station, action="ReserveNow").pk)
            with psycopg.connect(**connection.get_connection_params()) as other:
                other.execute("SELECT 1 FROM stations_command WHERE id = %s FOR UPDATE", [command_pk])
                await st.send_raw(json.dumps([4, frame[1], "NotSupported", "not on this firmware", {}]))
                await st.send_raw(json.dumps([2, "hb-1", "Heartbeat", {}]))
                with pytest.raises(TimeoutError):
                    await st.recv(1.5)  # held back behind the outcome
                state = await in_thread(lambda: Reservation.objects.get(station=station).state)
                assert state == "requested"
                other.rollback()
                reply = await st.recv(10)
            assert (reply[0], reply[1]) == (3, "hb-1")

    run(scenario())
    reservation = Reservation.objects.get(station=station)
    assert (reservation.state, reservation.reason) == ("failed", "CALLERROR NotSupported")


@pytest.mark.django_db
def test_a_timed_out_set_display_message_fails_but_a_timed_out_reservation_stays_requested():
    station = ChargingStation.objects.create(identity="CS-T")
    long_ago = timezone.now() - timedelta(hours=1)

    def queued(action: str, request: dict[str, Any]) -> Command:
        command = Command.objects.create(station=station, action=action, request=request, state=CommandState.SENT)
        Command.objects.filter(pk=command.pk).update(created_at=long_ago)
        return command

    set_command = queued("SetDisplayMessage", {"message": {"id": 1, "priority": "NormalCycle"}})
    DisplayMessage.objects.create(
        station=station,
        source="csms",
        message_id=1,
        priority="NormalCycle",
        format="UTF8",
        content="Hi",
        status="requested",
        command=set_command,
    )
    reserve = queued("ReserveNow", {"id": 1})
    Reservation.objects.create(
        station=station,
        reservation_id=1,
        id_token="TOKEN-1",
        id_token_type="Central",
        expires_at=timezone.now() + timedelta(hours=1),
        state="requested",
        command=reserve,
    )

    assert commands_expire_stale(older_than_s=60) == 2

    message = DisplayMessage.objects.get(command=set_command)
    assert message.status == "failed"
    assert message.status_info is not None and message.status_info["reasonCode"] == "Timeout"
    # The station may have reserved all the same: its own word (or the expiry job) ends it.
    assert Reservation.objects.get(command=reserve).state == "requested"
