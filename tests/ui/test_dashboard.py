"""The dashboard in a real browser: commands answered live, session charts, read-only users, id tokens."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ocpp_client import RawStation
from tests.ui.conftest import login

pytestmark = pytest.mark.live


def test_reset_from_the_station_page_shows_the_answer_live(
    page, live_server_ws, make_user, station_factory, station_loop, screenshot
):
    make_user("operator", permissions=("add_command",))
    station_factory("CMD-1")
    client = RawStation.connect(live_server_ws.ws_url, "CMD-1")
    station = station_loop.run(client.__aenter__())
    try:
        station_loop.run(station.boot())
        login(page, live_server_ws.http_url, "operator")
        page.goto(f"{live_server_ws.http_url}/stations/CMD-1/")
        page.wait_for_selector("body[data-live=on]", state="attached")
        page.evaluate("window.__noReload = true")
        form = page.get_by_test_id("form-reset")
        form.locator("select[name=type]").select_option("Immediate")
        form.get_by_role("button", name="Reset").click()
        row = page.locator("#command-rows tr[data-action=Reset]")
        expect(row).to_have_count(1)
        expect(row.get_by_test_id("command-state")).to_have_text(re.compile("queued|sent"))

        call = station_loop.run(station.recv())
        assert call[0] == 2 and call[2] == "Reset" and call[3] == {"type": "Immediate"}
        station_loop.run(station.send_raw(json.dumps([3, call[1], {"status": "Accepted"}])))

        expect(row.get_by_test_id("command-state")).to_have_text("answered")
        expect(row.get_by_test_id("command-response")).to_contain_text("Accepted")
        expect(row).to_contain_text("operator")

        # A schema-invalid request from the generic form: violations inline, nothing sent.
        generic = page.get_by_test_id("form-generic")
        generic.locator("select[name=action]").select_option("ChangeAvailability")
        generic.locator("textarea[name=payload]").fill('{"operationalStatus": "Sideways"}')
        generic.get_by_role("button", name="Send").click()
        expect(generic.get_by_test_id("command-error")).to_contain_text("not schema-valid")
        expect(generic.locator("ul.violations")).to_contain_text("operationalStatus")
        expect(page.locator("#command-rows tr[data-action=ChangeAvailability]")).to_have_count(0)
        assert page.evaluate("window.__noReload") is True
        screenshot(page, "station-commands")
    finally:
        station_loop.run(client.__aexit__(None, None, None))


def test_read_only_user_gets_no_command_forms_and_a_403(page, live_server_ws, make_user, station_factory, screenshot):
    make_user("viewer")
    station_factory("RO-1")
    login(page, live_server_ws.http_url, "viewer")
    page.goto(f"{live_server_ws.http_url}/stations/RO-1/")
    expect(page.locator("h1")).to_have_text("Station RO-1")
    expect(page.get_by_test_id("command-forms")).to_have_count(0)
    expect(page.locator("form[hx-post]")).to_have_count(0)
    # Even a hand-made request with a valid CSRF token is refused.
    status = page.evaluate("""async () => {
        const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'];
        const body = new URLSearchParams({form: 'reset', type: 'Immediate'});
        const r = await fetch('/stations/RO-1/commands/', {method: 'POST', body, headers: {'X-CSRFToken': token}});
        return r.status;
    }""")
    assert status == 403
    screenshot(page, "station-read-only")


def _meter(ts: str, wh: float, w: float) -> list[dict]:
    return [
        {
            "timestamp": ts,
            "sampledValue": [
                {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}},
                {"value": w, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
            ],
        }
    ]


def _event(kind: str, seq: int, ts: str, trigger: str, wh: float, w: float, **extra: Any) -> dict:
    return {
        "eventType": kind,
        "seqNo": seq,
        "timestamp": ts,
        "triggerReason": trigger,
        "transactionInfo": {"transactionId": "SESS-1", **extra.pop("info", {})},
        "meterValue": _meter(ts, wh, w),
        **extra,
    }


def test_session_from_a_station_is_charted(page, live_server_ws, make_user, station_factory, station_loop, screenshot):
    make_user("operator", superuser=True)
    station_factory("TX-ST")

    async def session() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "TX-ST") as st:
            await st.boot()
            token = {"idToken": "CARD-42", "type": "ISO14443"}
            for frame in (
                _event(
                    "Started",
                    0,
                    "2026-05-01T10:00:00Z",
                    "Authorized",
                    10000,
                    0,
                    idToken=token,
                    evse={"id": 1, "connectorId": 1},
                    info={"chargingState": "Charging"},
                ),
                _event("Updated", 1, "2026-05-01T10:15:00Z", "MeterValuePeriodic", 12750, 11000),
                _event("Updated", 2, "2026-05-01T10:30:00Z", "MeterValuePeriodic", 15500, 11000),
                _event(
                    "Ended",
                    3,
                    "2026-05-01T10:45:00Z",
                    "EVCommunicationLost",
                    17000,
                    0,
                    info={"stoppedReason": "EVDisconnected"},
                ),
            ):
                reply = await st.call("TransactionEvent", frame)
                assert reply[0] == 3, reply

    station_loop.run(session())
    login(page, live_server_ws.http_url, "operator")
    page.get_by_role("link", name="Sessions").click()
    row = page.get_by_test_id("session-row-SESS-1")
    expect(row).to_contain_text("TX-ST")
    expect(row).to_contain_text("7.00")
    expect(page.get_by_test_id("csv-export")).to_have_attribute("href", "/sessions/export.csv")
    screenshot(page, "sessions")
    row.get_by_role("link", name="SESS-1").click()
    expect(page.get_by_test_id("session-energy")).to_have_text("7.00")
    svg = page.get_by_test_id("chart-svg")
    expect(svg.get_by_test_id("power-point")).to_have_count(4)
    expect(svg.get_by_test_id("energy-point")).to_have_count(4)
    points = svg.get_by_test_id("energy-line").get_attribute("points").split()
    assert len(points) == 4
    ys = [float(p.split(",")[1]) for p in points]
    assert ys == sorted(ys, reverse=True) and ys[0] > ys[-1]  # energy climbs (SVG y grows downwards)
    expect(svg.locator("#chart-title")).to_contain_text("SESS-1")
    expect(svg.locator("circle.energy-pt title").last).to_have_text("10:45:00: 7.000 kWh")
    expect(page.get_by_test_id("session-events").locator("tbody tr")).to_have_count(4)
    expect(page.get_by_test_id("event-3")).to_contain_text("EVDisconnected")
    screenshot(page, "session-detail")


def test_id_tokens_create_and_block(page, live_server_ws, make_user, screenshot):
    make_user("operator", permissions=("add_idtoken", "change_idtoken", "view_idtoken"))
    login(page, live_server_ws.http_url, "operator")
    page.get_by_role("link", name="ID tokens").click()
    form = page.get_by_test_id("id-token-create")
    form.locator("input[name=id_token]").fill("RFID-0001")
    form.locator("input[name=description]").fill("fleet van 1")
    form.get_by_role("button", name="Add token").click()
    row = page.get_by_test_id("token-row-RFID-0001")
    expect(row.get_by_test_id("token-status")).to_have_text("Accepted")
    row.get_by_test_id("block").click()
    expect(row.get_by_test_id("token-status")).to_have_text("Blocked")
    expect(row.get_by_test_id("unblock")).to_be_visible()
    screenshot(page, "id-tokens")
    row.get_by_test_id("unblock").click()
    expect(row.get_by_test_id("token-status")).to_have_text("Accepted")


def test_overview_counts_active_sessions_live(
    page, live_server_ws, make_user, station_factory, station_loop, screenshot
):
    make_user("operator", superuser=True)
    station_factory("OV-1")
    login(page, live_server_ws.http_url, "operator")
    expect(page.get_by_test_id("active-sessions")).to_have_text("0")
    page.wait_for_selector("body[data-live=on]", state="attached")
    page.evaluate("window.__noReload = true")
    client = RawStation.connect(live_server_ws.ws_url, "OV-1")
    station = station_loop.run(client.__aenter__())
    try:
        station_loop.run(station.boot())
        started = _event(
            "Started",
            0,
            "2026-05-01T10:00:00Z",
            "Authorized",
            1000,
            7400,
            idToken={"idToken": "CARD-1", "type": "ISO14443"},
            evse={"id": 1, "connectorId": 1},
        )
        assert station_loop.run(station.call("TransactionEvent", started))[0] == 3
        expect(page.get_by_test_id("active-sessions")).to_have_text("1")
        expect(page.get_by_test_id("power-now")).to_have_text("7.4")
        screenshot(page, "overview-session")
        ended = _event("Ended", 1, "2026-05-01T10:30:00Z", "StopAuthorized", 4700, 0)
        assert station_loop.run(station.call("TransactionEvent", ended))[0] == 3
        expect(page.get_by_test_id("active-sessions")).to_have_text("0")
        expect(page.get_by_test_id("power-now")).to_have_text("0.0")
    finally:
        station_loop.run(client.__aexit__(None, None, None))
    assert page.evaluate("window.__noReload") is True


def test_message_log_live_tail(page, live_server_ws, make_user, station_factory, station_loop, screenshot):
    make_user("operator", superuser=True)
    station_factory("TAIL-1")
    client = RawStation.connect(live_server_ws.ws_url, "TAIL-1")
    station = station_loop.run(client.__aenter__())
    try:
        station_loop.run(station.boot())
        login(page, live_server_ws.http_url, "operator")
        page.goto(f"{live_server_ws.http_url}/messages/?station=TAIL-1")
        rows = page.locator("#message-rows tr")
        expect(rows).to_have_count(2)
        page.evaluate("window.__noReload = true")
        page.get_by_test_id("live-tail").check()
        station_loop.run(station.call("Heartbeat", {}))
        expect(rows).to_have_count(4, timeout=8000)
        expect(rows.first).to_contain_text("Heartbeat")
        assert page.evaluate("window.__noReload") is True
        screenshot(page, "messages-tail")
    finally:
        station_loop.run(client.__aexit__(None, None, None))


def test_remote_start_form_reaches_the_station(page, live_server_ws, make_user, station_factory, station_loop):
    make_user("operator", permissions=("add_command",))
    station_factory("RS-1")
    client = RawStation.connect(live_server_ws.ws_url, "RS-1")
    station = station_loop.run(client.__aenter__())
    try:
        station_loop.run(station.boot())
        login(page, live_server_ws.http_url, "operator")
        page.goto(f"{live_server_ws.http_url}/stations/RS-1/")
        page.wait_for_selector("body[data-live=on]", state="attached")
        form = page.get_by_test_id("form-request-start")
        form.locator("input[name=id_token]").fill("APP-USER-9")
        form.locator("input[name=evse_id]").fill("1")
        form.get_by_role("button", name="Start").click()
        row = page.locator("#command-rows tr[data-action=RequestStartTransaction]")
        expect(row).to_have_count(1)
        call = station_loop.run(station.recv())
        assert call[2] == "RequestStartTransaction"
        assert call[3]["idToken"] == {"idToken": "APP-USER-9", "type": "Central"} and call[3]["evseId"] == 1
        assert isinstance(call[3]["remoteStartId"], int)
        station_loop.run(station.send_raw(json.dumps([3, call[1], {"status": "Rejected"}])))
        expect(row.get_by_test_id("command-state")).to_have_text("answered")
        expect(row.get_by_test_id("command-response")).to_contain_text("Rejected")
    finally:
        station_loop.run(client.__aexit__(None, None, None))
