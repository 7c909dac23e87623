"""Reservations (block H) end to end: a live server, a simulated station over a real socket, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from csms.roles import roles_ensure
from csms.timeutil import format_ocpp
from stations.models import ChargingStation
from stations.services import station_register
from tests.api_client import api
from tests.conftest import in_thread
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online
from tests.transactions.factories import tx_event
from transactions import reservations
from transactions.models import Reservation

pytestmark = pytest.mark.live

CARD = {"idToken": "CARD-1", "type": "ISO14443"}


def role_token(username: str, group: str) -> str:
    roles_ensure()
    user = User.objects.create_user(username, password="pw")
    user.groups.add(Group.objects.get(name=group))
    return Token.objects.create(user=user).key


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


def state_of(pk: int) -> str:
    return Reservation.objects.get(pk=pk).state


def reserve(station_pk: int, **kwargs: Any) -> Reservation:
    return reservations.reservation_create(
        station=ChargingStation.objects.get(pk=station_pk),
        id_token="CARD-1",
        id_token_type="ISO14443",
        expires_at=kwargs.pop("expires_at", timezone.now() + timedelta(hours=1)),
        **kwargs,
    )


def test_reservation_from_the_api_is_consumed_by_a_session(live_server_ws, station_factory):
    station_factory("CS-1")
    operator = role_token("op", "operator")
    billing = role_token("bill", "billing")
    expires = timezone.now() + timedelta(hours=1)
    body = {
        "station": "CS-1",
        "evse_id": 1,
        "id_token": "CARD-1",
        "id_token_type": "ISO14443",
        "group_id_token": "FLEET",
        "expires_at": format_ocpp(expires),
    }

    async def scenario() -> tuple[Any, list[Any], list[Any]]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            created = await asyncio.to_thread(
                api, live_server_ws.http_url, "POST", "/api/v1/reservations/", body, operator
            )
            call = await answer_next(st, {"status": "Accepted"})
            pk = created[1]["id"]
            await until(lambda: state_of(pk) == "active")
            started = await st.call(
                "TransactionEvent",
                tx_event(
                    "Started",
                    0,
                    "2026-01-01T10:00:00Z",
                    "TX-RES",
                    trigger="Authorized",
                    id_token=CARD,
                    evse={"id": 1, "connectorId": 1},
                    reservationId=call[3]["id"],
                    info={"chargingState": "Charging"},
                ),
            )
            return created, call, started

    (code, created), call, started = run(scenario())
    assert code == 201, created
    assert (created["state"], created["reservation_id"], created["station"]) == ("requested", 1, "CS-1")
    assert call[2] == "ReserveNow"
    assert call[3] == {
        "expiryDateTime": format_ocpp(expires),
        "idToken": CARD,
        "evseId": 1,
        "groupIdToken": {"idToken": "FLEET", "type": "ISO14443"},
        "id": 1,
    }
    assert started[0] == 3
    reservation = Reservation.objects.select_related("transaction").get()
    assert reservation.transaction is not None
    assert reservation.state == "consumed" and reservation.transaction.transaction_id == "TX-RES"
    # Billing reads; it may not reserve.
    code, listed = api(
        live_server_ws.http_url, "GET", "/api/v1/reservations/?station=CS-1&state=consumed", token=billing
    )
    assert code == 200 and [r["transaction"] for r in listed["results"]] == [reservation.transaction_id]
    assert api(live_server_ws.http_url, "POST", "/api/v1/reservations/", body, billing)[0] == 403
    # A consumed reservation cannot be cancelled.
    assert api(live_server_ws.http_url, "DELETE", f"/api/v1/reservations/{reservation.pk}/", token=operator)[0] == 409


def test_expiry_by_the_beat_job_and_by_the_station(live_server_ws, station_factory):
    station = station_factory("CS-1")

    async def scenario() -> tuple[int, int]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            by_job = await in_thread(lambda: reserve(station.pk, evse_id=1))
            await answer_next(st, {"status": "Accepted"})
            by_station = await in_thread(lambda: reserve(station.pk, connector_type="cType2"))
            call = await answer_next(st, {"status": "Accepted"})
            await until(lambda: state_of(by_station.pk) == "active")
            # The station expires the second one itself (its clock) and tells the CSMS.
            update = await st.call(
                "ReservationStatusUpdate", {"reservationId": call[3]["id"], "reservationUpdateStatus": "Expired"}
            )
            assert update == [3, update[1], {}]
            # An update for a reservation the CSMS does not know is acknowledged and changes nothing.
            unknown = await st.call(
                "ReservationStatusUpdate", {"reservationId": 999, "reservationUpdateStatus": "Removed"}
            )
            assert unknown == [3, unknown[1], {}]
            return by_job.pk, by_station.pk

    job_pk, station_pk = run(scenario())
    ended_by_station = Reservation.objects.get(pk=station_pk)
    assert (ended_by_station.state, ended_by_station.reason) == ("expired", "Expired")
    assert ended_by_station.connector_type == "cType2" and ended_by_station.evse_id is None
    assert state_of(job_pk) == "active"
    # The beat job, after both expiry instants: only the one the station did not end changes.
    later = timezone.now() + timedelta(hours=2)
    assert reservations.reservations_expire(now=later) == 1
    ended_by_job = Reservation.objects.get(pk=job_pk)
    assert (ended_by_job.state, ended_by_job.reason) == ("expired", "expiry passed")
    assert Reservation.objects.get(pk=station_pk).ended_at == ended_by_station.ended_at
    # Idempotent: run again (the task as beat runs it), nothing changes.
    from transactions.tasks import reservations_expire_task

    assert reservations_expire_task() == 0 and reservations.reservations_expire(now=later) == 0
    assert Reservation.objects.get(pk=job_pk).ended_at == ended_by_job.ended_at


def test_refusals_end_the_reservation_with_their_reason_and_cancel(live_server_ws, station_factory):
    station = station_factory("CS-1")
    operator = role_token("op", "operator")

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            for status in ("Rejected", "Occupied", "Faulted", "Unavailable"):
                r = await in_thread(lambda: reserve(station.pk, evse_id=1))
                await answer_next(st, {"status": status})
                await until(lambda r=r: state_of(r.pk) == "rejected")
                seen[status] = r.pk
            # Another door: ReserveNow through the generic commands API records a reservation too; its id is the
            # CSMS's (the given 77 is replaced).
            code, command = await asyncio.to_thread(
                api,
                live_server_ws.http_url,
                "POST",
                "/api/v1/stations/CS-1/commands/",
                {
                    "action": "ReserveNow",
                    "payload": {"id": 77, "expiryDateTime": "2099-01-01T00:00:00Z", "idToken": CARD},
                },
                operator,
            )
            assert code == 202, command
            call = await answer_next(st, {"status": "Accepted"})
            seen["generic_call"] = call
            reservation = await until(
                lambda: Reservation.objects.filter(command_id=command["id"], state="active").first()
            )
            # Cancel from the API: still active until the station accepts.
            code, body = await asyncio.to_thread(
                api, live_server_ws.http_url, "DELETE", f"/api/v1/reservations/{reservation.pk}/", None, operator
            )
            seen["delete"] = (code, body["state"])
            cancel = await answer_next(st, {"status": "Accepted"})
            seen["cancel"] = cancel
            await until(lambda: state_of(reservation.pk) == "cancelled")
            seen["generic"] = reservation.pk
        return seen

    seen = run(scenario())
    for status in ("Rejected", "Occupied", "Faulted", "Unavailable"):
        r = Reservation.objects.get(pk=seen[status])
        assert (r.state, r.reason) == ("rejected", status) and r.ended_at is not None
    assert seen["generic_call"][3]["id"] == 5  # ids run per station: 1-4 above
    assert seen["delete"] == (202, "active")
    assert seen["cancel"][2:] == ["CancelReservation", {"reservationId": 5}]
    cancelled = Reservation.objects.get(pk=seen["generic"])
    assert cancelled.cancel_command is not None
    assert cancelled.cancel_command.response == {"status": "Accepted"} and cancelled.reason == "cancelled"
    # An ended reservation is never re-opened: a late Accepted or the expiry job leaves it alone.
    assert reservations.reservations_expire(now=timezone.now() + timedelta(days=36500)) == 0


def test_a_reservation_the_station_removes_after_a_fault_ends_removed(live_server_ws, station_factory):
    """TC_H_20: the EVSE faults, the station removes the reservation and says so."""
    station = station_factory("CS-1")

    async def scenario() -> int:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            r = await in_thread(lambda: reserve(station.pk, evse_id=1))
            call = await answer_next(st, {"status": "Accepted"})
            await until(lambda: state_of(r.pk) == "active")
            status = {"timestamp": "2026-01-01T10:00:00Z", "connectorStatus": "Faulted", "evseId": 1, "connectorId": 1}
            assert (await st.call("StatusNotification", status))[0] == 3
            update = await st.call(
                "ReservationStatusUpdate", {"reservationId": call[3]["id"], "reservationUpdateStatus": "Removed"}
            )
            assert update == [3, update[1], {}]
            return r.pk

    pk = run(scenario())
    removed = Reservation.objects.get(pk=pk)
    assert (removed.state, removed.reason) == ("removed", "Removed") and removed.ended_at is not None
    # The expiry job leaves it as the station ended it.
    assert reservations.reservations_expire(now=timezone.now() + timedelta(hours=2)) == 0


def test_reservation_to_an_offline_station_fails_at_once_and_ids_are_per_station(transactional_db):
    one = station_register(identity="OFF-1")[0]
    two = station_register(identity="OFF-2")[0]
    first = reserve(one.pk)
    assert (first.state, first.reason, first.reservation_id) == ("failed", "station not connected", 1)
    assert first.command is not None and first.command.request["id"] == 1
    assert reserve(one.pk).reservation_id == 2 and reserve(two.pk).reservation_id == 1


def test_dashboard_reserve_form_and_station_table(transactional_db):
    station_register(identity="UI-1")
    roles_ensure()
    user = User.objects.create_user("op", password="pw")
    user.groups.add(Group.objects.get(name="operator"))
    client = Client()
    client.force_login(user)
    response = client.post(
        "/stations/UI-1/commands/",
        {"form": "reserve-now", "id_token": "CARD-1", "id_token_type": "ISO14443", "evse_id": "2"},
    )
    assert response.status_code == 200, response.content
    reservation = Reservation.objects.get()
    assert (reservation.evse_id, reservation.id_token, reservation.state) == (2, "CARD-1", "failed")  # offline
    table = client.get("/stations/UI-1/reservations/").content.decode()
    assert 'data-testid="reservations"' in table and "CARD-1" in table
    assert 'hx-get="/stations/UI-1/reservations/"' in client.get("/stations/UI-1/").content.decode()
    # Cancelling an ended reservation is refused; a reader has no cancel button nor permission.
    assert client.post(f"/reservations/{reservation.pk}/cancel/").status_code == 409
    reader = User.objects.create_user("reader", password="pw")
    reader_client = Client()
    reader_client.force_login(reader)
    assert reader_client.post(f"/reservations/{reservation.pk}/cancel/").status_code == 403


def test_a_reserve_now_answered_with_a_call_error_fails_at_once(transactional_db):
    from stations.commands import command_finish

    station = station_register(identity="ERR-1")[0]
    ChargingStation.objects.filter(pk=station.pk).update(is_online=True, channel_name="specific.nobody!x")
    reservation = reserve(station.pk)
    assert reservation.state == "requested"
    assert reservation.command_id is not None
    command_finish(command_id=reservation.command_id, state="failed", error_code="NotSupported")
    reservation.refresh_from_db()
    assert (reservation.state, reservation.reason) == ("failed", "CALLERROR NotSupported")
    assert reservations.reservations_expire() == 0  # nothing left for the sweep
