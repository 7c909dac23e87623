"""Reset in the provisioning block's conformance cases (TC_B_22, TC_B_25) over the wire: an Immediate reset during a
session ends it with the station's ImmediateReset and is confirmed by the boot that follows; an EVSE reset is only
its command and answer (the station's last outcomes), no reboot awaited."""

from __future__ import annotations

from typing import Any

import pytest

from stations.models import ChargingStation, ResetState
from tests.conftest import in_thread
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online
from tests.stations.test_remote_control_wire import answer_next, finished, operator, page, send, until
from tests.transactions.factories import tx_event
from transactions.models import ChargingTransaction

pytestmark = pytest.mark.live


def test_immediate_reset_during_a_session_ends_it_and_the_boot_confirms_it(
    live_server_ws: Any, station_factory: Any
) -> None:
    station = station_factory("CS-1")
    user, _ = operator()

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            started = await st.call("TransactionEvent", tx_event("Started", 0, "2026-01-01T10:00:00Z", "TX-R"))
            assert started[0] == 3
            c = await in_thread(lambda: send(station.pk, "Reset", {"type": "Immediate"}))
            call = await answer_next(st, {"status": "Accepted"})
            assert call[2:] == ["Reset", {"type": "Immediate"}]
            await until(lambda: finished(c.pk))
            assert await in_thread(lambda: ChargingStation.objects.get(pk=station.pk).reset_state) == "awaiting_reboot"
            ended = tx_event(
                "Ended", 1, "2026-01-01T10:05:00Z", "TX-R", "ResetCommand", info={"stoppedReason": "ImmediateReset"}
            )
            assert (await st.call("TransactionEvent", ended))[0] == 3
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            booted = await st.boot({"reason": "RemoteReset", "chargingStation": {"model": "M", "vendorName": "V"}})
            assert booted[0] == 3 and booted[2]["status"] == "Accepted"

    run(scenario())
    tx = ChargingTransaction.objects.get(transaction_id="TX-R")
    assert tx.stopped_reason == "ImmediateReset" and tx.ended_at is not None
    fresh = ChargingStation.objects.get(pk=station.pk)
    assert fresh.reset_state == ResetState.CONFIRMED and fresh.reset_confirmed_at is not None
    assert "confirmed by the boot" in page(user, "/stations/CS-1/")


def test_evse_reset_is_its_command_and_answer_only(live_server_ws: Any, station_factory: Any) -> None:
    station = station_factory("CS-1")
    user, _ = operator()

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            c = await in_thread(lambda: send(station.pk, "Reset", {"type": "OnIdle", "evseId": 1}))
            call = await answer_next(st, {"status": "Accepted"})
            assert call[2:] == ["Reset", {"type": "OnIdle", "evseId": 1}]
            await until(lambda: finished(c.pk))

    run(scenario())
    fresh = ChargingStation.objects.get(pk=station.pk)
    assert fresh.reset_state == "" and fresh.reset_requested_at is None  # no reboot awaited
    html = page(user, "/stations/CS-1/")
    assert '<dd data-testid="reset-state">none</dd>' in html
    row = html.split('data-testid="last-Reset"')[1].split("</tr>")[0]
    assert "Accepted" in row and "answered" in row and "evseId" in row
