"""Long OCPP payloads in a real browser: one-line previews, pages no wider than the window, the whole frame a click
away."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import wait_until
from tests.ocpp_client import RawStation
from tests.transactions.factories import meter_value, sampled, tx_event
from tests.ui.conftest import login

pytestmark = pytest.mark.live

WIDTH = 1400


def long_event(kind: str, seq_no: int) -> dict[str, Any]:
    """A TransactionEvent with 30 meter values of 3 readings each: about 6 kB of JSON."""
    readings = [
        meter_value(
            f"2026-05-01T10:{minute:02d}:00Z",
            sampled(1000 * seq_no + 10 * minute),
            sampled(11000 + minute, measurand="Power.Active.Import"),
            sampled(230 + minute / 10, measurand="Voltage", phase="L1-N"),
        )
        for minute in range(30)
    ]
    token = {"idToken": "CARD-LONG", "type": "ISO14443"} if kind == "Started" else None
    return tx_event(
        kind,
        seq_no,
        f"2026-05-01T10:{30 + seq_no:02d}:00Z",
        "TX-LONG",
        meter=readings,
        id_token=token,
        evse={"id": 1, "connectorId": 1},
    )


def page_width(page: Any) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_long_payloads_stay_one_line_and_open_in_full(
    page, live_server_ws, make_user, station_factory, station_loop, screenshot
):
    from stations.models import Command, MessageLog

    operator = make_user("operator", superuser=True)
    station = station_factory("LONG-1")
    events = [long_event(kind, seq) for seq, kind in enumerate(("Started", "Updated", "Updated", "Ended"))]
    assert min(len(json.dumps(e)) for e in events) > 5000

    async def scenario() -> None:
        async with RawStation.connect(live_server_ws.ws_url, "LONG-1") as st:
            await st.boot()
            for event in events:
                assert (await st.call("TransactionEvent", event))[0] == 3

    station_loop.run(scenario())
    # The boot and four events, each a CALL and its answer (the log is written in batches).
    assert wait_until(lambda: MessageLog.objects.filter(station=station).count() == 10)
    variables = [
        {
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": f"Setting{i:02d}"},
            "attributeValue": "x" * 40,
        }
        for i in range(40)
    ]
    results = [
        {"attributeStatus": "Accepted", "component": v["component"], "variable": v["variable"]} for v in variables
    ]
    request, response = {"setVariableData": variables}, {"setVariableResult": results}
    command = Command.objects.create(
        station=station,
        action="SetVariables",
        request=request,
        state="answered",
        response=response,
        message_id="cmd-long",
        created_by=operator,
    )

    page.set_viewport_size({"width": WIDTH, "height": 900})
    login(page, live_server_ws.http_url, "operator")
    page.goto(f"{live_server_ws.http_url}/stations/LONG-1/")
    rows = page.locator("#message-rows tr")
    expect(rows).to_have_count(10)
    assert page_width(page) <= WIDTH
    previews = page.get_by_test_id("message-preview")
    texts = []
    for i in range(10):
        preview = previews.nth(i)
        texts.append(preview.inner_text())
        box = preview.bounding_box()
        assert box is not None and box["height"] < 20, texts[-1]  # one line, whatever the payload's length
    # The four events' CALLs are cut on the server too: 160 characters, not 6 kB, per row.
    assert [len(t) for t in texts if t.endswith("…")] == [160] * 4
    screenshot(page, "long-payloads-station")

    # The command's request and answer: one line each, a click shows all of it, the page stays as wide.
    row = page.get_by_test_id(f"command-{command.pk}")
    command.refresh_from_db()  # as stored (jsonb orders keys its own way) and shown
    for testid, sent, stored in (
        ("command-request", request, command.request),
        ("command-response", response, command.response),
    ):
        cell = row.get_by_test_id(testid)
        frame = cell.locator("pre.frame")
        expect(frame).to_be_hidden()
        cell.locator("summary").click()
        expect(frame).to_be_visible()
        assert frame.text_content() == json.dumps(stored, ensure_ascii=False, indent=2)
        assert json.loads(frame.text_content()) == sent
    assert page_width(page) <= WIDTH

    # The message log: as narrow; a preview opens the frame's page with the whole payload pretty-printed.
    page.goto(f"{live_server_ws.http_url}/messages/?station=LONG-1")
    expect(page).to_have_title("Messages · CSMS")
    expect(rows).to_have_count(10)
    assert page_width(page) <= WIDTH
    started = MessageLog.objects.get(
        station=station, action="TransactionEvent", direction="in", payload__eventType="Started"
    )
    page.locator(f"a[href='/messages/{started.pk}/']").click()
    expect(page).to_have_title("CALL TransactionEvent · CSMS")
    shown = page.get_by_test_id("message-payload").text_content()
    assert shown == json.dumps(started.payload, ensure_ascii=False, indent=2)
    assert json.loads(shown) == events[0]
    assert page_width(page) <= WIDTH
    # Its answer, under the same message id, is one click further.
    expect(page.locator("#message-rows tr")).to_have_count(1)
    expect(page.locator("#message-rows")).to_contain_text("RESULT")
    screenshot(page, "long-payloads-message")
