"""Reports and variables end to end: live daphne, a real station socket answering the CSMS's commands."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.test import Client

from csms.models import MessagePart
from devicemodel import services
from devicemodel.models import DeviceVariable, ReportJob, VariableAttribute
from stations.models import ChargingStation
from tests.api_client import api, make_user
from tests.conftest import in_thread
from tests.devicemodel.factories import notify_report, report_entry
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.live

PARTS = [
    [
        report_entry("OCPPCommCtrlr", "HeartbeatInterval", "300", unit="s"),
        report_entry("OCPPCommCtrlr", "MessageTimeout", "30", variable_instance="Default"),
    ],
    [
        report_entry(
            "EVSE", "Power", "22000", mutability="ReadOnly", evse=1, data_type="decimal", unit="W", monitoring=True
        ),
        report_entry(
            "Connector", "ConnectorType", "cType2", mutability="ReadOnly", evse=1, connector=1, data_type="string"
        ),
    ],
    [
        report_entry("SecurityCtrlr", "BasicAuthPassword", "s3cret", mutability="WriteOnly", data_type="string"),
        report_entry(
            "SampledDataCtrlr",
            "TxUpdatedInterval",
            "60",
            component_instance="Main",
            extra_attributes=[{"type": "MaxSet", "value": "3600", "mutability": "ReadOnly"}],
        ),
    ],
]


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


def stored_model(identity: str) -> dict[tuple[str, str, str], tuple[str | None, str]]:
    return {
        (a.variable.component_label, a.variable.variable_label, a.type): (a.value, a.mutability)
        for a in VariableAttribute.objects.select_related("variable").filter(
            variable__station__identity=identity, variable__gone_at__isnull=True
        )
    }


EXPECTED = {
    ("OCPPCommCtrlr", "HeartbeatInterval", "Actual"): ("300", "ReadWrite"),
    ("OCPPCommCtrlr", "MessageTimeout[Default]", "Actual"): ("30", "ReadWrite"),
    ("EVSE@1", "Power", "Actual"): ("22000", "ReadOnly"),
    ("Connector@1/1", "ConnectorType", "Actual"): ("cType2", "ReadOnly"),
    ("SecurityCtrlr", "BasicAuthPassword", "Actual"): (None, "WriteOnly"),
    ("SampledDataCtrlr[Main]", "TxUpdatedInterval", "Actual"): ("60", "ReadWrite"),
    ("SampledDataCtrlr[Main]", "TxUpdatedInterval", "MaxSet"): ("3600", "ReadOnly"),
}


def test_get_base_report_from_the_api_three_parts_out_of_order_yield_the_complete_model(
    live_server_ws, station_factory
):
    station_factory("CS-1")
    _, token = make_user(perms=("add_command", "view_chargingstation"))

    async def scenario() -> tuple[list[Any], dict[str, Any], list[list[Any]], dict[str, Any]]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            code, job = await asyncio.to_thread(
                api, live_server_ws.http_url, "POST", "/api/v1/stations/CS-1/reports/", {"kind": "FullInventory"}, token
            )
            assert code == 201, job
            call = await answer_next(st, {"status": "Accepted"})
            request_id = call[3]["requestId"]
            await until(lambda: ReportJob.objects.filter(pk=job["id"], station_status="Accepted").exists())
            replies = []
            for seq_no in (2, 0, 1):
                replies.append(
                    await st.call("NotifyReport", notify_report(request_id, seq_no, seq_no != 2, PARTS[seq_no]))
                )
                state = await in_thread(lambda: ReportJob.objects.get(pk=job["id"]).state)
                assert state == ("complete" if seq_no == 1 else "receiving")
            before = await in_thread(
                lambda: (
                    stored_model("CS-1"),
                    MessagePart.objects.count(),
                    list(VariableAttribute.objects.values_list("updated_at", flat=True)),
                )
            )
            # A retried part (the station did not get our answer) is answered again and changes nothing.
            replies.append(await st.call("NotifyReport", notify_report(request_id, 1, True, PARTS[1])))
            after = await in_thread(
                lambda: (
                    stored_model("CS-1"),
                    MessagePart.objects.count(),
                    list(VariableAttribute.objects.values_list("updated_at", flat=True)),
                )
            )
            assert before == after
            code, listed = await asyncio.to_thread(
                api, live_server_ws.http_url, "GET", "/api/v1/stations/CS-1/reports/", None, token
            )
            return call, job, replies, listed

    call, job, replies, listed = run(scenario())
    assert call[2] == "GetBaseReport" and call[3] == {"requestId": job["request_id"], "reportBase": "FullInventory"}
    assert [r[:1] + r[2:] for r in replies] == [[3, {}]] * 4
    assert stored_model("CS-1") == EXPECTED
    done = ReportJob.objects.get(pk=job["id"])
    assert (done.state, done.parts_received, done.variables_received) == ("complete", 3, 6)
    assert listed["results"][0]["state"] == "complete"
    power = DeviceVariable.objects.get(name="Power")
    assert (power.data_type, power.unit, power.supports_monitoring, power.evse, power.connector) == (
        "decimal",
        "W",
        True,
        1,
        None,
    )
    assert "s3cret" not in json.dumps(list(MessagePart.objects.values_list("payload", flat=True)))


def test_empty_result_set_ends_the_job_and_a_new_full_inventory_marks_what_it_lost_gone(
    live_server_ws, station_factory
):
    station = station_factory("CS-1")

    async def report(
        st: RawStation, kind: str, parts: list[list[dict[str, Any]]], answer: str = "Accepted", **criteria: Any
    ) -> ReportJob:
        job = await in_thread(
            lambda: services.report_request(station=ChargingStation.objects.get(pk=station.pk), kind=kind, **criteria)
        )
        await answer_next(st, {"status": answer})
        for seq_no, data in enumerate(parts):
            await st.call("NotifyReport", notify_report(job.request_id, seq_no, seq_no < len(parts) - 1, data))
        return await until(
            lambda: ReportJob.objects.filter(pk=job.pk).exclude(state__in=["requested", "receiving"]).first()
        )

    async def scenario() -> list[ReportJob]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            empty = await report(st, "Criteria", [], "EmptyResultSet", component_criteria=["Problem"])
            first = await report(st, "FullInventory", [PARTS[0], PARTS[1]])
            second = await report(st, "FullInventory", [PARTS[0][:1], PARTS[1][:1]])
            return [empty, first, second]

    empty, first, second = run(scenario())
    assert (empty.state, empty.station_status, empty.parts_received) == ("empty", "EmptyResultSet", 0)
    assert (first.state, second.state) == ("complete", "complete")
    gone = set(DeviceVariable.objects.filter(gone_at__isnull=False).values_list("name", flat=True))
    assert gone == {"MessageTimeout", "ConnectorType"}
    assert set(stored_model("CS-1")) == {
        ("OCPPCommCtrlr", "HeartbeatInterval", "Actual"),
        ("EVSE@1", "Power", "Actual"),
    }


def test_set_variables_from_the_page_and_the_api_update_the_model_flag_reboot_and_show_rejections(
    live_server_ws, station_factory
):
    station_factory("CS-1")
    _, token = make_user(perms=("add_command", "view_chargingstation"))
    operator = Client()
    operator.force_login(make_user("page-user", perms=("add_command", "view_chargingstation"))[0])

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            await st.call("NotifyReport", notify_report(500, 0, False, PARTS[0] + PARTS[2]))  # unasked: merged
            heartbeat = await in_thread(lambda: DeviceVariable.objects.get(name="HeartbeatInterval"))
            # Door 1: the device-model page's edit form.
            response = await in_thread(
                lambda: operator.post(f"/stations/CS-1/device-model/variables/{heartbeat.pk}/set/", {"value": "120"})
            )
            assert response.status_code == 302
            page_call = await answer_next(
                st,
                {
                    "setVariableResult": [
                        {
                            "component": {"name": "OCPPCommCtrlr"},
                            "variable": {"name": "HeartbeatInterval"},
                            "attributeType": "Actual",
                            "attributeStatus": "Accepted",
                        }
                    ]
                },
            )
            await until(
                lambda: VariableAttribute.objects.filter(variable__name="HeartbeatInterval", value="120").exists()
            )
            # Door 2: the raw command API, three variables with three outcomes.
            body = {
                "action": "SetVariables",
                "wait": 0,
                "payload": {
                    "setVariableData": [
                        {
                            "component": {"name": "OCPPCommCtrlr"},
                            "variable": {"name": "MessageTimeout", "instance": "Default"},
                            "attributeValue": "45",
                        },
                        {
                            "component": {"name": "SampledDataCtrlr", "instance": "Main"},
                            "variable": {"name": "TxUpdatedInterval"},
                            "attributeValue": "9999",
                        },
                        {
                            "component": {"name": "SecurityCtrlr"},
                            "variable": {"name": "BasicAuthPassword"},
                            "attributeValue": "n3w-s3cret",
                        },
                    ]
                },
            }
            code, _ = await asyncio.to_thread(
                api, live_server_ws.http_url, "POST", "/api/v1/stations/CS-1/commands/", body, token
            )
            assert code == 202
            api_call = await answer_next(
                st,
                {
                    "setVariableResult": [
                        {
                            "component": {"name": "OCPPCommCtrlr"},
                            "variable": {"name": "MessageTimeout", "instance": "Default"},
                            "attributeStatus": "RebootRequired",
                        },
                        {
                            "component": {"name": "SampledDataCtrlr", "instance": "Main"},
                            "variable": {"name": "TxUpdatedInterval"},
                            "attributeStatus": "Rejected",
                            "attributeStatusInfo": {"reasonCode": "OutOfRange"},
                        },
                        {
                            "component": {"name": "SecurityCtrlr"},
                            "variable": {"name": "BasicAuthPassword"},
                            "attributeStatus": "Accepted",
                        },
                    ]
                },
            )
            await until(
                lambda: VariableAttribute.objects.filter(
                    variable__name="BasicAuthPassword", last_status="Accepted"
                ).exists()
            )
            return page_call, api_call

    page_call, api_call = run(scenario())
    assert page_call[2:] == [
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeType": "Actual",
                    "attributeValue": "120",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                }
            ]
        },
    ]
    model = stored_model("CS-1")
    assert model[("OCPPCommCtrlr", "HeartbeatInterval", "Actual")] == ("120", "ReadWrite")
    assert model[("OCPPCommCtrlr", "MessageTimeout[Default]", "Actual")] == ("45", "ReadWrite")
    assert model[("SampledDataCtrlr[Main]", "TxUpdatedInterval", "Actual")] == ("60", "ReadWrite")
    assert model[("SecurityCtrlr", "BasicAuthPassword", "Actual")] == (None, "WriteOnly")
    statuses = dict(VariableAttribute.objects.filter(type="Actual").values_list("variable__name", "last_status"))
    assert statuses["TxUpdatedInterval"] == "Rejected" and statuses["MessageTimeout"] == "RebootRequired"
    assert ReportJob.objects.get(request_id=500).kind == "Unsolicited"
    code, body = api(
        live_server_ws.http_url,
        "GET",
        "/api/v1/stations/CS-1/device-model/",
        None,
        make_user("reader", perms=("view_chargingstation",))[1],
    )
    assert code == 200 and body["reboot_required"] is True
    page = operator.get("/stations/CS-1/device-model/").content.decode()
    assert "Reboot required" in page and "SetVariables: Rejected (OutOfRange)" in page
    assert "n3w-s3cret" not in page and "s3cret" not in page
