"""Smart charging in a real browser: profiles installed from the station page reach the station, and the composite
schedule chart is drawn from what the station accepted."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from csms.timeutil import format_ocpp
from tests.ocpp_client import RawStation
from tests.ui.conftest import login

pytestmark = pytest.mark.live


def test_profiles_installed_from_the_station_page_draw_the_composite_chart(
    page, live_server_ws, make_user, station_factory, station_loop, screenshot
):
    make_user("operator", superuser=True)
    station_factory("SC-1")
    now = datetime.now(UTC).replace(microsecond=0)
    client = RawStation.connect(live_server_ws.ws_url, "SC-1")
    station = station_loop.run(client.__aenter__())
    try:
        station_loop.run(station.boot())
        started = {
            "eventType": "Started", "timestamp": format_ocpp(now - timedelta(minutes=5)), "triggerReason": "Authorized",
            "seqNo": 0, "transactionInfo": {"transactionId": "TX-UI"}, "evse": {"id": 1, "connectorId": 1},
        }  # fmt: skip
        assert station_loop.run(station.call("TransactionEvent", started))[0] == 3
        login(page, live_server_ws.http_url, "operator")
        page.goto(f"{live_server_ws.http_url}/stations/SC-1/")
        section = page.locator("#station-charging-profiles")
        expect(section.get_by_test_id("charging-profiles")).to_contain_text("No charging profile installed")

        def install(evse: str, purpose: str, start: datetime, periods: str, transaction: str = "") -> None:
            form = section.get_by_test_id("form-charging-profile")
            form.locator("input[name=evse_id]").fill(evse)
            form.locator("select[name=purpose]").select_option(purpose)
            form.locator("input[name=start_schedule]").fill(format_ocpp(start))
            form.locator("input[name=periods]").fill(periods)
            form.locator("input[name=transaction_id]").fill(transaction)
            form.get_by_role("button", name="Install").click()
            call = station_loop.run(station.recv())
            assert call[2] == "SetChargingProfile", call
            assert call[3]["chargingProfile"]["chargingProfilePurpose"] == purpose
            station_loop.run(station.send_raw(json.dumps([3, call[1], {"status": "Accepted"}])))

        install("0", "ChargingStationMaxProfile", now - timedelta(days=1), "0:32")
        expect(section.get_by_test_id("charging-profiles")).to_contain_text("ChargingStationMaxProfile")
        # The transaction's TxProfile: 10 A for two hours (from a minute ago), then 20 A.
        install("1", "TxProfile", now - timedelta(minutes=1), "0:10, 7200:20", transaction="TX-UI")
        expect(section.get_by_test_id("charging-profiles")).to_contain_text("TX-UI")
        page.reload()
        section = page.locator("#station-charging-profiles")
        expect(section.get_by_test_id("profile-state-1")).to_have_text("installed")
        expect(section.get_by_test_id("profile-state-2")).to_have_text("installed")
        rows = section.get_by_test_id("composite-periods").locator("tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("10.0")
        expect(rows.nth(1)).to_contain_text("20.0")
        line = section.get_by_test_id("composite-chart").get_by_test_id("composite-line-csms")
        d = line.get_attribute("d")
        assert d is not None
        ys = sorted({float(y) for y in re.findall(r"[ML][\d.]+,([\d.]+)", d)})
        assert len(ys) == 2  # two levels: 20 A is drawn higher (smaller y) than 10 A
        first_y = float(re.findall(r"M[\d.]+,([\d.]+)", d)[0])
        assert first_y == ys[1]  # the line starts at the lower level (10 A)
        screenshot(page, "station-smart-charging")
    finally:
        station_loop.run(client.__aexit__(None, None, None))
