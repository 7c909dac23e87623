"""The site page in a real browser: its live load chart drawn from real allocations of simulated stations, and
updated live (htmx polling) when another session starts."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from bench.simulator import SimStation
from smartcharging import sites
from smartcharging.models import EvseAllocation, Site
from tests.conftest import wait_until
from tests.ui.conftest import login

pytestmark = pytest.mark.live


def test_site_live_load_chart_renders_from_real_data_and_updates(
    page, live_server_ws, make_user, station_factory, station_loop, screenshot
):
    make_user("operator", superuser=True)
    for identity in ("LOAD-1", "LOAD-2"):
        station_factory(identity)
    site = Site.objects.create(name="Car park", capacity_a=Decimal(40))
    sites.site_set_stations(site=site, identities=["LOAD-1", "LOAD-2"])
    one, two = (SimStation(live_server_ws.ws_url, i, reconnect=False) for i in ("LOAD-1", "LOAD-2"))
    try:
        for st in (one, two):
            station_loop.run(st.connect())
            station_loop.run(st.boot())
        station_loop.run(one.start_session(1, "CARD-1", ev_max_a=32.0))
        assert wait_until(lambda: EvseAllocation.objects.filter(limit_a=Decimal("40.0")).exists(), timeout_s=20)

        login(page, live_server_ws.http_url, "operator")
        page.get_by_role("link", name="Sites").click()
        page.get_by_role("link", name="Car park").click()
        chart = page.get_by_test_id("site-load-chart")
        expect(chart).to_be_visible()
        expect(chart.locator("#site-chart-title")).to_contain_text("capacity of 40.0 A per phase")
        capacity_y = float(chart.get_by_test_id("capacity-line").get_attribute("y1"))
        points = chart.get_by_test_id("load-point")
        last = points.last
        expect(last.locator("title")).to_contain_text("40.0 A allocated")
        assert float(last.get_attribute("cy")) == capacity_y  # the whole capacity, on the capacity line
        expect(page.get_by_test_id("site-evse")).to_have_count(1)
        expect(page.get_by_test_id("phase-allocated").first).to_have_text("40.0 A")
        expect(page.get_by_test_id("site-evses")).to_contain_text("LOAD-1 / 1")
        before = points.count()
        screenshot(page, "site-load")

        # A second session: the site splits its 40 A in two; the page follows without a reload.
        station_loop.run(two.start_session(1, "CARD-2", ev_max_a=32.0))
        expect(page.get_by_test_id("site-evse")).to_have_count(2, timeout=20_000)
        expect(page.get_by_test_id("phase-allocated").first).to_have_text("40.0 A", timeout=20_000)
        for row in page.get_by_test_id("site-evse").all():
            expect(row).to_contain_text(re.compile(r"20\.0 A.*equal share, L1 full", re.DOTALL))
        assert chart.get_by_test_id("load-point").count() > before
        expect(chart.get_by_test_id("load-point").last.locator("title")).to_contain_text("40.0 A allocated")
        screenshot(page, "site-load-two-sessions")
    finally:
        for st in (one, two):
            station_loop.run(st.close())
