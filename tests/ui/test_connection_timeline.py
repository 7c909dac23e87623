"""The station page's connection timeline in a browser: visible at 1,400 px without widening the page, and
following the station's connect and disconnect live."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from stations.models import Connection
from tests.ocpp_client import RawStation
from tests.stations.helpers import wait_online
from tests.ui.conftest import login

pytestmark = pytest.mark.live

WIDTH = 1400


def test_the_timeline_fits_the_window_and_follows_connect_and_disconnect(
    page, live_server_ws, make_user, station_factory, station_loop, screenshot
):
    make_user("operator", superuser=True)
    station_factory("TL-LIVE")
    page.set_viewport_size({"width": WIDTH, "height": 900})
    login(page, live_server_ws.http_url, "operator")
    page.goto(f"{live_server_ws.http_url}/stations/TL-LIVE/")
    page.wait_for_selector("body[data-live=on]", state="attached")
    page.evaluate("window.__noReload = true")
    timeline = page.get_by_test_id("connection-timeline")
    expect(timeline).to_be_visible()
    # Never connected: one gap over the whole window, no bar.
    expect(page.get_by_test_id("timeline-gaps")).to_have_text("offline for the whole window (1 d 0 h)")
    expect(page.get_by_test_id("timeline-bar")).to_have_count(0)
    # The 7-day window, fetched in place; the live refreshes below keep it.
    page.get_by_role("link", name="7d", exact=True).click()
    expect(page.get_by_test_id("timeline-window")).to_have_text("7d")
    expect(page.get_by_test_id("timeline-gaps")).to_have_text("offline for the whole window (7 d 0 h)")
    timeline = page.get_by_test_id("connection-timeline")

    client = RawStation.connect(live_server_ws.ws_url, "TL-LIVE")
    st = station_loop.run(client.__aenter__())
    try:
        station_loop.run(st.boot())
        station_loop.run(wait_online("TL-LIVE"))
        connection = Connection.objects.get(station__identity="TL-LIVE", outcome="accepted")
        bar = page.locator(f'[data-testid="timeline-bar"][data-connection="{connection.pk}"]')
        expect(bar).to_have_class("tl-online tl-open")
        expect(page.get_by_test_id("timeline-bar")).to_have_count(1)
    finally:
        station_loop.run(client.__aexit__(None, None, None))
    # The close is recorded and the section re-fetched: the bar ends and an ongoing gap follows it.
    expect(bar).to_have_class("tl-online")
    expect(page.get_by_test_id("timeline-gaps")).to_contain_text("offline since")
    expect(page.get_by_test_id("timeline-window")).to_have_text("7d")
    # The table: the connection with what it came over (plain ws://, no password: profile 0) and its close.
    expect(page.get_by_test_id("connection-table")).to_contain_text("127.0.0.1")
    expect(page.get_by_test_id("connection-table").locator("tbody tr")).to_have_count(1)
    row = page.get_by_test_id("connection-table").locator("tbody tr").first
    expect(row).to_contain_text("accepted")
    expect(row).to_contain_text("ws, profile 0")

    box = timeline.bounding_box()
    assert box is not None and box["width"] > WIDTH / 2  # drawn across the page, not squeezed
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH
    svg = page.get_by_test_id("timeline-svg").bounding_box()
    assert svg is not None and svg["x"] + svg["width"] <= WIDTH
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    assert page.evaluate("window.__noReload") is True
    screenshot(page, "station-connection-timeline")
