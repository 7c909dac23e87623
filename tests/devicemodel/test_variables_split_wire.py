"""Many Get/SetVariables from the CSMS are split per the station's DeviceDataCtrlr.ItemsPerMessage and
BytesPerMessage (for GetVariables and SetVariables separately), on the wire; every part's answer updates the model."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devicemodel import services
from devicemodel.models import VariableAttribute
from stations.models import ChargingStation, Command
from tests.conftest import in_thread, wait_until_async
from tests.devicemodel.factories import notify_report, report_entry
from tests.ocpp_client import run
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.django_db(transaction=True)

LIMITS = [
    report_entry("DeviceDataCtrlr", "ItemsPerMessage", "3", variable_instance="GetVariables", mutability="ReadOnly"),
    report_entry("DeviceDataCtrlr", "BytesPerMessage", "999", variable_instance="GetVariables", mutability="ReadOnly"),
    report_entry("DeviceDataCtrlr", "ItemsPerMessage", "50", variable_instance="SetVariables", mutability="ReadOnly"),
    report_entry("DeviceDataCtrlr", "BytesPerMessage", "400", variable_instance="SetVariables", mutability="ReadOnly"),
]
VARIABLES = [report_entry("TestCtrlr", f"V{i}", str(i)) for i in range(7)]
# What the station answers to GetVariables: its limits unchanged.
reported = {(e["variable"]["name"], e["variable"].get("instance")): e["variableAttribute"][0]["value"] for e in LIMITS}


def test_get_and_set_variables_are_split_per_the_stations_limits(asgi_server, station_factory):
    station_factory("CS-1")
    sets = [
        {"component": {"name": "TestCtrlr"}, "variable": {"name": f"V{i}"}, "attributeValue": f"new-value-{i:03d}"}
        for i in range(7)
    ]

    async def answer_all(st: Any, n: int) -> list[dict[str, Any]]:
        received = []
        for _ in range(n):
            call = await st.recv()
            received.append(call)
            if call[2] == "GetVariables":
                result = [
                    {"attributeStatus": "Accepted", "component": d["component"], "variable": d["variable"],
                     "attributeValue": reported.get((d["variable"]["name"], d["variable"].get("instance")), "read")}
                    for d in call[3]["getVariableData"]
                ]  # fmt: skip
                await st.send_raw(json.dumps([3, call[1], {"getVariableResult": result}]))
            else:
                result = [
                    {"attributeStatus": "Accepted", "component": d["component"], "variable": d["variable"]}
                    for d in call[3]["setVariableData"]
                ]
                await st.send_raw(json.dumps([3, call[1], {"setVariableResult": result}]))
        return received

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with asgi_server.station("CS-1") as st:
            assert (await st.boot())[2]["status"] == "Accepted"
            assert (await st.call("NotifyReport", notify_report(1, 0, False, LIMITS + VARIABLES)))[0] == 3
            await wait_online("CS-1")
            live = await in_thread(lambda: ChargingStation.objects.get(identity="CS-1"))
            gets = await in_thread(lambda: services.variables_refresh(station=live))
            got = await answer_all(st, len(gets))
            put = await in_thread(lambda: services.variables_send(station=live, action="SetVariables", data=sets))
            set_calls = await answer_all(st, len(put))
            assert await wait_until_async(lambda: not Command.objects.exclude(state="answered").exists(), timeout_s=10)
        return got, set_calls

    got, set_calls = run(scenario())
    # GetVariables: 11 readable attributes (4 limits + 7 variables), at most 3 per message.
    assert [len(c[3]["getVariableData"]) for c in got] == [3, 3, 3, 2]
    # SetVariables: at most 400 bytes per message as sent, in order, nothing lost.
    sizes = [len(json.dumps(c[3], separators=(",", ":")).encode()) for c in set_calls]
    assert len(set_calls) > 1 and max(sizes) <= 400
    assert [d["attributeValue"] for c in set_calls for d in c[3]["setVariableData"]] == [
        s["attributeValue"] for s in sets
    ]
    # Each part's answer went through the answer hook: the model holds the values set last.
    values = dict(
        VariableAttribute.objects.filter(variable__component_name="TestCtrlr").values_list("variable__name", "value")
    )
    assert values == {f"V{i}": f"new-value-{i:03d}" for i in range(7)}


def test_without_limits_in_the_model_everything_goes_in_one_message():
    data = [{"component": {"name": "C"}, "variable": {"name": f"v{i}"}} for i in range(40)]
    assert [
        len(b) for b in services.variables_batches(action="GetVariables", data=data, items=None, size_bytes=None)
    ] == [40]
    assert [
        len(b) for b in services.variables_batches(action="GetVariables", data=data, items=16, size_bytes=None)
    ] == [16, 16, 8]


def test_the_page_reads_all_values_through_the_split(station_factory, client):
    from django.contrib.auth.models import Permission, User

    from tests.devicemodel.test_services import job, part

    station = station_factory("CS-1")
    job(station, "FullInventory", 1)
    part(station.pk, 1, 0, False, LIMITS + VARIABLES)
    user = User.objects.create_user("op", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="add_command"))
    client.force_login(user)
    response = client.post("/stations/CS-1/device-model/refresh/", follow=True)
    assert "GetVariables sent in 4 message(s)." in response.content.decode()
    assert [len(c.request["getVariableData"]) for c in Command.objects.order_by("pk")] == [3, 3, 3, 2]
