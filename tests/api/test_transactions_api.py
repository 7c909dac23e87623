"""Transactions API: fields, filters, ordering, meter values and events; id tokens CRUD and CSV import."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from stations.services import station_register
from tests.api.helpers import call
from tests.transactions.factories import meter_value, sampled, tx_event
from transactions.models import IdToken
from transactions.services import transaction_event_apply

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = {"idToken": "CARD-1", "type": "ISO14443"}


def session(station_id: int, txid: str, day: str, ended: bool = True) -> None:
    transaction_event_apply(
        station_id=station_id,
        event=tx_event(
            "Started",
            0,
            f"{day}T10:00:00Z",
            txid,
            "Authorized",
            id_token=TOKEN,
            evse={"id": 1, "connectorId": 1},
            meter=[meter_value(f"{day}T10:00:00Z", sampled(1000, context="Transaction.Begin"))],
        ),
    )
    transaction_event_apply(
        station_id=station_id,
        event=tx_event(
            "Updated",
            1,
            f"{day}T10:30:00Z",
            txid,
            meter=[
                meter_value(
                    f"{day}T10:30:00Z",
                    sampled(2.5, unit="kWh"),
                    sampled(7200, measurand="Power.Active.Import", unit="W", phase="L1"),
                )
            ],
        ),
    )
    if ended:
        transaction_event_apply(
            station_id=station_id,
            event=tx_event(
                "Ended",
                2,
                f"{day}T11:00:00Z",
                txid,
                "EVCommunicationLost",
                info={"stoppedReason": "EVDisconnected"},
                meter=[meter_value(f"{day}T11:00:00Z", sampled(4000, context="Transaction.End"))],
            ),
        )


@pytest.fixture
def sessions(tokens):
    one, _ = station_register(identity="CS-1")
    two, _ = station_register(identity="CS-2")
    session(one.pk, "TX-A", "2026-03-01")
    session(one.pk, "TX-B", "2026-03-02", ended=False)
    session(two.pk, "TX-C", "2026-03-03")
    return tokens


def test_transaction_permissions(sessions):
    tokens = sessions
    assert call(None, "GET", "/api/v1/transactions/")[0] == 401
    assert call(tokens["none"], "GET", "/api/v1/transactions/")[0] == 403
    for role in ("billing", "operator", "admin"):
        assert call(tokens[role], "GET", "/api/v1/transactions/")[0] == 200
    assert call(tokens["admin"], "POST", "/api/v1/transactions/", {})[0] == 405


def test_transaction_fields_and_detail(sessions):
    code, body = call(sessions["billing"], "GET", "/api/v1/transactions/?station=CS-1&active=false")
    assert code == 200 and body["count"] == 1
    txn = body["results"][0]
    assert {k: txn[k] for k in ("station", "transaction_id", "evse_id", "connector_id", "id_token")} == {
        "station": "CS-1",
        "transaction_id": "TX-A",
        "evse_id": 1,
        "connector_id": 1,
        "id_token": "CARD-1",
    }
    assert (txn["started_at"], txn["ended_at"]) == ("2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z")
    assert (txn["energy_wh"], txn["stopped_reason"], txn["is_active"]) == (3000, "EVDisconnected", False)
    assert (txn["cost"], txn["currency"], txn["peak_power_w"]) == (None, None, 7200)
    code, detail = call(sessions["billing"], "GET", f"/api/v1/transactions/{txn['id']}/")
    assert code == 200 and detail == txn
    assert call(sessions["billing"], "GET", "/api/v1/transactions/999999/")[0] == 404
    assert call(sessions["billing"], "GET", "/api/v1/transactions/abc/")[0] == 404


def test_transaction_filters_and_ordering(sessions):
    token = sessions["billing"]

    def ids(query: str) -> list[str]:
        code, body = call(token, "GET", f"/api/v1/transactions/{query}")
        assert code == 200, body
        return [t["transaction_id"] for t in body["results"]]

    assert ids("") == ["TX-C", "TX-B", "TX-A"]
    assert ids("?ordering=started_at") == ["TX-A", "TX-B", "TX-C"]
    assert ids("?active=true") == ["TX-B"]
    assert ids("?station=CS-2") == ["TX-C"]
    assert ids("?started_after=2026-03-02T00:00:00Z&started_before=2026-03-03T00:00:00Z") == ["TX-B"]
    assert ids("?id_token=card-1") == ["TX-C", "TX-B", "TX-A"]
    assert ids("?id_token=OTHER") == []
    code, body = call(token, "GET", "/api/v1/transactions/?started_after=yesterday")
    assert (code, list(body)) == (400, ["started_after"])
    assert call(token, "GET", "/api/v1/transactions/?active=perhaps")[0] == 400


def test_meter_values_and_events(sessions):
    token = sessions["billing"]
    pk = call(token, "GET", "/api/v1/transactions/?station=CS-1&active=false")[1]["results"][0]["id"]
    code, body = call(token, "GET", f"/api/v1/transactions/{pk}/meter-values/")
    assert code == 200 and body["count"] == 4
    assert body["results"][1] == {
        "timestamp": "2026-03-01T10:30:00Z",
        "measurand": "Energy.Active.Import.Register",
        "phase": "",
        "location": "Outlet",
        "context": "Sample.Periodic",
        "value": 2500,
        "unit": "Wh",
    }
    assert body["results"][2]["measurand"] == "Power.Active.Import" and body["results"][2]["phase"] == "L1"
    code, body = call(token, "GET", f"/api/v1/transactions/{pk}/events/")
    assert code == 200
    assert [(e["seq_no"], e["event_type"], e["trigger_reason"]) for e in body["results"]] == [
        (0, "Started", "Authorized"),
        (1, "Updated", "MeterValuePeriodic"),
        (2, "Ended", "EVCommunicationLost"),
    ]
    assert call(token, "GET", "/api/v1/transactions/999999/meter-values/")[0] == 404
    assert call(sessions["none"], "GET", f"/api/v1/transactions/{pk}/events/")[0] == 403


# --- Id tokens ------------------------------------------------------------------------------------------------


def test_id_token_permissions(tokens):
    body = {"id_token": "AB12", "type": "ISO14443"}
    assert call(None, "GET", "/api/v1/id-tokens/")[0] == 401
    assert call(tokens["none"], "GET", "/api/v1/id-tokens/")[0] == 403
    assert call(tokens["billing"], "GET", "/api/v1/id-tokens/")[0] == 200
    assert call(tokens["billing"], "POST", "/api/v1/id-tokens/", body)[0] == 403
    code, created = call(tokens["operator"], "POST", "/api/v1/id-tokens/", body)
    assert code == 201, created
    assert call(tokens["billing"], "PATCH", f"/api/v1/id-tokens/{created['id']}/", {"status": "Blocked"})[0] == 403
    assert call(tokens["billing"], "DELETE", f"/api/v1/id-tokens/{created['id']}/")[0] == 403
    assert call(tokens["admin"], "PATCH", f"/api/v1/id-tokens/{created['id']}/", {"status": "Blocked"})[0] == 200
    assert call(tokens["operator"], "DELETE", f"/api/v1/id-tokens/{created['id']}/") == (204, None)
    assert not IdToken.objects.exists()


def test_id_token_crud_validation_and_groups(tokens):
    token = tokens["operator"]
    code, fleet = call(token, "POST", "/api/v1/id-tokens/", {"id_token": "FLEET", "type": "Central"})
    assert code == 201
    code, card = call(
        token,
        "POST",
        "/api/v1/id-tokens/",
        {"id_token": "card-7", "group_id_token": "fleet", "expires_at": "2027-01-01T00:00:00Z", "evse_ids": [1, 2]},
    )
    assert code == 201, card
    assert {k: card[k] for k in ("id_token", "type", "status", "expires_at", "group_id_token", "evse_ids")} == {
        "id_token": "card-7",
        "type": "ISO14443",
        "status": "Accepted",
        "expires_at": "2027-01-01T00:00:00Z",
        "group_id_token": "FLEET",
        "evse_ids": [1, 2],
    }
    code, body = call(token, "POST", "/api/v1/id-tokens/", {"id_token": "CARD-7"})
    assert (code, body) == (400, {"id_token": ["'CARD-7' (ISO14443) exists already"]})
    code, body = call(token, "POST", "/api/v1/id-tokens/", {"id_token": "X", "type": "Bogus", "status": "Nope"})
    assert code == 400 and set(body) == {"type", "status"}
    code, body = call(token, "POST", "/api/v1/id-tokens/", {"id_token": "X", "group_id_token": "missing"})
    assert (code, body) == (400, {"group_id_token": ["no id token 'missing'"]})
    code, body = call(token, "POST", "/api/v1/id-tokens/", {"id_token": "X", "evse_ids": [0]})
    assert code == 400 and list(body) == ["evse_ids"]
    code, body = call(token, "PATCH", f"/api/v1/id-tokens/{fleet['id']}/", {"group_id_token": "FLEET"})
    assert (code, body) == (400, {"group_id_token": ["a token cannot be its own group"]})
    code, body = call(token, "PATCH", f"/api/v1/id-tokens/{card['id']}/", {"status": "Blocked"})
    assert (code, body["status"], body["group_id_token"]) == (200, "Blocked", "FLEET")
    code, body = call(token, "PATCH", f"/api/v1/id-tokens/{card['id']}/", {"group_id_token": None})
    assert (code, body["group_id_token"]) == (200, None)
    assert call(token, "GET", "/api/v1/id-tokens/?type=Central")[1]["count"] == 1
    assert call(token, "GET", "/api/v1/id-tokens/?status=Blocked")[1]["results"][0]["id_token"] == "card-7"
    assert call(token, "GET", "/api/v1/id-tokens/?search=ard")[1]["count"] == 1
    assert call(token, "GET", "/api/v1/id-tokens/424242/")[0] == 404
    assert call(token, "PUT", f"/api/v1/id-tokens/{card['id']}/", {"id_token": "Y"})[0] == 405


def upload(token: str, text: str) -> tuple[int, dict]:
    client = Client(headers={"Authorization": f"Token {token}"})
    response = client.post(
        "/api/v1/id-tokens/import/", {"file": SimpleUploadedFile("tokens.csv", text.encode(), "text/csv")}
    )
    return response.status_code, response.json()


def test_csv_import_all_or_nothing(tokens):
    IdToken.objects.create(id_token="OLD-1", status="Accepted")
    good = (
        "id_token,type,status,expires_at,group_id_token\n"
        "FLEET-9,Central,Accepted,,\n"
        "old-1,ISO14443,Blocked,2027-06-01T00:00:00Z,FLEET-9\n"
        "NEW-2,,,,\n"
    )
    assert upload(tokens["billing"], good)[0] == 403
    assert upload(tokens["operator"], good) == (200, {"created": 2, "updated": 1})
    old = IdToken.objects.get(id_token="OLD-1")
    assert old.group_id_token is not None and old.expires_at is not None
    assert (old.status, old.group_id_token.id_token, old.expires_at.year) == ("Blocked", "FLEET-9", 2027)
    assert IdToken.objects.get(id_token="NEW-2").status == "Accepted"

    bad = (
        "id_token,type,status,expires_at,group_id_token\n"
        "OK-1,ISO14443,Accepted,,\n"
        ",ISO14443,Accepted,,\n"
        "BAD-3,Bogus,Weird,tomorrow,\n"
        "BAD-4,ISO14443,Accepted,,NOBODY\n"
        "OK-1,ISO14443,Blocked,,\n"
    )
    code, body = upload(tokens["operator"], bad)
    assert code == 400
    assert body == {
        "detail": "nothing imported: fix the rows listed",
        "errors": [
            {"row": 3, "errors": {"id_token": "1 to 36 characters"}},
            {
                "row": 4,
                "errors": {
                    "type": "one of Central, eMAID, ISO14443, ISO15693, KeyCode, Local, MacAddress, NoAuthorization",
                    "status": "one of Accepted, Blocked, Expired, Invalid, NoCredit, NotAllowedTypeEVSE, "
                    "NotAtThisLocation, NotAtThisTime, Unknown",
                    "expires_at": "an ISO 8601 timestamp with a UTC offset (e.g. 2027-01-01T00:00:00Z)",
                },
            },
            {"row": 5, "errors": {"group_id_token": "no id token 'NOBODY'"}},
            {"row": 6, "errors": {"id_token": "duplicate of row 2"}},
        ],
    }
    assert not IdToken.objects.filter(id_token="OK-1").exists()
    code, body = upload(tokens["operator"], "name,colour\nx,y\n")
    assert code == 400 and body["errors"][0]["errors"] == {
        "header": "columns needed: id_token, type, status, expires_at, group_id_token"
    }
    client = Client(headers={"Authorization": f"Token {tokens['operator']}"})
    assert client.post("/api/v1/id-tokens/import/", {}).status_code == 400
    response = client.post(
        "/api/v1/id-tokens/import/", {"file": SimpleUploadedFile("t.csv", b"\xff\xfe\x00bad", "text/csv")}
    )
    assert (response.status_code, response.json()) == (400, {"file": ["not UTF-8 text"]})


def test_csv_import_odd_files_are_400_not_500(tokens):
    token = tokens["operator"]
    code, body = upload(token, "id_token,type\nA\x00B,ISO14443\n")
    assert (code, body["errors"]) == (400, [{"row": 2, "errors": {"id_token": "must not contain NUL characters"}}])
    code, body = upload(token, 'id_token,type\n"unterminated and far too long for an id token,ISO14443\n')
    assert (code, body["errors"]) == (400, [{"row": 2, "errors": {"id_token": "1 to 36 characters"}}])
    code, body = upload(token, "id_token,type,status\nSHORT\nLONG,ISO14443,Accepted,x,y,z\n")
    assert (code, body) == (200, {"created": 2, "updated": 0})
    assert upload(token, "") == (400, {"file": ["The submitted file is empty."]})
    code, body = upload(token, "id_token,expires_at\nX,0001-01-01T00:00:00+05:00\n")
    assert code == 400 and body["errors"][0]["errors"] == {
        "expires_at": "an ISO 8601 timestamp with a UTC offset (e.g. 2027-01-01T00:00:00Z)"
    }
