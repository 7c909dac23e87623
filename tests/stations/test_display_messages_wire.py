"""Display messages (block O) end to end: live daphne, a real station socket answering the CSMS's commands."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from stations import display_messages
from stations.models import DisplayMessage, DisplayMessageReport
from tests.api_client import api, make_user
from tests.conftest import in_thread
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.live

PERMS = ("add_command", "view_displaymessage")


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


def info(message_id: int, content: str, priority: str = "NormalCycle", **extra: Any) -> dict[str, Any]:
    return {"id": message_id, "priority": priority, "message": {"format": "UTF8", "content": content}} | extra


def reported() -> list[tuple[int, str, str, str]]:
    return sorted(
        DisplayMessage.objects.filter(source="reported").values_list("message_id", "priority", "content", "state")
    )


def test_set_accepted_rejected_and_clear_from_the_api_and_the_page(live_server_ws, station_factory):
    station_factory("CS-1")
    _, token = make_user(perms=PERMS)
    operator = Client()
    operator.force_login(make_user("page-user", perms=PERMS)[0])
    base = live_server_ws.http_url

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            body = {
                "content": "Welkom",
                "priority": "AlwaysFront",
                "language": "nl",
                "state": "Idle",
                "start_at": "2026-12-01T08:00:00Z",
                "end_at": "2026-12-31T20:00:00Z",
                "display": {"name": "Display", "evse_id": 1},
            }
            code, created = await asyncio.to_thread(
                api, base, "POST", "/api/v1/stations/CS-1/display-messages/", body, token
            )
            assert code == 201, created
            assert created["status"] == "requested"
            out["set_call"] = await answer_next(st, {"status": "Accepted"})
            out["accepted"] = await until(
                lambda: DisplayMessage.objects.filter(pk=created["id"], status="accepted").first()
            )
            # From the station page: a transaction-bound message the station refuses.
            response = await in_thread(
                lambda: operator.post(
                    "/stations/CS-1/display-messages/set/",
                    {"content": "Your session", "priority": "InFront", "format": "ASCII", "transaction_id": "TX-9"},
                )
            )
            assert response.status_code == 200
            out["page_call"] = await answer_next(
                st, {"status": "UnknownTransaction", "statusInfo": {"reasonCode": "NoTx"}}
            )
            out["rejected"] = await until(lambda: DisplayMessage.objects.filter(status="rejected").first())
            out["page"] = (await in_thread(lambda: operator.get("/stations/CS-1/display-messages/"))).content.decode()
            station_page = (await in_thread(lambda: operator.get("/stations/CS-1/"))).content.decode()
            assert 'hx-get="/stations/CS-1/display-messages/"' in station_page
            # Clear the accepted one from the API.
            code, command = await asyncio.to_thread(
                api, base, "DELETE", f"/api/v1/stations/CS-1/display-messages/{created['message_id']}/", None, token
            )
            assert code == 202, command
            out["clear_call"] = await answer_next(st, {"status": "Accepted"})
            out["cleared"] = await until(
                lambda: DisplayMessage.objects.filter(pk=created["id"], status="cleared").first()
            )
            # A clear the station does not know changes nothing.
            response = await in_thread(
                lambda: operator.post(f"/stations/CS-1/display-messages/{out['rejected'].message_id}/clear/")
            )
            assert response.status_code == 200
            await answer_next(st, {"status": "Unknown"})
            code, listed = await asyncio.to_thread(
                api, base, "GET", "/api/v1/stations/CS-1/display-messages/", None, token
            )
            out["listed"] = listed
        return out

    out = run(scenario())
    set_call = out["set_call"]
    assert set_call[2] == "SetDisplayMessage"
    assert set_call[3] == {
        "message": {
            "id": 1,
            "priority": "AlwaysFront",
            "message": {"format": "UTF8", "content": "Welkom", "language": "nl"},
            "state": "Idle",
            "startDateTime": "2026-12-01T08:00:00.000Z",
            "endDateTime": "2026-12-31T20:00:00.000Z",
            "display": {"name": "Display", "evse": {"id": 1}},
        }
    }
    assert out["page_call"][3]["message"]["id"] == 2 and out["page_call"][3]["message"]["transactionId"] == "TX-9"
    assert (out["accepted"].station_status, out["accepted"].language, out["accepted"].display) == (
        "Accepted",
        "nl",
        {"name": "Display", "evse": {"id": 1}},
    )
    rejected = out["rejected"]
    assert (rejected.message_id, rejected.station_status, rejected.status_info) == (
        2,
        "UnknownTransaction",
        {"reasonCode": "NoTx"},
    )
    assert "rejected (UnknownTransaction)" in out["page"]
    assert out["clear_call"][2:] == ["ClearDisplayMessage", {"id": 1}]
    assert out["cleared"].cleared_at is not None
    assert DisplayMessage.objects.get(message_id=2).status == "rejected"  # Unknown: unchanged
    assert [(m["message_id"], m["status"]) for m in out["listed"]["results"]] == [(2, "rejected"), (1, "cleared")]


def test_get_display_messages_three_parts_in_separate_calls_replace_the_reported_set(live_server_ws, station_factory):
    station_factory("CS-1")
    _, token = make_user(perms=PERMS)
    base = live_server_ws.http_url
    parts = [
        [info(7, "Part one A"), info(8, "Part one B", "InFront", state="Charging")],
        [info(9, "Part two", "AlwaysFront", transactionId="TX-1")],
        [info(10, "Part three", startDateTime="2026-12-01T00:00:00Z")],
    ]

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {"states": []}
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            code, job = await asyncio.to_thread(
                api, base, "POST", "/api/v1/stations/CS-1/display-messages/reports/", {"priority": "InFront"}, token
            )
            assert code == 201, job
            out["call"] = await answer_next(st, {"status": "Accepted"})
            request_id = out["call"][3]["requestId"]
            await until(lambda: DisplayMessageReport.objects.filter(pk=job["id"], state="accepted").exists())
            for n, data in enumerate(parts):
                payload = {"requestId": request_id, "tbc": n < 2, "messageInfo": data}
                out.setdefault("replies", []).append(await st.call("NotifyDisplayMessages", payload))
                out["states"].append(
                    await in_thread(lambda: (DisplayMessageReport.objects.get(pk=job["id"]).state, reported()))
                )
            # A retried part changes nothing.
            retry = {"requestId": request_id, "tbc": True, "messageInfo": parts[1]}
            out["replies"].append(await st.call("NotifyDisplayMessages", retry))
            out["after_retry"] = await in_thread(reported)
            # A later report (one part) replaces the reported set.
            second = await in_thread(
                lambda: display_messages.display_messages_request(
                    station=DisplayMessageReport.objects.get(pk=job["id"]).station
                )
            )
            call = await answer_next(st, {"status": "Accepted"})
            assert call[3] == {"requestId": second.request_id}
            await st.call("NotifyDisplayMessages", {"requestId": second.request_id, "messageInfo": [info(8, "New")]})
            out["second"] = await in_thread(reported)
            # Unknown: nothing follows; the report ends there.
            third = await in_thread(
                lambda: display_messages.display_messages_request(
                    station=DisplayMessageReport.objects.get(pk=job["id"]).station, ids=[99]
                )
            )
            await answer_next(st, {"status": "Unknown"})
            out["third"] = await until(
                lambda: DisplayMessageReport.objects.filter(pk=third.pk, state="unknown").first()
            )
            code, out["listed"] = await asyncio.to_thread(
                api, base, "GET", "/api/v1/stations/CS-1/display-messages/?source=reported", None, token
            )
        return out

    out = run(scenario())
    assert out["call"][2:] == ["GetDisplayMessages", {"priority": "InFront", "requestId": 1}]
    assert [r[:1] + r[2:] for r in out["replies"]] == [[3, {}]] * 4
    full = [
        (7, "NormalCycle", "Part one A", ""),
        (8, "InFront", "Part one B", "Charging"),
        (9, "AlwaysFront", "Part two", ""),
        (10, "NormalCycle", "Part three", ""),
    ]
    assert out["states"] == [("receiving", []), ("receiving", []), ("complete", full)]
    assert out["after_retry"] == full
    report = DisplayMessageReport.objects.get(request_id=1)
    assert (report.parts_received, report.messages_received) == (3, 4)
    assert DisplayMessage.objects.get(source="reported", message_id=8).content == "New"
    assert out["second"] == [(8, "NormalCycle", "New", "")]
    assert [(m["message_id"], m["source"], m["request_id"]) for m in out["listed"]["results"]] == [(8, "reported", 2)]


def test_replace_a_message_by_its_id_and_ask_by_state(live_server_ws, station_factory):
    """O06 (TC_O_12): a set naming a message the CSMS set replaces it, on the station and in the CSMS's row;
    O04 by state (TC_O_09); a transaction-bound message accepted (TC_O_06)."""
    station = station_factory("CS-1")
    _, token = make_user(perms=PERMS)
    base = live_server_ws.http_url

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            first = await in_thread(
                lambda: display_messages.display_message_set(
                    station=station,
                    content="Old text",
                    priority="NormalCycle",
                    transaction_id="TX-1",
                    start_at=datetime(2026, 12, 1, 8, tzinfo=UTC),
                    end_at=datetime(2026, 12, 1, 20, tzinfo=UTC),
                )
            )
            out["first_call"] = await answer_next(st, {"status": "Accepted"})
            await until(lambda: DisplayMessage.objects.filter(pk=first.pk, status="accepted").exists())
            body = {"content": "New text", "priority": "InFront", "state": "Charging", "replaces": first.message_id}
            code, replaced = await asyncio.to_thread(
                api, base, "POST", "/api/v1/stations/CS-1/display-messages/", body, token
            )
            assert code == 201, replaced
            out["replace_call"] = await answer_next(st, {"status": "Accepted"})
            out["replaced"] = await until(
                lambda: DisplayMessage.objects.filter(pk=first.pk, status="accepted", content="New text").first()
            )
            out["unknown"] = await asyncio.to_thread(
                api,
                base,
                "POST",
                "/api/v1/stations/CS-1/display-messages/",
                {"content": "x", "replaces": 99},
                token,
            )
            await in_thread(lambda: display_messages.display_messages_request(station=station, state="Charging"))
            out["get_call"] = await answer_next(st, {"status": "Accepted"})
            # The station's refusals (TC_O_17/18/19/26), each shown with its status.
            out["refused"] = []
            for answer in ("NotSupportedPriority", "NotSupportedState", "NotSupportedMessageFormat", "Rejected"):
                message = await in_thread(
                    lambda: display_messages.display_message_set(station=station, content="?", priority="AlwaysFront")
                )
                await answer_next(st, {"status": answer})
                out["refused"].append(
                    await until(lambda m=message: DisplayMessage.objects.filter(pk=m.pk, status="rejected").first())
                )
        return out

    out = run(scenario())
    first_info = out["first_call"][3]["message"]
    assert (first_info["transactionId"], first_info["startDateTime"], first_info["endDateTime"]) == (
        "TX-1",
        "2026-12-01T08:00:00.000Z",
        "2026-12-01T20:00:00.000Z",
    )
    assert out["replace_call"][3]["message"]["id"] == out["first_call"][3]["message"]["id"] == 1
    assert out["replace_call"][3]["message"]["message"]["content"] == "New text"
    replaced = out["replaced"]
    assert (replaced.priority, replaced.state, replaced.transaction_id) == ("InFront", "Charging", "")
    assert [m.station_status for m in out["refused"]] == [
        "NotSupportedPriority",
        "NotSupportedState",
        "NotSupportedMessageFormat",
        "Rejected",
    ]
    assert DisplayMessage.objects.filter(station=station, source="csms").count() == 5
    assert out["unknown"][0] == 400 and "replaces" in out["unknown"][1]
    assert out["get_call"][2:] == ["GetDisplayMessages", {"state": "Charging", "requestId": 1}]
