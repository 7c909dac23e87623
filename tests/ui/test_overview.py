"""The operator's overview in a real browser: live station state without reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.ocpp_client import RawStation
from tests.ui.conftest import login

pytestmark = pytest.mark.live


def test_login_page_refuses_a_wrong_password(page, live_server_ws, make_user):
    make_user("operator")
    page.goto(f"{live_server_ws.http_url}/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.fill("#id_username", "operator")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".err")).to_have_text("Wrong username or password.")


def test_station_comes_online_and_changes_status_live(
    page, live_server_ws, make_user, station_factory, station_loop, screenshot
):
    make_user("operator", superuser=True)
    station_factory("LIVE-1")
    station_factory("IDLE-2")
    login(page, live_server_ws.http_url, "operator")
    row = page.get_by_test_id("station-row-LIVE-1")
    expect(row.get_by_test_id("online")).to_have_text("offline")
    expect(page.get_by_test_id("count-online")).to_have_text("0")
    # The page's WebSocket must be subscribed before the station acts (htmx connects after load).
    page.wait_for_selector("body[data-live=on]", state="attached")
    page.evaluate("window.__noReload = true")

    client = RawStation.connect(live_server_ws.ws_url, "LIVE-1")
    station = station_loop.run(client.__aenter__())
    try:
        station_loop.run(station.boot())
        expect(row.get_by_test_id("online")).to_have_text("online")
        expect(page.get_by_test_id("count-online")).to_have_text("1")
        station_loop.run(
            station.call(
                "StatusNotification",
                {"timestamp": "2026-01-01T10:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
            )
        )
        expect(row.get_by_test_id("connector-1-1")).to_contain_text("Available")
        station_loop.run(
            station.call(
                "StatusNotification",
                {"timestamp": "2026-01-01T10:01:00Z", "connectorStatus": "Faulted", "evseId": 1, "connectorId": 1},
            )
        )
        expect(row.get_by_test_id("connector-1-1")).to_contain_text("Faulted")
        expect(page.get_by_test_id("count-faulted")).to_have_text("1")
        screenshot(page, "overview")
    finally:
        station_loop.run(client.__aexit__(None, None, None))
    expect(row.get_by_test_id("online")).to_have_text("offline")
    expect(page.get_by_test_id("count-online")).to_have_text("0")
    assert page.evaluate("window.__noReload") is True  # same document throughout: no reload happened


def test_station_page_shows_boot_data_messages_and_live_connectors(
    page, live_server_ws, make_user, station_factory, station_loop, screenshot
):
    make_user("operator", superuser=True)
    station_factory("LIVE-1")
    client = RawStation.connect(live_server_ws.ws_url, "LIVE-1")
    station = station_loop.run(client.__aenter__())
    try:
        station_loop.run(station.boot())
        login(page, live_server_ws.http_url, "operator")
        page.goto(f"{live_server_ws.http_url}/stations/LIVE-1/")
        expect(page.get_by_test_id("boot-data")).to_contain_text("ACME")
        expect(page.locator("#station-status").get_by_test_id("online")).to_have_text("online")
        page.wait_for_selector("body[data-live=on]", state="attached")
        station_loop.run(
            station.call(
                "StatusNotification",
                {"timestamp": "2026-01-01T10:00:00Z", "connectorStatus": "Occupied", "evseId": 1, "connectorId": 2},
            )
        )
        expect(page.get_by_test_id("connector-1-2")).to_have_text("Occupied")
        expect(page.locator("#message-rows")).to_contain_text("BootNotification")
        screenshot(page, "station-detail")
    finally:
        station_loop.run(client.__aexit__(None, None, None))


def test_message_log_filters_errors(page, live_server_ws, make_user, station_factory, station_loop, screenshot):
    make_user("operator", superuser=True)
    station_factory("LOG-1")

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "LOG-1") as st:
            await st.boot()
            await st.call("MakeCoffee", {})

    station_loop.run(scenario())
    login(page, live_server_ws.http_url, "operator")
    page.goto(f"{live_server_ws.http_url}/messages/?station=LOG-1")
    expect(page.locator("#message-rows tr")).to_have_count(4)
    page.check("input[name=errors]")
    expect(page.locator("#message-rows tr")).to_have_count(2)
    expect(page.locator("#message-rows")).to_contain_text("NotImplemented: Action MakeCoffee is not known")
    screenshot(page, "messages")


def test_overview_counters_filter_and_problems_come_first(page, live_server_ws, make_user, screenshot):
    from datetime import timedelta

    from django.utils import timezone

    from stations.models import ChargingStation, Connector, Evse

    make_user("operator", superuser=True)
    now = timezone.now()

    def station(identity: str, *, online: bool, seen_ago_h: float | None, booted: bool, status: str = "") -> None:
        s = ChargingStation.objects.create(
            identity=identity,
            is_online=online,
            last_seen_at=None if seen_ago_h is None else now - timedelta(hours=seen_ago_h),
            last_boot_at=now - timedelta(days=5) if booted else None,
        )
        if status:
            Connector.objects.create(evse=Evse.objects.create(station=s, evse_id=1), connector_id=1, status=status)

    station("OK-1", online=True, seen_ago_h=0, booted=True, status="Available")
    station("FAULT-1", online=True, seen_ago_h=0, booted=True, status="Faulted")
    station("FAULT-2", online=False, seen_ago_h=48, booted=True, status="Faulted")
    station("OFF-OLD", online=False, seen_ago_h=72, booted=True)
    station("OFF-NEW", online=False, seen_ago_h=1, booted=True)
    station("NEVER", online=False, seen_ago_h=None, booted=False)
    station("NOBOOT", online=True, seen_ago_h=0, booted=False)

    def listed() -> list[str]:
        return page.locator("#station-rows tr[data-testid^=station-row-]").evaluate_all(
            "rows => rows.map(r => r.dataset.testid.replace('station-row-', ''))"
        )

    login(page, live_server_ws.http_url, "operator")
    expect(page.get_by_test_id("count-faulted")).to_have_text("2")
    page.get_by_test_id("filter-faulted").click()
    expect(page).to_have_url(re.compile(r"status=faulted"))
    expect(page.locator("#station-rows tr[data-testid^=station-row-]")).to_have_count(2)
    assert listed() == ["FAULT-1", "FAULT-2"]
    screenshot(page, "overview-faulted")

    # Every station, problems first: faulted, then offline longest first (never seen first), then never booted.
    form = page.get_by_test_id("station-filters")
    form.locator("select[name=status]").select_option("")
    form.locator("select[name=order]").select_option("problems")
    form.get_by_role("button", name="Show").click()
    expect(page.locator("#station-rows tr[data-testid^=station-row-]")).to_have_count(7)
    assert listed() == ["FAULT-1", "FAULT-2", "NEVER", "OFF-OLD", "OFF-NEW", "NOBOOT", "OK-1"]
    page.get_by_test_id("filter-offline").click()
    expect(page.locator("#station-rows tr[data-testid^=station-row-]")).to_have_count(4)
    assert listed() == ["FAULT-2", "NEVER", "OFF-OLD", "OFF-NEW"]
