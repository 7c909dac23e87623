"""REST API for commands and bulk commands (Django's test client; the wire behaviour is in tests/stations)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from stations.commands import command_send
from stations.models import BulkCommand, ChargingStation, Command
from stations.services import station_register
from tests.api_client import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(token: str | None) -> Client:
    return Client(headers={"Authorization": f"Token {token}"} if token else {})


def post(client: Client, path: str, body: dict) -> tuple[int, dict]:
    response = client.post(path, body, content_type="application/json")
    return response.status_code, response.json()


def test_token_endpoint_returns_a_token_for_valid_credentials():
    user = User.objects.create_user("alice", password="s3cret-pass")
    client = Client()
    code, body = post(client, "/api/v1/auth/token/", {"username": "alice", "password": "s3cret-pass"})
    assert code == 200
    assert body == {"token": Token.objects.get(user=user).key}
    code, body = post(client, "/api/v1/auth/token/", {"username": "alice", "password": "wrong"})
    assert code == 400
    assert body == {"non_field_errors": ["Unable to log in with provided credentials."]}


def test_anonymous_is_401_reader_cannot_send_operator_can():
    station_register(identity="CS-1")
    _, reader = make_user("reader", perms=())
    _, operator = make_user("op")
    assert Client().get("/api/v1/commands/").status_code == 401
    assert post(Client(), "/api/v1/stations/CS-1/commands/", {"action": "ClearCache"})[0] == 401
    assert client_for(reader).get("/api/v1/stations/CS-1/commands/").status_code == 200
    code, body = post(client_for(reader), "/api/v1/stations/CS-1/commands/", {"action": "ClearCache"})
    assert (code, body) == (403, {"detail": "Sending commands needs the stations.add_command permission."})
    code, body = post(client_for(operator), "/api/v1/stations/CS-1/commands/", {"action": "ClearCache"})
    assert (code, body["state"], body["created_by"]) == (202, "offline", "op")
    assert Command.objects.count() == 1


def test_unknown_station_is_404():
    _, token = make_user()
    code, body = post(client_for(token), "/api/v1/stations/NOPE/commands/", {"action": "ClearCache"})
    assert (code, body) == (404, {"detail": "No ChargingStation matches the given query."})
    assert client_for(token).get("/api/v1/stations/NOPE/commands/").status_code == 404


def test_wait_and_body_are_validated():
    station_register(identity="CS-1")
    _, token = make_user()
    code, body = post(client_for(token), "/api/v1/stations/CS-1/commands/", {"action": "Reset", "wait": 1000})
    assert (code, body) == (400, {"wait": ["at most 120 seconds"]})
    code, body = post(client_for(token), "/api/v1/stations/CS-1/commands/", {"payload": {}})
    assert (code, body) == (400, {"action": ["This field is required."]})
    code, body = post(client_for(token), "/api/v1/stations/CS-1/commands/", {"action": "Reset", "payload": [1]})
    assert (code, body) == (400, {"detail": "ResetRequest payload must be a JSON object, got list", "violations": []})
    assert Command.objects.count() == 0


def test_command_detail_and_filtered_paginated_lists():
    one, _ = station_register(identity="CS-1")
    two, _ = station_register(identity="CS-2")
    user, token = make_user()
    reset = command_send(station=one, action="Reset", payload={"type": "Immediate"}, user=user)
    command_send(station=one, action="ClearCache", payload={})
    command_send(station=two, action="Reset", payload={"type": "OnIdle"})
    client = client_for(token)

    body = client.get(f"/api/v1/commands/{reset.pk}/").json()
    assert set(body) == {
        "id", "station", "action", "state", "message_id", "request", "response", "error", "created_by", "bulk",
        "created_at", "sent_at", "finished_at",
    }  # fmt: skip
    assert body["station"] == "CS-1" and body["action"] == "Reset" and body["state"] == "offline"
    assert body["request"] == {"type": "Immediate"}
    assert body["error"] == {"code": "", "description": "station not connected", "details": None}
    assert body["created_by"] == "operator" and body["message_id"] == str(reset.pk)

    page = client.get("/api/v1/commands/").json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 3
    assert client.get("/api/v1/commands/?station=CS-1").json()["count"] == 2
    assert client.get("/api/v1/commands/?action=Reset").json()["count"] == 2
    assert client.get("/api/v1/commands/?state=answered").json()["count"] == 0
    assert client.get("/api/v1/commands/?state=bogus").status_code == 400
    listed = client.get("/api/v1/stations/CS-1/commands/?action=Reset").json()
    assert [c["id"] for c in listed["results"]] == [reset.pk]
    assert client.get("/api/v1/commands/999999/").status_code == 404


def test_bulk_by_filter_and_its_summary():
    for identity, model in [("A-1", "Wallbox"), ("A-2", "Wallbox"), ("B-1", "Pillar")]:
        station_register(identity=identity)
        ChargingStation.objects.filter(identity=identity).update(model=model)
    _, token = make_user()
    client = client_for(token)
    body = {"action": "Reset", "payload": {"type": "Immediate"}, "model": "Wallbox", "online": False}
    code, bulk = post(client, "/api/v1/bulk-commands/", body)
    assert code == 202
    assert bulk["target"] == {"online": False, "model": "Wallbox"}
    assert bulk["summary"] == {
        "total": 2,
        "pending": 0,
        "done": True,
        "by_state": {"queued": 0, "sent": 0, "answered": 0, "failed": 0, "timed_out": 0, "offline": 2},
    }
    assert [(r["station"], r["state"]) for r in bulk["results"]] == [("A-1", "offline"), ("A-2", "offline")]
    assert client.get(f"/api/v1/bulk-commands/{bulk['id']}/").json() == bulk
    assert client.get("/api/v1/commands/?bulk=" + str(bulk["id"])).json()["count"] == 2


def test_bulk_needs_targets_and_a_valid_payload():
    station_register(identity="A-1")
    _, token = make_user()
    client = client_for(token)
    code, body = post(client, "/api/v1/bulk-commands/", {"action": "Reset", "payload": {"type": "Immediate"}})
    assert (code, body) == (400, {"non_field_errors": ["give identities, or a filter (online, model)"]})
    code, body = post(client, "/api/v1/bulk-commands/", {"action": "Reset", "payload": {}, "identities": ["A-1"]})
    assert code == 400 and body["violations"][0]["message"] == "'type' is a required property"
    code, body = post(client, "/api/v1/bulk-commands/", {"action": "ClearCache", "identities": ["A-1", "Z-9", "Y-1"]})
    assert (code, body) == (400, {"identities": ["unknown stations: Y-1, Z-9"]})
    assert BulkCommand.objects.count() == 0 and Command.objects.count() == 0
    _, reader = make_user("reader", perms=())
    code, _ = post(client_for(reader), "/api/v1/bulk-commands/", {"action": "ClearCache", "identities": ["A-1"]})
    assert code == 403


def test_openapi_schema_documents_the_command_endpoints():
    _, token = make_user()
    response = client_for(token).get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/stations/{identity}/commands/" in paths
    assert "post" in paths["/api/v1/stations/{identity}/commands/"]
    assert "/api/v1/commands/{id}/" in paths
    assert "/api/v1/bulk-commands/" in paths


def test_admin_action_sends_a_command_to_selected_stations():
    stations = [station_register(identity=i)[0] for i in ("CS-1", "CS-2", "CS-3")]
    User.objects.create_superuser("root", password="pw")
    client = Client()
    client.login(username="root", password="pw")
    selected = {"action": "send_command", "_selected_action": [stations[0].pk, stations[2].pk]}
    page = client.post("/admin/stations/chargingstation/", selected)
    assert page.status_code == 200
    assert b"Send one OCPP request to 2 stations" in page.content
    bad = client.post(
        "/admin/stations/chargingstation/", selected | {"apply": "1", "ocpp_action": "Reset", "payload": "{}"}
    )
    assert bad.status_code == 200 and b"&#x27;type&#x27; is a required property" in bad.content
    assert BulkCommand.objects.count() == 0
    done = client.post(
        "/admin/stations/chargingstation/",
        selected | {"apply": "1", "ocpp_action": "Reset", "payload": '{"type": "OnIdle"}'},
    )
    bulk = BulkCommand.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/admin/stations/bulkcommand/{bulk.pk}/change/"
    assert sorted(bulk.commands.values_list("station__identity", "state", "request")) == [
        ("CS-1", "offline", {"type": "OnIdle"}),
        ("CS-3", "offline", {"type": "OnIdle"}),
    ]
    assert client.get(done["Location"]).status_code == 200
    commands_page = client.get("/admin/stations/command/")
    assert commands_page.status_code == 200
    assert client.get("/admin/stations/command/add/").status_code == 403


def test_openapi_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/bulk-commands/{id}/" in (tmp_path / "schema.yaml").read_text()
