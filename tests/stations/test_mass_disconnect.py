"""Many stations dropping at once (a network cut): every close is recorded, in batches."""

from __future__ import annotations

import asyncio

import pytest

from stations import connections, services
from stations.models import ChargingStation, Connection
from tests.conftest import wait_until
from tests.ocpp_client import RawStation, run


@pytest.mark.django_db(transaction=True)
def test_closes_recorded_together_keep_each_ones_code_and_spare_replaced_connections():
    opened = {}
    for identity in ("CS-A", "CS-B", "CS-C"):
        station, _ = services.station_register(identity=identity)
        opened[identity] = connections.connection_open(
            station_id=station.pk, remote_addr="127.0.0.1:1", subprotocol="ocpp2.0.1", channel_name=f"chan-{identity}"
        ).connection_id
    # CS-C reconnected: its old connection is replaced by a newer one, which stays.
    newer = connections.connection_open(
        station_id=ChargingStation.objects.get(identity="CS-C").pk, remote_addr="127.0.0.1:2",
        subprotocol="ocpp2.0.1", channel_name="chan-CS-C-2",
    ).connection_id  # fmt: skip
    connections.connections_close(closes=[(opened["CS-A"], 1006), (opened["CS-B"], 1000), (opened["CS-C"], 4001)])
    codes = dict(Connection.objects.filter(disconnected_at__isnull=False).values_list("pk", "close_code"))
    assert codes == {opened["CS-A"]: 1006, opened["CS-B"]: 1000, opened["CS-C"]: 4001}
    online = dict(ChargingStation.objects.values_list("identity", "is_online"))
    assert online == {"CS-A": False, "CS-B": False, "CS-C": True}
    assert ChargingStation.objects.get(identity="CS-C").current_connection_id == newer


@pytest.mark.live
def test_a_hundred_stations_dropping_at_once_are_all_recorded_offline(live_server_ws, station_factory):
    identities = [f"CUT-{i:03d}" for i in range(100)]
    for identity in identities:
        station_factory(identity)

    async def scenario() -> None:
        stations = [await RawStation.connect(live_server_ws.ws_url, identity).__aenter__() for identity in identities]
        await asyncio.gather(*(st.boot() for st in stations))
        await asyncio.gather(*(st.ws.close() for st in stations))

    run(scenario())
    assert ChargingStation.objects.filter(identity__in=identities).count() == 100
    assert wait_until(lambda: not ChargingStation.objects.filter(is_online=True).exists(), timeout_s=20)
    assert not Connection.objects.filter(outcome="accepted", disconnected_at__isnull=True).exists()
    assert set(Connection.objects.values_list("close_code", flat=True)) == {1000}
