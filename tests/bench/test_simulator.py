"""The station simulator: schema-valid answers, boot/heartbeat/status against a live CSMS, reconnect + backlog."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from bench.responses import CSMS_TO_CS_ACTIONS, build_response, minimal_message
from bench.simulator import CallErrorReply, SimStation
from csms.ocpp import schemas
from stations.models import BootRecord, ChargingStation, Connector
from tests.ocpp_client import run


def test_the_40_csms_to_station_actions_are_covered():
    assert len(CSMS_TO_CS_ACTIONS) == 40
    assert set(CSMS_TO_CS_ACTIONS) <= schemas.all_actions()


@pytest.mark.parametrize("action", CSMS_TO_CS_ACTIONS)
@pytest.mark.parametrize("status", [None, "Rejected"])
def test_responder_answers_every_csms_request_with_a_schema_valid_response(action: str, status: str | None) -> None:
    request = minimal_message(action, "Request")
    schemas.validate(action, "Request", request)  # the generated request is itself valid
    response = build_response(action, request, {action: status} if status else None)
    schemas.validate(action, "Response", response)


def test_responder_echoes_the_requested_variables_and_honours_configured_status():
    request = {
        "getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
            {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}},
        ]
    }
    response = build_response("GetVariables", request)
    schemas.validate("GetVariables", "Response", response)
    assert [r["variable"]["name"] for r in response["getVariableResult"]] == ["HeartbeatInterval", "Power"]
    assert build_response("Reset", {"type": "Immediate"}, {"Reset": "Rejected"}) == {"status": "Rejected"}
    assert build_response("Reset", {"type": "Immediate"}) == {"status": "Accepted"}


@pytest.mark.live
def test_simulated_station_boots_heartbeats_and_reports_status(live_server_ws, station_factory):
    station_factory("SIM-1")

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with SimStation(live_server_ws.ws_url, "SIM-1", evses=2) as st:
            boot = await st.boot()
            beat = await st.heartbeat()
            await st.all_status("Available")
            await st.status(2, "Unavailable")
            assert st.stats.errors == {}
            return boot, beat

    boot, beat = run(scenario())
    assert boot["status"] == "Accepted" and boot["interval"] > 0
    assert "currentTime" in beat
    station = ChargingStation.objects.get(identity="SIM-1")
    assert BootRecord.objects.get(station=station).vendor_name == "CSMS-bench"
    statuses = dict(
        Connector.objects.filter(evse__station=station).values_list("evse__evse_id", "status").order_by("evse__evse_id")
    )
    assert statuses == {1: "Available", 2: "Unavailable"}


@pytest.mark.live
def test_simulated_session_is_schema_valid_and_answered(live_server_ws, station_factory):
    """TransactionEvent/MeterValues get NotSupported until the transactions app lands, never a validation error."""
    station_factory("SIM-2")

    async def scenario() -> dict[str, int]:
        async with SimStation(live_server_ws.ws_url, "SIM-2") as st:
            await st.boot()
            try:
                await st.run_session(evse_id=1, updates=2)
            except CallErrorReply as exc:
                assert exc.code == "NotSupported", exc
            return st.stats.errors

    errors = run(scenario())
    assert set(errors) <= {"TransactionEvent:NotSupported", "MeterValues:NotSupported"}


# --- against a scripted in-test server: reconnect with backoff, offline backlog, answering CSMS CALLs ----------


class ScriptedCsms:
    """Answers every CALL, closes the first connection after its boot, asks the second one for GetVariables."""

    def __init__(self) -> None:
        self.connections = 0
        self.frames: list[list[Any]] = []
        self.replies: list[list[Any]] = []
        self.done = asyncio.Event()

    async def handler(self, ws: websockets.ServerConnection) -> None:
        self.connections += 1
        first = self.connections == 1
        async for text in ws:
            frame = json.loads(text)
            self.frames.append(frame)
            if frame[0] == 3:
                self.replies.append(frame)
                self.done.set()
                continue
            await ws.send(json.dumps([3, frame[1], {"currentTime": "2026-01-01T00:00:00Z", "interval": 60,
                                                    "status": "Accepted"}]))  # fmt: skip
            if frame[2] == "BootNotification" and first:
                await ws.close()
                return
            if frame[2] == "TransactionEvent" and not first:
                request = {"getVariableData": [{"component": {"name": "X"}, "variable": {"name": "Y"}}]}
                await ws.send(json.dumps([2, "csms-1", "GetVariables", request]))


def test_station_reconnects_with_backoff_replays_backlog_offline_and_answers_calls():
    async def scenario() -> ScriptedCsms:
        csms = ScriptedCsms()
        async with websockets.serve(csms.handler, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"]) as server:  # type: ignore[list-item]
            port = server.sockets[0].getsockname()[1]
            st = SimStation(f"ws://127.0.0.1:{port}", "SIM-R", backoff_s=(0.4, 1.0), call_timeout_s=5)
            await st.connect()
            await st.boot()  # the server then drops the connection; we reconnect 0.2-0.4 s later
            for _ in range(100):
                if not st.connected:
                    break
                await asyncio.sleep(0.01)
            # Offline: session events are queued, not lost.
            st.sessions.clear()
            await st.start_session(evse_id=1, id_token="TOKEN-R")
            await asyncio.wait_for(csms.done.wait(), 10)  # reconnected, booted, replayed, answered GetVariables
            await st.close()
            assert st.backlog == []
        return csms

    csms = run(scenario())
    assert csms.connections == 2
    calls = [f for f in csms.frames if f[0] == 2]
    assert [c[2] for c in calls] == [
        "BootNotification",
        "BootNotification",
        "StatusNotification",
        "TransactionEvent",
    ]
    assert calls[3][3]["offline"] is True and calls[3][3]["eventType"] == "Started"
    assert "offline" not in calls[2][3]
    reply = csms.replies[0]
    assert reply[1] == "csms-1"
    schemas.validate("GetVariables", "Response", reply[2])


def test_a_stations_transaction_event_stream_resumes_across_phases() -> None:
    """A closed-loop phase picks up the sessions the previous one (or the warm-up) left open, so a short phase
    measures the declared Started / 10 x Updated / Ended mix instead of one Started per station."""
    from bench.load import te_stream

    st = SimStation("ws://127.0.0.1:1/ocpp", "resume-1")
    first_phase = [next(te_stream(st)) for _ in range(3)]
    second_phase = next(te_stream(st))
    kinds = [payload["eventType"] for _, payload in [*first_phase, second_phase]]
    assert kinds == ["Started", "Updated", "Updated", "Updated"]
    txn_ids = {payload["transactionInfo"]["transactionId"] for _, payload in [*first_phase, second_phase]}
    assert len(txn_ids) == 1
    assert [payload["seqNo"] for _, payload in [*first_phase, second_phase]] == [0, 1, 2, 3]
    other = SimStation("ws://127.0.0.1:1/ocpp", "resume-2")
    assert next(te_stream(other))[1]["eventType"] == "Started"
