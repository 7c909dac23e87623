"""The device-model page in a real browser: search a variable, edit it (SetVariables to a simulated station), see
the station's accepted value."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.devicemodel.factories import notify_report, report_entry
from tests.ocpp_client import RawStation
from tests.ui.conftest import login

pytestmark = pytest.mark.live


def test_device_model_page_searches_and_edits_a_variable(
    page, live_server_ws, make_user, station_factory, station_loop, screenshot
):
    make_user("operator", permissions=("add_command",))
    station_factory("DM-1")
    client = RawStation.connect(live_server_ws.ws_url, "DM-1")
    station = station_loop.run(client.__aenter__())
    try:
        station_loop.run(station.boot())
        report = [
            report_entry("OCPPCommCtrlr", "HeartbeatInterval", "300", unit="s"),
            report_entry("OCPPCommCtrlr", "MessageTimeout", "30", variable_instance="Default"),
            report_entry("EVSE", "Power", "22000", mutability="ReadOnly", evse=1, data_type="decimal"),
        ]
        assert station_loop.run(station.call("NotifyReport", notify_report(1, 0, False, report)))[0] == 3
        login(page, live_server_ws.http_url, "operator")
        page.goto(f"{live_server_ws.http_url}/stations/DM-1/device-model/")
        rows = page.get_by_test_id("variables").locator("tbody tr")
        expect(rows).to_have_count(3)

        filters = page.get_by_test_id("variable-filters")
        filters.locator("input[name=q]").fill("Heartbeat")
        filters.get_by_role("button", name="Filter").click()
        expect(rows).to_have_count(1)
        row = page.locator("tr[data-variable='OCPPCommCtrlr.HeartbeatInterval']")
        row.get_by_label("HeartbeatInterval Actual").fill("120")
        row.get_by_role("button", name="Set").click()
        expect(page.locator("body")).to_contain_text("SetVariables sent for")

        call = station_loop.run(station.recv())
        assert call[2] == "SetVariables"
        assert call[3]["setVariableData"] == [
            {
                "attributeType": "Actual",
                "attributeValue": "120",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
        ]
        result = {"attributeStatus": "Accepted", "component": {"name": "OCPPCommCtrlr"},
                  "variable": {"name": "HeartbeatInterval"}}  # fmt: skip
        station_loop.run(station.send_raw(json.dumps([3, call[1], {"setVariableResult": [result]}])))

        # The answer hook stored the new value: the page (still filtered) shows it once the answer is in.
        row = page.locator("tr[data-variable='OCPPCommCtrlr.HeartbeatInterval']")
        for _ in range(50):
            page.reload()
            if row.get_by_test_id("status").inner_text() == "SetVariables: Accepted":
                break
            page.wait_for_timeout(200)
        expect(row.get_by_test_id("status")).to_have_text("SetVariables: Accepted")
        expect(row.get_by_label("HeartbeatInterval Actual")).to_have_value("120")
        expect(rows).to_have_count(1)
        screenshot(page, "device-model-edit")
    finally:
        station_loop.run(client.__aexit__(None, None, None))
