"""Dashboard views without a browser: permissions, command forms, sessions, id tokens, query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from csms.timeutil import format_ocpp
from stations.models import ChargingStation, Command, Connector, ConnectorStatus, Evse
from stations.services import station_register
from tests.api.helpers import streamed
from tests.transactions.factories import meter_value, sampled, tx_event
from transactions import services as txn_services
from transactions.models import ChargingTransaction, IdToken

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def client_for(username: str, *permissions: str) -> Client:
    user = User.objects.create_user(username, "", "pw")
    for perm in permissions:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    client = Client()
    client.force_login(user)
    return client


def run_session(
    station: ChargingStation, transaction_id: str = "TX-1", *, end: bool = True, seq_nos: tuple[int, ...] = (0, 1, 2)
) -> ChargingTransaction:
    """Started at 0 Wh / 7 kW, Updated at 1 kWh / 11 kW, Ended at 2.5 kWh (30 minutes apart)."""
    steps = [("Started", 0, 0, 7000), ("Updated", 30, 1000, 11000), ("Ended", 60, 2500, 0)]
    for seq, (kind, minutes, wh, w) in zip(seq_nos, steps, strict=True):
        if kind == "Ended" and not end:
            break
        ts = format_ocpp(T0 + timedelta(minutes=minutes))
        txn_services.transaction_event_apply(
            station_id=station.pk,
            event=tx_event(
                kind,
                seq,
                ts,
                transaction_id=transaction_id,
                id_token={"idToken": "CARD-1", "type": "ISO14443"},
                meter=[meter_value(ts, sampled(wh), sampled(w, measurand="Power.Active.Import"))],
            ),
        )
    return ChargingTransaction.objects.get(station=station, transaction_id=transaction_id)


# --- Command forms --------------------------------------------------------------------------------------------


def test_read_only_user_sees_no_command_forms_and_cannot_post():
    station_register(identity="RO-1")
    client = client_for("viewer")
    page = client.get("/stations/RO-1/")
    assert page.status_code == 200
    assert b'data-testid="command-forms"' not in page.content
    assert b"hx-post" not in page.content
    response = client.post("/stations/RO-1/commands/", {"form": "reset", "type": "Immediate"})
    assert response.status_code == 403
    assert not Command.objects.exists()


def test_anonymous_post_goes_to_login():
    station_register(identity="RO-1")
    response = Client().post("/stations/RO-1/commands/", {"form": "reset", "type": "Immediate"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_operator_sees_every_command_form():
    station_register(identity="OP-1")
    content = client_for("op", "stations.add_command").get("/stations/OP-1/").content.decode()
    for form in (
        "reset",
        "change-availability",
        "unlock-connector",
        "request-start",
        "request-stop",
        "trigger-message",
        "get-variables",
        "set-variables",
        "clear-cache",
        "generic",
    ):
        assert f'data-testid="form-{form}"' in content
    assert content.count("<option>", content.index('name="action"')) >= 40  # the 40 CSMS->CS actions


@pytest.mark.parametrize(
    ("fields", "action", "payload"),
    [
        ({"form": "reset", "type": "OnIdle", "evse_id": "1"}, "Reset", {"type": "OnIdle", "evseId": 1}),
        (
            {"form": "change-availability", "operational_status": "Inoperative", "evse_id": "1", "connector_id": "2"},
            "ChangeAvailability",
            {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 2}},
        ),
        (
            {"form": "unlock-connector", "evse_id": "1", "connector_id": "1"},
            "UnlockConnector",
            {"evseId": 1, "connectorId": 1},
        ),
        # request-start: tests/transactions/test_remote_start_any_door.py (the pipeline allocates remoteStartId)
        ({"form": "request-stop", "transaction_id": "TX-9"}, "RequestStopTransaction", {"transactionId": "TX-9"}),
        (
            {"form": "trigger-message", "requested_message": "Heartbeat"},
            "TriggerMessage",
            {"requestedMessage": "Heartbeat"},
        ),
        (
            {"form": "get-variables", "component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"},
            "GetVariables",
            {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]},
        ),
        (
            {"form": "set-variables", "component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "60"},
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                        "attributeValue": "60",
                    }
                ]
            },
        ),
        ({"form": "clear-cache"}, "ClearCache", {}),
        ({"form": "generic", "action": "GetLocalListVersion", "payload": "{}"}, "GetLocalListVersion", {}),
    ],
)
def test_each_form_sends_its_request_and_returns_the_new_row(
    fields: dict[str, str], action: str, payload: dict[str, Any]
) -> None:
    station_register(identity="OP-1")
    response = client_for("op", "stations.add_command").post("/stations/OP-1/commands/", fields)
    assert response.status_code == 200, response.content
    command = Command.objects.get()
    assert (command.action, command.request) == (action, payload)
    assert command.state == "offline"  # the station is not connected: recorded and failed at once
    assert f'id="command-{command.pk}"'.encode() in response.content


def test_schema_violations_are_shown_inline_and_nothing_is_sent():
    station_register(identity="OP-1")
    client = client_for("op", "stations.add_command")
    response = client.post(
        "/stations/OP-1/commands/",
        {"form": "generic", "action": "Reset", "payload": '{"type": "Sometime"}'},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#errors-generic"
    assert b"not schema-valid" in response.content and b"<code>" in response.content
    bad_json = client.post("/stations/OP-1/commands/", {"form": "generic", "action": "Reset", "payload": "{oops"})
    assert bad_json.status_code == 422 and b"not valid JSON" in bad_json.content
    wrong_way = client.post("/stations/OP-1/commands/", {"form": "generic", "action": "BootNotification"})
    assert wrong_way.status_code == 422
    not_a_number = client.post("/stations/OP-1/commands/", {"form": "unlock-connector", "evse_id": "x"})
    assert not_a_number.status_code == 422 and not_a_number["HX-Retarget"] == "#errors-unlock-connector"
    assert not Command.objects.exists()


def test_a_pending_row_rereads_itself_until_final():
    station = station_register(identity="OP-1")[0]
    ChargingStation.objects.filter(pk=station.pk).update(is_online=True, channel_name="specific.nobody!x")
    client = client_for("op", "stations.add_command")
    created = client.post("/stations/OP-1/commands/", {"form": "clear-cache"}).content.decode()
    command = Command.objects.get(station=station)
    Command.objects.filter(pk=command.pk).update(state="sent")  # as if dispatched, answer not yet in
    assert f'hx-get="/stations/OP-1/commands/{command.pk}/row/"' in created and "load delay" in created
    pending = client.get(f"/stations/OP-1/commands/{command.pk}/row/").content.decode()
    assert "sent" in pending and "load delay" in pending
    Command.objects.filter(pk=command.pk).update(state="answered", response={"status": "Accepted"})
    final = client.get(f"/stations/OP-1/commands/{command.pk}/row/").content.decode()
    assert "answered" in final and "hx-trigger" not in final


def test_command_row_view_reads_the_current_state():
    station = station_register(identity="OP-1")[0]
    client = client_for("op", "stations.add_command")
    client.post("/stations/OP-1/commands/", {"form": "clear-cache"})
    command = Command.objects.get(station=station)
    row = client.get(f"/stations/OP-1/commands/{command.pk}/row/")
    assert row.status_code == 200 and b"offline" in row.content and b"hx-trigger" not in row.content
    assert client.get(f"/stations/OTHER/commands/{command.pk}/row/").status_code == 404


# --- Sessions -------------------------------------------------------------------------------------------------


def test_session_list_filters_and_csv():
    a, b = station_register(identity="SA")[0], station_register(identity="SB")[0]
    run_session(a, "TX-A")
    run_session(b, "TX-B", end=False)
    client = client_for("viewer")
    everything = client.get("/sessions/").content.decode()
    assert "TX-A" in everything and "TX-B" in everything
    only_active = client.get("/sessions/?active=1").content.decode()
    assert "TX-B" in only_active and "TX-A" not in only_active
    by_station = client.get("/sessions/?station=SA").content.decode()
    assert "TX-A" in by_station and "TX-B" not in by_station
    assert "TX-A" not in client.get("/sessions/?since=2026-03-02").content.decode()
    assert "TX-A" in client.get("/sessions/?since=2026-03-01&until=2026-03-01").content.decode()
    assert "TX-A" not in client.get("/sessions/?id_token=NOPE").content.decode()
    assert "TX-A" in client.get("/sessions/?id_token=card-1").content.decode()
    csv = client.get("/sessions/export.csv?station=SA")
    assert csv["Content-Type"].startswith("text/csv")
    lines = b"".join(streamed(csv)).decode().splitlines()
    assert lines[0].startswith("station,transaction_id")
    assert len(lines) == 2 and lines[1].startswith("SA,TX-A,") and ",2500.000000," in lines[1]


def test_session_detail_chart_and_gaps():
    station = station_register(identity="SA")[0]
    session = run_session(station, "TX-GAP", seq_nos=(0, 3, 4))
    page = client_for("viewer").get(f"/sessions/{session.pk}/").content.decode()
    assert 'data-testid="session-energy">2.50<' in page
    assert page.count('data-testid="power-point"') == 3 and page.count('data-testid="energy-point"') == 3
    assert 'class="power" data-testid="power-line" points="' in page
    assert 'data-testid="event-gap"' in page and "missing seqNo 1–2" in page


def test_overview_figures():
    station = station_register(identity="SA")[0]
    run_session(station, "TX-1", end=False)
    txn = ChargingTransaction.objects.get()
    ChargingTransaction.objects.filter(pk=txn.pk).update(started_at=datetime.now(UTC), energy_wh=Decimal(1500))
    page = client_for("viewer").get("/").content.decode()
    assert 'data-testid="active-sessions"><a href="/sessions/?active=1">1</a>' in page
    assert 'data-testid="power-now">11.0<' in page
    assert 'data-testid="energy-today">1.5<' in page


# --- ID tokens ------------------------------------------------------------------------------------------------


def test_id_tokens_need_permissions_to_change():
    token = IdToken.objects.create(id_token="CARD-1")
    viewer = client_for("viewer")
    page = viewer.get("/id-tokens/").content.decode()
    assert "CARD-1" in page and 'data-testid="block"' not in page and 'data-testid="id-token-create"' not in page
    assert (
        viewer.post("/id-tokens/new/", {"id_token": "X", "type": "ISO14443", "status": "Accepted"}).status_code == 403
    )
    assert viewer.post(f"/id-tokens/{token.pk}/status/", {"block": "1"}).status_code == 403
    token.refresh_from_db()
    assert token.status == "Accepted"


def test_operator_creates_searches_blocks_and_unblocks_tokens():
    op = client_for("op", "transactions.add_idtoken", "transactions.change_idtoken")
    created = op.post(
        "/id-tokens/new/", {"id_token": "FLEET-7", "type": "ISO14443", "status": "Accepted", "description": "van 7"}
    )
    assert created.status_code == 302
    token = IdToken.objects.get(id_token="FLEET-7")
    duplicate = op.post("/id-tokens/new/", {"id_token": "fleet-7", "type": "ISO14443", "status": "Accepted"})
    assert duplicate.status_code == 422 and b"already exists" in duplicate.content
    IdToken.objects.create(id_token="OTHER")
    found = op.get("/id-tokens/?q=van").content.decode()
    assert "FLEET-7" in found and "OTHER" not in found
    blocked = op.post(f"/id-tokens/{token.pk}/status/", {"block": "1"}, HTTP_HX_REQUEST="true")
    assert blocked.status_code == 200 and b'data-testid="unblock"' in blocked.content
    token.refresh_from_db()
    assert token.status == "Blocked"
    op.post(f"/id-tokens/{token.pk}/status/", {"block": "0"})
    token.refresh_from_db()
    assert token.status == "Accepted"


# --- Scale ----------------------------------------------------------------------------------------------------


def test_overview_query_count_does_not_grow_with_stations(django_assert_max_num_queries):
    stations = ChargingStation.objects.bulk_create(ChargingStation(identity=f"S-{i:04}") for i in range(200))
    evses = Evse.objects.bulk_create(Evse(station=s, evse_id=1) for s in stations)
    Connector.objects.bulk_create(Connector(evse=e, connector_id=1, status=ConnectorStatus.AVAILABLE) for e in evses)
    client = client_for("viewer")
    with django_assert_max_num_queries(12):
        page = client.get("/")
    assert page.status_code == 200 and page.content.count(b'data-testid="station-row-') == 50


def test_session_list_query_count_does_not_grow_with_sessions(django_assert_max_num_queries):
    stations = ChargingStation.objects.bulk_create(ChargingStation(identity=f"S-{i:04}") for i in range(200))
    ChargingTransaction.objects.bulk_create(
        ChargingTransaction(
            station=s,
            transaction_id=f"T-{i}",
            started_at=T0 + timedelta(minutes=i),
            energy_wh=Decimal(1000),
            id_token="CARD",
        )
        for i, s in enumerate(stations)
    )
    client = client_for("viewer")
    with django_assert_max_num_queries(8):
        page = client.get("/sessions/?id_token=card")
    assert page.status_code == 200 and page.content.count(b'data-testid="session-row-') == 50
    with django_assert_max_num_queries(8):
        assert client.get("/sessions/?page=4").content.count(b'data-testid="session-row-') == 50


def test_station_and_session_pages_have_a_fixed_query_count(django_assert_max_num_queries):
    from stations.models import Connection

    station = station_register(identity="SA")[0]
    for i in range(30):
        run_session(station, f"TX-{i}", end=i % 2 == 0)
        Connection.objects.create(station=station, identity="SA", outcome="accepted", disconnected_at=T0)
        Connection.objects.create(station=station, identity="SA", outcome="refused", reason="wrong password")
    client = client_for("op", "stations.add_command")
    # The connections section: its timeline (one query), the table's count and page.
    with django_assert_max_num_queries(18):
        page = client.get("/stations/SA/")
    assert page.content.count(b"/sessions/") >= 15  # the running sessions are listed
    assert page.content.count(b'data-testid="timeline-refusal"') == 30
    session = ChargingTransaction.objects.filter(station=station).first()
    assert session is not None
    with django_assert_max_num_queries(10):
        assert client.get(f"/sessions/{session.pk}/").status_code == 200


def test_htmx_gets_the_results_fragment_but_a_history_restore_the_page():
    client = client_for("viewer")
    fragment = client.get("/sessions/?active=1", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "session-rows" in fragment
    restore = client.get("/sessions/?active=1", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in restore.content.decode()
    assert (
        "<html"
        in client.get("/messages/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true").content.decode()
    )


def test_id_token_list_query_count(django_assert_max_num_queries):
    group = IdToken.objects.create(id_token="FLEET")
    IdToken.objects.bulk_create(IdToken(id_token=f"T-{i:04}", group_id_token=group) for i in range(200))
    client = client_for("op", "transactions.add_idtoken", "transactions.change_idtoken")
    with django_assert_max_num_queries(8):
        page = client.get("/id-tokens/")
    assert page.content.count(b'data-testid="token-row-') == 50


def test_station_page_shows_its_local_list_state():
    station = station_register(identity="LL")[0]
    client = client_for("viewer")
    assert b"none (assign tokens" in client.get("/stations/LL/").content
    token = IdToken.objects.create(id_token="ALICE", type="ISO14443", status="Accepted")
    local_list = txn_services.local_list_get(station=station.pk)
    local_list.tokens.add(token)
    txn_services.local_list_build_update(station=station, full=True)
    txn_services.local_list_record_result(station=station, version_number=1, status="Accepted")
    page = client.get("/stations/LL/").content.decode()
    section = page[page.index('data-testid="local-list"') :]
    section = section[: section.index("</dl>")]
    assert "<dt>Tokens on the list</dt><dd>1</dd>" in section
    assert "<dt>Version on the station</dt><dd>1</dd>" in section
    assert "<dt>Update in flight</dt><dd>none</dd>" in section
    assert "<dt>Last answer</dt><dd>Accepted at " in section
