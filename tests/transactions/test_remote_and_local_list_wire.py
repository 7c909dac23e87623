"""Remote start/stop and local-list sync through the command pipeline, against a live server and a real socket."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from stations.models import ChargingStation, Command
from tests.conftest import in_thread
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online
from tests.transactions.factories import meter_value, sampled, tx_event
from transactions import services
from transactions.models import ChargingTransaction, IdToken, LocalAuthList, RemoteStartRequest

pytestmark = pytest.mark.live

CARD = {"idToken": "CARD-1", "type": "ISO14443"}


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


def test_remote_start_is_linked_to_the_transaction_by_remote_start_id(live_server_ws, station_factory):
    station = station_factory("CS-1")
    IdToken.objects.create(id_token="CARD-1", type="ISO14443", status="Accepted")

    async def scenario() -> tuple[list[Any], list[Any], int]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            request = await in_thread(
                lambda: services.remote_start(
                    station=ChargingStation.objects.get(pk=station.pk), id_token=CARD, evse_id=1
                )
            )
            call = await answer_next(st, {"status": "Accepted"})
            await until(lambda: Command.objects.filter(pk=request.command_id, state="answered").exists())
            started = await st.call(
                "TransactionEvent",
                tx_event(
                    "Started",
                    0,
                    "2026-01-01T10:00:00Z",
                    trigger="RemoteStart",
                    id_token=CARD,
                    evse={"id": 1},
                    info={"chargingState": "Charging", "remoteStartId": request.pk, "transactionId": "TX-R1"},
                    meter=[meter_value("2026-01-01T10:00:00Z", sampled(100, context="Transaction.Begin"))],
                ),
            )
            return call, started, request.pk

    call, started, remote_start_id = run(scenario())
    assert call[2:] == ["RequestStartTransaction", {"idToken": CARD, "remoteStartId": remote_start_id, "evseId": 1}]
    assert started[2]["idTokenInfo"]["status"] == "Accepted"
    request = RemoteStartRequest.objects.get()
    txn = services.remote_start_transaction(request=request)
    assert txn is not None and txn.transaction_id == "TX-R1" and txn.remote_start_id == remote_start_id
    assert request.command is not None and request.command.response == {"status": "Accepted"}


def test_remote_stop_ends_the_transaction(live_server_ws, station_factory):
    station_factory("CS-1")

    async def scenario() -> list[Any]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            await st.call(
                "TransactionEvent",
                tx_event(
                    "Started",
                    0,
                    "2026-01-01T10:00:00Z",
                    trigger="Authorized",
                    id_token=CARD,
                    evse={"id": 1},
                    info={"chargingState": "Charging", "transactionId": "TX-S1"},
                    meter=[meter_value("2026-01-01T10:00:00Z", sampled(1000))],
                ),
            )
            txn = await in_thread(lambda: ChargingTransaction.objects.select_related("station").get())
            await in_thread(lambda: services.remote_stop(txn=txn))
            call = await answer_next(st, {"status": "Accepted"})
            await st.call(
                "TransactionEvent",
                tx_event(
                    "Ended",
                    1,
                    "2026-01-01T10:30:00Z",
                    trigger="RemoteStop",
                    info={"chargingState": "EVConnected", "stoppedReason": "Remote", "transactionId": "TX-S1"},
                    meter=[meter_value("2026-01-01T10:30:00Z", sampled(6000))],
                ),
            )
            return call

    call = run(scenario())
    assert call[2:] == ["RequestStopTransaction", {"transactionId": "TX-S1"}]
    txn = ChargingTransaction.objects.get()
    assert (txn.is_active, txn.stopped_reason, txn.energy_wh) == (False, "Remote", Decimal(5000))
    with pytest.raises(services.TransactionCommandError, match="already ended"):
        services.remote_stop(txn=txn)


def test_local_list_full_then_differential_updates_with_versions(live_server_ws, station_factory):
    station = station_factory("CS-1")
    alice = IdToken.objects.create(id_token="ALICE", type="ISO14443", status="Accepted")
    bob = IdToken.objects.create(id_token="BOB", type="ISO14443", status="Accepted")

    async def scenario() -> list[list[Any]]:
        calls = []
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")

            # Adding tokens to the station's list enqueues the sync job (eager in tests) after commit.
            def assign() -> None:
                services.local_list_get(station=station.pk).tokens.add(alice)

            await in_thread(assign)
            calls.append(await answer_next(st, {"status": "Accepted"}))
            await until(lambda: LocalAuthList.objects.filter(station_version=1).exists())

            await in_thread(lambda: services.local_list_get(station=station.pk).tokens.add(bob))
            calls.append(await answer_next(st, {"status": "Accepted"}))
            await until(lambda: LocalAuthList.objects.filter(station_version=2).exists())

            # Blocking a token on the list sends it again, changed; the station reports a version mismatch.
            def block() -> None:
                token = IdToken.objects.get(pk=alice.pk)
                token.status = "Blocked"
                token.save()

            await in_thread(block)
            calls.append(await answer_next(st, {"status": "VersionMismatch"}))
            await until(lambda: LocalAuthList.objects.filter(last_status="VersionMismatch").exists())
            # Nothing left to differ, but the station's version is unknown now: the next update is Full.
            command = await in_thread(
                lambda: services.local_list_sync(station=ChargingStation.objects.get(pk=station.pk))
            )
            assert command is not None
            calls.append(await answer_next(st, {"status": "Accepted"}))
            await until(lambda: LocalAuthList.objects.filter(station_version=4).exists())
        return calls

    full, diff, changed, refull = run(scenario())
    assert full[2] == "SendLocalList"
    assert full[3]["updateType"] == "Full" and full[3]["versionNumber"] == 1
    assert [e["idToken"]["idToken"] for e in full[3]["localAuthorizationList"]] == ["ALICE"]
    assert diff[3]["updateType"] == "Differential" and diff[3]["versionNumber"] == 2
    assert [e["idToken"]["idToken"] for e in diff[3]["localAuthorizationList"]] == ["BOB"]
    assert changed[3]["updateType"] == "Differential" and changed[3]["versionNumber"] == 3
    assert changed[3]["localAuthorizationList"] == [
        {"idToken": {"idToken": "ALICE", "type": "ISO14443"}, "idTokenInfo": {"status": "Blocked"}}
    ]
    assert refull[3]["updateType"] == "Full" and refull[3]["versionNumber"] == 4
    assert sorted(e["idToken"]["idToken"] for e in refull[3]["localAuthorizationList"]) == ["ALICE", "BOB"]
    local_list = LocalAuthList.objects.get()
    assert (local_list.station_version, local_list.last_status) == (4, "Accepted")
    # Already in sync: a differential has nothing to send.
    assert services.local_list_sync(station=ChargingStation.objects.get(pk=station.pk)) is None
