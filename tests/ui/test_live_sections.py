"""A station page's htmx sections update live: reservations, display messages, security feed, remote control."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from stations import display_messages
from stations.commands import command_send
from stations.models import ChargingStation
from tests.ocpp_client import RawStation
from tests.stations.helpers import wait_online
from tests.ui.conftest import login
from transactions import reservations

pytestmark = pytest.mark.live


def off_loop(send: Callable[[], Any]) -> Any:
    """Send a command from another door (a plain thread, as an API view or a job would): Playwright's sync API
    keeps an event loop on the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(send).result(30)


def test_station_page_sections_follow_the_station_without_a_reload(
    page, live_server_ws, make_user, station_factory, station_loop, screenshot
):
    make_user("operator", superuser=True)
    station_factory("LIVE-1")
    client = RawStation.connect(live_server_ws.ws_url, "LIVE-1")
    st = station_loop.run(client.__aenter__())

    def answer(expected_action: str, payload: dict[str, Any]) -> None:
        call = station_loop.run(st.recv())
        assert call[0] == 2 and call[2] == expected_action, call
        station_loop.run(st.send_raw(json.dumps([3, call[1], payload])))

    try:
        station_loop.run(st.boot())
        station_loop.run(wait_online("LIVE-1"))
        station = ChargingStation.objects.get(identity="LIVE-1")
        login(page, live_server_ws.http_url, "operator")
        page.goto(f"{live_server_ws.http_url}/stations/LIVE-1/")
        page.wait_for_selector("body[data-live=on]", state="attached")
        page.evaluate("window.__noReload = true")
        table = page.get_by_test_id("reservations")
        expect(table).to_contain_text("No reservation.")

        # A reservation sent from elsewhere (the API, a job): accepted, then expired by the station.
        reservation = off_loop(
            lambda: reservations.reservation_create(
                station=station, id_token="CARD-7", expires_at=timezone.now() + timedelta(hours=1), evse_id=1
            )
        )
        answer("ReserveNow", {"status": "Accepted"})
        row = page.locator(f"#reservation-{reservation.pk}")
        expect(row).to_contain_text("active")
        reply = station_loop.run(
            st.call(
                "ReservationStatusUpdate",
                {"reservationId": reservation.reservation_id, "reservationUpdateStatus": "Expired"},
            )
        )
        assert reply[0] == 3, reply
        expect(row).to_contain_text("expired")

        # A display message set by another door shows the station's answer.
        message = off_loop(
            lambda: display_messages.display_message_set(station=station, content="Welcome", priority="NormalCycle")
        )
        answer("SetDisplayMessage", {"status": "Accepted"})
        expect(page.get_by_test_id(f"display-message-status-{message.pk}")).to_have_text("accepted")

        # A security event the station reports appears in the feed.
        reply = station_loop.run(
            st.call(
                "SecurityEventNotification",
                {"type": "TamperDetectionActivated", "timestamp": "2026-12-02T01:00:00Z", "techInfo": "lid open"},
            )
        )
        assert reply[0] == 3, reply
        expect(page.get_by_test_id("security-events")).to_contain_text("TamperDetectionActivated")

        # Intended availability follows an accepted ChangeAvailability.
        off_loop(
            lambda: command_send(
                station=station, action="ChangeAvailability", payload={"operationalStatus": "Inoperative"}
            )
        )
        answer("ChangeAvailability", {"status": "Accepted"})
        expect(page.get_by_test_id("availability-station")).to_contain_text("Inoperative")
        expect(page.get_by_test_id("last-ChangeAvailability")).to_contain_text("Accepted")

        assert page.evaluate("window.__noReload") is True
        screenshot(page, "station-live-sections")
    finally:
        station_loop.run(client.__aexit__(None, None, None))
