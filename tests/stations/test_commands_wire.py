"""CSMS->CS commands end to end: HTTP API on one daphne process, the station's socket on another, one Redis."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from stations.models import Command, CommandState, MessageLog
from tests.api_client import api, make_user
from tests.conftest import wait_until, wait_until_async
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.live

RESET = {"action": "Reset", "payload": {"type": "Immediate"}}


async def post(server: Any, identity: str, body: dict[str, Any], token: str) -> tuple[int, Any]:
    return await asyncio.to_thread(api, server.http_url, "POST", f"/api/v1/stations/{identity}/commands/", body, token)


async def answer(st: RawStation, payload: Any, timeout: float = 10) -> list[Any]:  # noqa: ASYNC109
    frame = await st.recv(timeout)
    assert frame[0] == 2, frame
    await st.send_raw(json.dumps([3, frame[1], payload]))
    return frame


@pytest.fixture
def two_servers(csms_server: Any) -> tuple[Any, Any]:
    return csms_server("a"), csms_server("b")


def test_command_posted_to_process_a_reaches_station_on_process_b_with_its_real_answer(two_servers, station_factory):
    server_a, server_b = two_servers
    assert server_a.port != server_b.port and server_a.process.pid != server_b.process.pid
    station_factory("CS-1")
    user, token = make_user()

    async def scenario() -> tuple[tuple[int, Any], list[Any]]:
        async with RawStation.connect(server_b.ws_url, "CS-1") as st:
            await wait_online("CS-1")
            request = asyncio.create_task(post(server_a, "CS-1", RESET | {"wait": 10}, token))
            frame = await answer(st, {"status": "Scheduled", "statusInfo": {"reasonCode": "TxInProgress"}})
            return await request, frame

    (code, body), frame = run(scenario())
    command = Command.objects.get()
    assert frame == [2, str(command.pk), "Reset", {"type": "Immediate"}]
    assert code == 200
    assert body["id"] == command.pk
    assert body["station"] == "CS-1"
    assert body["action"] == "Reset"
    assert body["state"] == "answered"
    assert body["request"] == {"type": "Immediate"}
    assert body["response"] == {"status": "Scheduled", "statusInfo": {"reasonCode": "TxInProgress"}}
    assert body["error"] is None
    assert body["created_by"] == "operator"
    assert body["sent_at"] is not None and body["finished_at"] is not None
    assert command.state == CommandState.ANSWERED and command.created_by == user
    # The CALL and its answer are in the message log under the command's message id.
    logged = MessageLog.objects.filter(message_id=str(command.pk)).values_list("direction", "message_type")
    assert wait_until(lambda: logged.count() == 2)
    assert sorted(logged) == [("in", 3), ("out", 2)]


def test_no_answer_within_the_call_timeout_is_timed_out(csms_server, station_factory):
    server = csms_server("timeout", CSMS_CALL_TIMEOUT_S="1")
    station_factory("CS-1")
    _, token = make_user()

    async def scenario() -> tuple[tuple[int, Any], list[Any], tuple[int, Any]]:
        async with RawStation.connect(server.ws_url, "CS-1") as st:
            await wait_online("CS-1")
            request = asyncio.create_task(post(server, "CS-1", RESET | {"wait": 10}, token))
            frame = await st.recv()  # seen, not answered in time
            timed_out = await request
            # A late answer is dropped; the outbox is free again for the next command.
            await st.send_raw(json.dumps([3, frame[1], {"status": "Accepted"}]))
            request = asyncio.create_task(
                post(server, "CS-1", {"action": "ClearCache", "payload": {}, "wait": 10}, token)
            )
            await answer(st, {"status": "Accepted"})
            return timed_out, frame, await request

    started = time.monotonic()
    (code, body), frame, (next_code, next_body) = run(scenario())
    assert frame[2] == "Reset"
    assert code == 200
    assert body["state"] == "timed_out"
    assert body["response"] is None
    assert body["error"] == {"code": "", "description": "no answer to Reset within 1 s", "details": None}
    assert time.monotonic() - started < 8
    assert Command.objects.get(pk=body["id"]).state == CommandState.TIMED_OUT  # the late answer changed nothing
    assert (next_code, next_body["state"], next_body["response"]) == (200, "answered", {"status": "Accepted"})


def test_station_not_connected_is_offline_at_once(live_server_ws, station_factory):
    station_factory("CS-1")
    _, token = make_user()
    started = time.monotonic()
    code, body = api(live_server_ws.http_url, "POST", "/api/v1/stations/CS-1/commands/", RESET | {"wait": 20}, token)
    assert time.monotonic() - started < 5
    assert code == 200
    assert body["state"] == "offline"
    assert body["sent_at"] is None and body["finished_at"] is not None
    assert body["error"] == {"code": "", "description": "station not connected", "details": None}
    code, body = api(live_server_ws.http_url, "POST", "/api/v1/stations/CS-1/commands/", RESET, token)
    assert (code, body["state"]) == (202, "offline")
    assert Command.objects.filter(state=CommandState.OFFLINE).count() == 2


def test_callerror_is_failed_with_code_description_and_details(two_servers, station_factory):
    server_a, server_b = two_servers
    station_factory("CS-1")
    _, token = make_user()

    async def scenario() -> tuple[int, Any]:
        async with RawStation.connect(server_b.ws_url, "CS-1") as st:
            await wait_online("CS-1")
            request = asyncio.create_task(post(server_a, "CS-1", RESET | {"wait": 10}, token))
            frame = await st.recv()
            await st.send_raw(json.dumps([4, frame[1], "NotSupported", "Reset is not supported here", {"x": 1}]))
            return await request

    code, body = run(scenario())
    assert code == 200
    assert body["state"] == "failed"
    assert body["response"] is None
    assert body["error"] == {"code": "NotSupported", "description": "Reset is not supported here", "details": {"x": 1}}


def test_schema_invalid_answer_is_failed_with_a_clear_error(live_server_ws, station_factory):
    station_factory("CS-1")
    _, token = make_user()

    async def scenario() -> tuple[int, Any]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await wait_online("CS-1")
            request = asyncio.create_task(post(live_server_ws, "CS-1", RESET | {"wait": 10}, token))
            await answer(st, {"status": "Maybe"})
            return await request

    code, body = run(scenario())
    assert code == 200
    assert body["state"] == "failed"
    assert body["response"] == {"status": "Maybe"}
    assert body["error"]["code"] == "PropertyConstraintViolation"
    assert body["error"]["description"].startswith("the station's ResetResponse is not schema-valid: status: ")
    assert body["error"]["details"]["violations"][0]["path"] == "status"


def test_disconnect_while_pending_is_failed(two_servers, station_factory):
    server_a, server_b = two_servers
    station_factory("CS-1")
    _, token = make_user()

    async def scenario() -> tuple[int, Any]:
        async with RawStation.connect(server_b.ws_url, "CS-1") as st:
            await wait_online("CS-1")
            request = asyncio.create_task(post(server_a, "CS-1", RESET | {"wait": 10}, token))
            await st.recv()
            # A second command waits in the outbox behind the unanswered first one.
            code, queued = await post(server_a, "CS-1", {"action": "ClearCache", "payload": {}}, token)
            assert (code, queued["state"]) == (202, "queued")
            # Let it reach the consumer's outbox. A fixed pause: taking a command up leaves no trace to wait for, and
            # the command ends the same way if the close comes first (connection_close fails it as never sent).
            await asyncio.sleep(0.3)
            await st.close()
            return await request

    code, body = run(scenario())
    assert code == 200
    assert body["state"] == "failed"
    assert body["error"] == {
        "code": "",
        "description": "connection closed before the station answered",
        "details": None,
    }
    wait_until(lambda: not Command.objects.filter(state__in=["queued", "sent"]).exists(), timeout_s=10)
    rows = Command.objects.order_by("pk").values_list("action", "state", "sent_at", "error_description")
    assert [(a, s, sent is not None, e) for a, s, sent, e in rows] == [
        ("Reset", "failed", True, "connection closed before the station answered"),
        ("ClearCache", "failed", False, "connection closed before the station answered"),
    ]


def test_commands_to_one_station_go_one_at_a_time_in_order(two_servers, station_factory):
    server_a, server_b = two_servers
    station_factory("CS-1")
    _, token = make_user()
    actions = [
        {"action": "ClearCache", "payload": {}},
        {"action": "GetLocalListVersion", "payload": {}},
        {"action": "Reset", "payload": {"type": "OnIdle"}},
    ]
    answers = [{"status": "Accepted"}, {"versionNumber": 7}, {"status": "Accepted"}]

    async def scenario() -> tuple[list[Any], list[list[Any]]]:
        async with RawStation.connect(server_b.ws_url, "CS-1") as st:
            await wait_online("CS-1")
            posted = [await post(server_a, "CS-1", body, token) for body in actions]
            seen = []
            for reply in answers:
                frame = await st.recv()
                # Nothing else arrives while this CALL is unanswered (OCPP-J: one outstanding CALL). A fixed wait:
                # the absence of a frame has no event to wait for.
                with pytest.raises(TimeoutError):
                    await st.recv(timeout=0.7)
                await st.send_raw(json.dumps([3, frame[1], reply]))
                seen.append(frame)
            return posted, seen

    posted, seen = run(scenario())
    assert [code for code, _ in posted] == [202, 202, 202]
    ids = [body["id"] for _, body in posted]
    assert ids == sorted(ids)
    assert [f[:3] for f in seen] == [
        [2, str(ids[0]), "ClearCache"],
        [2, str(ids[1]), "GetLocalListVersion"],
        [2, str(ids[2]), "Reset"],
    ]
    wait_until(lambda: not Command.objects.exclude(state=CommandState.ANSWERED).exists(), timeout_s=10)
    code, body = api(server_a.http_url, "GET", f"/api/v1/commands/{ids[1]}/", token=token)
    assert code == 200
    assert (body["state"], body["response"]) == ("answered", {"versionNumber": 7})
    assert list(Command.objects.order_by("pk").values_list("state", flat=True)) == ["answered"] * 3


def test_wait_over_before_the_answer_is_202_with_the_current_state(live_server_ws, station_factory):
    station_factory("CS-1")
    _, token = make_user()

    async def scenario() -> tuple[int, Any]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await wait_online("CS-1")
            result = await post(live_server_ws, "CS-1", RESET | {"wait": 1}, token)
            await answer(st, {"status": "Accepted"})
            return result

    code, body = run(scenario())
    assert code == 202
    assert body["state"] == "sent"
    assert body["response"] is None


def test_invalid_payload_is_400_with_the_violations_and_nothing_is_stored_or_sent(live_server_ws, station_factory):
    station_factory("CS-1")
    _, token = make_user()

    async def scenario() -> list[tuple[int, Any]]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await wait_online("CS-1")
            results = [
                await post(live_server_ws, "CS-1", {"action": "Reset", "payload": {"type": "Sometimes"}}, token),
                await post(live_server_ws, "CS-1", {"action": "Reset", "payload": {}}, token),
                await post(live_server_ws, "CS-1", {"action": "BootNotification", "payload": {}}, token),
                await post(live_server_ws, "CS-1", {"action": "MakeCoffee", "payload": {}}, token),
            ]
            # Nothing was sent: a fixed wait, the absence of a frame has no event to wait for.
            with pytest.raises(TimeoutError):
                await st.recv(timeout=1)
            return results

    (c1, b1), (c2, b2), (c3, b3), (c4, b4) = run(scenario())
    assert c1 == 400
    assert b1["detail"] == "ResetRequest is not schema-valid: type: 'Sometimes' is not one of ['Immediate', 'OnIdle']"
    assert b1["violations"] == [
        {
            "code": "PropertyConstraintViolation",
            "path": "type",
            "message": "'Sometimes' is not one of ['Immediate', 'OnIdle']",
            "keyword": "enum",
        }
    ]
    assert c2 == 400
    assert b2["violations"][0]["code"] == "OccurrenceConstraintViolation"
    assert b2["violations"][0]["message"] == "'type' is a required property"
    assert (c3, b3["detail"]) == (
        400,
        "BootNotification is not a CSMS->CS action: a CSMS cannot send it to a station",
    )
    assert (c4, b4["detail"]) == (400, "'MakeCoffee' is not an OCPP 2.0.1 action")
    assert Command.objects.count() == 0


def test_bulk_command_to_50_stations_on_two_processes_returns_50_results(two_servers, station_factory):
    server_a, server_b = two_servers
    identities = [f"BULK-{i:02d}" for i in range(50)]
    for identity in identities:
        station_factory(identity)
    _, token = make_user(perms=("add_command",))

    async def station(
        identity: str, index: int, ready: asyncio.Event, seen: asyncio.Event, go: asyncio.Event, recorded: asyncio.Event
    ) -> list:
        server = server_b if index % 2 else server_a
        async with RawStation.connect(server.ws_url, identity) as st:
            assert (await st.boot())[0] == 3  # boot done: the consumer's channel name is stored
            ready.set()
            frame = await st.recv(timeout=30)
            seen.set()
            await go.wait()  # hold the answer: the bulk is visibly in progress meanwhile
            await st.send_raw(json.dumps([3, frame[1], {"status": "Accepted"}]))
            await recorded.wait()  # the CSMS recorded the answers before the sockets close
            return frame

    def all_answered() -> bool:
        return Command.objects.filter(state=CommandState.ANSWERED).count() == len(identities)

    async def scenario() -> tuple[tuple[int, Any], tuple[int, Any], list[list[Any]]]:
        go, recorded = asyncio.Event(), asyncio.Event()
        readies = [asyncio.Event() for _ in identities]
        seens = [asyncio.Event() for _ in identities]
        tasks = [
            asyncio.create_task(station(i, n, readies[n], seens[n], go, recorded)) for n, i in enumerate(identities)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
        body = {"action": "ChangeAvailability", "payload": {"operationalStatus": "Inoperative"}}
        created = await asyncio.to_thread(
            api, server_a.http_url, "POST", "/api/v1/bulk-commands/", body | {"identities": identities}, token
        )
        await asyncio.wait_for(asyncio.gather(*(s.wait() for s in seens)), 30)
        progress = await asyncio.to_thread(
            api, server_b.http_url, "GET", f"/api/v1/bulk-commands/{created[1]['id']}/", None, token
        )
        go.set()
        await wait_until_async(all_answered, timeout_s=10)  # the summary below says which were not, if any
        recorded.set()
        frames = await asyncio.gather(*tasks)
        return created, progress, frames

    (code, created), (_, progress), frames = run(scenario())
    assert progress["summary"]["pending"] == 50 and progress["summary"]["done"] is False
    assert progress["summary"]["by_state"]["answered"] == 0
    assert code == 202, created
    assert created["summary"]["total"] == 50
    assert {f[2] for f in frames} == {"ChangeAvailability"}
    bulk: dict[str, Any] = {}

    def bulk_done() -> bool:
        nonlocal code, bulk
        code, bulk = api(server_b.http_url, "GET", f"/api/v1/bulk-commands/{created['id']}/", token=token)
        return bulk["summary"]["done"]

    wait_until(bulk_done, timeout_s=20, interval_s=0.2)
    assert code == 200
    assert bulk["summary"]["by_state"]["answered"] == 50, [r for r in bulk["results"] if r["state"] != "answered"]
    assert bulk["summary"] == {
        "total": 50,
        "pending": 0,
        "done": True,
        "by_state": {"queued": 0, "sent": 0, "answered": 50, "failed": 0, "timed_out": 0, "offline": 0},
    }
    assert len(bulk["results"]) == 50
    assert [r["station"] for r in bulk["results"]] == identities
    assert {r["state"] for r in bulk["results"]} == {"answered"}
    assert all(r["response"] == {"status": "Accepted"} for r in bulk["results"])
    assert bulk["target"] == {"identities": identities}


def test_waiting_callers_do_not_hold_djangos_sync_thread(live_server_ws, station_factory):
    """Sync views share one thread under ASGI: while three POSTs wait, a sync GET is still answered at once."""
    for identity in ("CS-1", "CS-2", "CS-3"):
        station_factory(identity)
    _, token = make_user()

    async def scenario() -> tuple[float, list[tuple[int, Any]]]:
        async with (
            RawStation.connect(live_server_ws.ws_url, "CS-1") as s1,
            RawStation.connect(live_server_ws.ws_url, "CS-2") as s2,
            RawStation.connect(live_server_ws.ws_url, "CS-3") as s3,
        ):
            for identity in ("CS-1", "CS-2", "CS-3"):
                await wait_online(identity)
            waiting = [
                asyncio.create_task(post(live_server_ws, identity, RESET | {"wait": 4}, token))
                for identity in ("CS-1", "CS-2", "CS-3")
            ]
            for st in (s1, s2, s3):
                await st.recv()  # all three CALLs are out: the POSTs are now waiting
            started = time.monotonic()
            code, page = await asyncio.to_thread(api, live_server_ws.http_url, "GET", "/api/v1/commands/", None, token)
            elapsed = time.monotonic() - started
            assert (code, page["count"]) == (200, 3)
            return elapsed, await asyncio.gather(*waiting)

    elapsed, results = run(scenario())
    assert elapsed < 1.5
    assert [(code, body["state"]) for code, body in results] == [(202, "sent")] * 3


def test_outcome_is_published_to_the_command_and_station_groups(two_servers, station_factory):
    from channels.layers import get_channel_layer

    server_a, server_b = two_servers
    station_factory("CS-1")
    _, token = make_user()

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int]:
        layer = get_channel_layer()
        assert layer is not None
        channel = await layer.new_channel()
        await layer.group_add("station-CS-1", channel)
        async with RawStation.connect(server_b.ws_url, "CS-1") as st:
            await wait_online("CS-1")
            code, body = await post(server_a, "CS-1", {"action": "ClearCache", "payload": {}}, token)
            assert code == 202
            await layer.group_add(f"command-{body['id']}", channel)
            await answer(st, {"status": "Rejected"})

            async def next_outcome() -> dict[str, Any]:
                # The station group also carries the dashboard's station.changed events.
                while (message := await asyncio.wait_for(layer.receive(channel), 10))["type"] != "command.finished":
                    pass
                return message

            first = await next_outcome()
            second = await next_outcome()
            return first, second, body["id"]

    first, second, command_id = run(scenario())
    expected = {
        "type": "command.finished",
        "command_id": command_id,
        "action": "ClearCache",
        "state": "answered",
        "station": "CS-1",
    }
    assert first == second == expected
