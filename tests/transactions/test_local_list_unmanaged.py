"""A station's own local list, which the CSMS does not manage, is never erased by reconciling (live server)."""

from __future__ import annotations

import asyncio
import json

import pytest

from stations.commands import command_send
from stations.models import ChargingStation, Command
from tests.conftest import in_thread
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online
from transactions import services
from transactions.models import LocalAuthList
from transactions.tasks import local_lists_sync_all_task

pytestmark = pytest.mark.live


def test_get_local_list_version_to_an_unmanaged_station_never_leads_to_a_send_local_list(
    live_server_ws, station_factory
):
    station = station_factory("CS-1")

    async def scenario() -> tuple[list, list]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            command = await in_thread(
                lambda: command_send(
                    station=ChargingStation.objects.get(pk=station.pk), action="GetLocalListVersion", payload={}
                )
            )
            call = await st.recv(10)
            # The station holds a list of its own (version 7), unknown to the CSMS.
            await st.send_raw(json.dumps([3, call[1], {"versionNumber": 7}]))

            def answered() -> bool:
                return Command.objects.filter(pk=command.pk, state="answered").exists()

            for _ in range(200):
                if await in_thread(answered):
                    break
                await asyncio.sleep(0.05)
            # Reconciling now: the periodic sweep and an explicit sync of this station.
            swept = await in_thread(local_lists_sync_all_task)
            synced = await in_thread(
                lambda: services.local_list_sync(station=ChargingStation.objects.get(pk=station.pk))
            )
            # An empty list row (e.g. opened in the admin, never sent) is no reason to send a Full update either.
            await in_thread(lambda: services.local_list_get(station=station.pk))
            swept_again = await in_thread(local_lists_sync_all_task)
            synced_again = await in_thread(
                lambda: services.local_list_sync(station=ChargingStation.objects.get(pk=station.pk))
            )
            with pytest.raises(TimeoutError):
                await st.recv(1)  # nothing else reaches the station
            return [call], [swept, synced, swept_again, synced_again]

    calls, outcomes = run(scenario())
    assert calls[0][2] == "GetLocalListVersion"
    assert outcomes == [0, None, 0, None]
    assert not Command.objects.filter(action="SendLocalList").exists()
    local_list = LocalAuthList.objects.get()  # only the one the test opened: the answer created none
    assert (local_list.version, local_list.station_version) == (0, None)
