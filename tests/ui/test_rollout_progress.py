"""Browser: a rollout's page shows its progress live (htmx polling) as the stations report."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

from stations.models import ChargingStation
from tests.firmware.factories import signed_image
from tests.ocpp_client import RawStation
from tests.ui.conftest import login


def test_rollout_progress_updates_live(page, live_server_ws, make_user, station_loop, screenshot) -> None:  # type: ignore[no-untyped-def]
    make_user("admin", superuser=True)
    login(page, live_server_ws.http_url, "admin")
    stations = [ChargingStation.objects.create(identity=f"UI-FW-{i}") for i in (1, 2)]
    image = signed_image("5.0")
    connections: list[Any] = []

    async def connect() -> list[RawStation]:
        for station in stations:
            manager = RawStation.connect(live_server_ws.ws_url, station.identity)
            connections.append(manager)
            st = await manager.__aenter__()
            assert (await st.boot())[0] == 3
        return [c.station for c in connections]

    async def install(st: RawStation) -> None:
        call = await st.recv()
        assert call[2] == "UpdateFirmware"
        await st.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
        for status in ("Downloading", "Installed"):
            assert (await st.call("FirmwareStatusNotification", {"status": status, "requestId": call[3]["requestId"]}))[
                0
            ] == 3

    async def close() -> None:
        for manager in connections:
            await manager.__aexit__(None, None, None)

    one, two = station_loop.run(connect())
    try:
        page.goto(f"{live_server_ws.http_url}/firmware/rollouts/new/")
        page.select_option("select[name=firmware]", str(image.pk))
        page.fill("textarea[name=stations]", "UI-FW-1\nUI-FW-2")
        page.fill("input[name=wave_size]", "2")
        page.fill("input[name=max_concurrent]", "2")
        page.click("button[type=submit]:has-text('Start rollout')")
        page.wait_for_url(re.compile(r"/firmware/rollouts/\d+/$"))
        expect(page.get_by_test_id("rollout-percent")).to_have_text("0%")
        station_loop.run(install(one))
        expect(page.get_by_test_id("rollout-percent")).to_have_text("50%", timeout=15000)
        expect(page.locator("tr[data-station='UI-FW-1'] [data-testid=target-state]")).to_have_text("Installed")
        station_loop.run(install(two))
        expect(page.get_by_test_id("rollout-percent")).to_have_text("100%", timeout=15000)
        expect(page.get_by_test_id("rollout-state")).to_have_text("completed")
        screenshot(page, "rollout-progress")
    finally:
        station_loop.run(close())
