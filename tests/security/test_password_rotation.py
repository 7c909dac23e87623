"""Profile-1 password rotation end to end over the wire: SetVariables SecurityCtrlr.BasicAuthPassword, the stored
password switched only when the station accepts, the old one valid until the station connects with the new one;
a rejecting station keeps its old password. The clear new password is only ever in the frame."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from security import rotation
from security.models import PasswordRotation
from stations.models import ChargingStation, Command, MessageLog
from tests.api_client import api, make_user
from tests.conftest import in_thread, wait_until, wait_until_async
from tests.ocpp_client import RawStation, basic_auth, run
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.live

OLD = "old-password-0123456789"


def station() -> ChargingStation:
    cs = ChargingStation(identity="CS-ROT", security_profile=1)
    cs.set_password(OLD)
    cs.save()
    return cs


async def connects(server: Any, password: str) -> bool:
    try:
        async with RawStation.connect(server.ws_url, "CS-ROT", headers=basic_auth("CS-ROT", password)) as st:
            return (await st.boot())[0] == 3
    except InvalidStatus as exc:
        assert exc.response.status_code == 403
        return False


async def rotate_and_answer(server: Any, status: str, token: str = "") -> tuple[list[Any], PasswordRotation]:
    async with RawStation.connect(server.ws_url, "CS-ROT", headers=basic_auth("CS-ROT", OLD)) as st:
        await st.boot()
        await wait_online("CS-ROT")
        cs = await in_thread(lambda: ChargingStation.objects.get(identity="CS-ROT"))
        if token:  # through the REST API (admins)
            path = "/api/v1/stations/CS-ROT/password-rotations/"
            code, body = await asyncio.to_thread(api, server.http_url, "POST", path, None, token)
            assert code == 201 and body["state"] == "sent" and body["station"] == "CS-ROT", body
            started = await in_thread(lambda: PasswordRotation.objects.get(pk=body["id"]))
        else:
            started = await in_thread(lambda: rotation.password_rotate(station=cs))
        frame = await st.recv()
        result = {
            "attributeStatus": status,
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"},
        }
        await st.send_raw(json.dumps([3, frame[1], {"setVariableResult": [result]}]))
        assert await wait_until_async(
            lambda: PasswordRotation.objects.filter(pk=started.pk).exclude(state="sent").exists()
        )
    return frame, await in_thread(lambda: PasswordRotation.objects.get(pk=started.pk))


def sent_password(frame: list[Any]) -> str:
    assert frame[0] == 2 and frame[2] == "SetVariables"
    (data,) = frame[3]["setVariableData"]
    assert data["component"] == {"name": "SecurityCtrlr"} and data["variable"] == {"name": "BasicAuthPassword"}
    return data["attributeValue"]


def assert_not_stored(password: str) -> None:
    command = Command.objects.get(action="SetVariables")
    assert command.request["setVariableData"][0]["attributeValue"] == rotation.REDACTED
    assert wait_until(lambda: MessageLog.objects.filter(action="SetVariables", direction="out").exists())
    for row in MessageLog.objects.all():
        assert password not in json.dumps(row.payload), row.payload


def test_accepted_rotation_switches_the_password_keeping_the_old_until_the_new_one_is_used(live_server_ws: Any) -> None:
    station()
    frame, done = run(rotate_and_answer(live_server_ws, "Accepted"))
    new = sent_password(frame)
    assert 16 <= len(new) <= 40 and set(new) <= set(rotation.ALPHABET) and new != OLD
    assert done.state == "accepted"
    assert_not_stored(new)
    cs = ChargingStation.objects.get(identity="CS-ROT")
    assert cs.check_password(new) and cs.previous_password_hash

    async def reconnects() -> list[bool]:
        return [
            await connects(live_server_ws, OLD),
            await connects(live_server_ws, new),
            await connects(live_server_ws, OLD),
        ]

    # The old password still works until the station has connected with the new one; then only the new one.
    assert run(reconnects()) == [True, True, False]
    cs.refresh_from_db()
    assert cs.previous_password_hash == ""
    assert PasswordRotation.objects.get().state == "completed"


def test_rejected_rotation_keeps_the_old_password(live_server_ws: Any) -> None:
    station()
    _, operator = make_user()
    path = "/api/v1/stations/CS-ROT/password-rotations/"
    assert api(live_server_ws.http_url, "POST", path, None, operator)[0] == 403  # credentials: admins only
    admin, token = make_user("admin", perms=())
    admin.is_staff = True
    admin.save()
    frame, done = run(rotate_and_answer(live_server_ws, "Rejected", token))
    new = sent_password(frame)
    assert done.state == "rejected" and done.reason == "Rejected"
    assert_not_stored(new)

    async def reconnects() -> list[bool]:
        return [await connects(live_server_ws, new), await connects(live_server_ws, OLD)]

    assert run(reconnects()) == [False, True]
    cs = ChargingStation.objects.get(identity="CS-ROT")
    assert cs.check_password(OLD) and cs.previous_password_hash == ""
    code, body = api(live_server_ws.http_url, "GET", path, None, token)
    assert code == 200
    assert [(r["state"], r["reason"]) for r in body["results"]] == [("rejected", "Rejected")]
    assert set(body["results"][0]) == {"id", "station", "state", "reason", "command", "created_at", "finished_at"}


def test_a_station_using_the_new_password_before_its_answer_is_recorded_is_not_locked_out(live_server_ws: Any) -> None:
    """No answer (a CALLERROR, a timeout, a reconnect first): the unanswered rotation's password is accepted too and
    becomes the password once used."""
    station()

    async def scenario() -> str:
        async with RawStation.connect(live_server_ws.ws_url, "CS-ROT", headers=basic_auth("CS-ROT", OLD)) as st:
            await st.boot()
            await wait_online("CS-ROT")
            cs = await in_thread(lambda: ChargingStation.objects.get(identity="CS-ROT"))
            await in_thread(lambda: rotation.password_rotate(station=cs))
            frame = await st.recv()
            await st.send_raw(json.dumps([4, frame[1], "InternalError", "busy", {}]))
            await asyncio.sleep(0.2)
        new = sent_password(frame)
        assert await connects(live_server_ws, new)
        assert not await connects(live_server_ws, OLD)
        return new

    new = run(scenario())
    assert PasswordRotation.objects.get().state == "completed"
    assert ChargingStation.objects.get(identity="CS-ROT").check_password(new)


def test_rotation_refuses_a_station_without_a_password_or_offline(transactional_db: None) -> None:
    cs = ChargingStation.objects.create(identity="CS-NOPW")
    with pytest.raises(rotation.RotationError, match="no password to rotate"):
        rotation.password_rotate(station=cs)
    with pytest.raises(rotation.RotationError, match="not connected"):
        rotation.password_rotate(station=station())
    assert not Command.objects.exists() and not PasswordRotation.objects.exists()
    with pytest.raises(rotation.RotationError):
        rotation.password_generate(length=15)
    assert len(rotation.password_generate(length=40)) == 40
