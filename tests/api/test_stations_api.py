"""Stations API: permissions per role, registration, PATCH, DELETE (409 with an audit trail), filters, N+1."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stations.commands import command_send
from stations.models import ChargingStation, Connector, Evse
from stations.services import station_register
from tests.api.helpers import call

pytestmark = pytest.mark.django_db(transaction=True)


def test_permissions_per_role(tokens):
    station_register(identity="CS-1")
    assert call(None, "GET", "/api/v1/stations/")[0] == 401
    assert call(None, "GET", "/api/v1/stations/CS-1/")[0] == 401
    assert call(tokens["none"], "GET", "/api/v1/stations/")[0] == 403
    for role in ("billing", "operator", "admin"):
        assert call(tokens[role], "GET", "/api/v1/stations/")[0] == 200
    for role in ("none", "billing", "operator"):
        assert call(tokens[role], "POST", "/api/v1/stations/", {"identity": "CS-2"})[0] == 403
        assert call(tokens[role], "PATCH", "/api/v1/stations/CS-1/", {"description": "x"})[0] == 403
        assert call(tokens[role], "DELETE", "/api/v1/stations/CS-1/")[0] == 403
    assert ChargingStation.objects.count() == 1


def test_register_with_hashed_write_only_password(tokens):
    code, body = call(
        tokens["admin"],
        "POST",
        "/api/v1/stations/",
        {"identity": "CS-9", "password": "s3cret-s3cret", "security_profile": 1, "registration_status": "Pending"},
    )
    assert code == 201, body
    assert "password" not in body and "password_hash" not in body
    assert (body["identity"], body["security_profile"], body["registration_status"]) == ("CS-9", 1, "Pending")
    assert body["has_password"] is True and body["is_online"] is False and body["evses"] == []
    station = ChargingStation.objects.get(identity="CS-9")
    assert station.password_hash.startswith("station_sha256$") and station.check_password("s3cret-s3cret")

    code, body = call(tokens["admin"], "POST", "/api/v1/stations/", {"identity": "CS-9"})
    assert (code, body) == (400, {"identity": ["charging station with this identity already exists."]})
    code, body = call(tokens["admin"], "POST", "/api/v1/stations/", {"identity": "CS-3", "security_profile": 2})
    assert (code, body) == (400, {"password": ["security profile 2 needs a password"]})
    code, body = call(tokens["admin"], "POST", "/api/v1/stations/", {"identity": "a:b"})
    assert code == 400 and list(body) == ["identity"]
    code, body = call(tokens["admin"], "POST", "/api/v1/stations/", {"identity": "x" * 49})
    assert code == 400 and list(body) == ["identity"]


def test_patch_fields_and_identity_is_not_renamed(tokens):
    station_register(identity="CS-1")
    code, body = call(
        tokens["admin"],
        "PATCH",
        "/api/v1/stations/CS-1/",
        {
            "registration_status": "Rejected",
            "validation_mode": "lenient",
            "description": "car park",
            "password": "new-pass-123",
            "security_profile": 2,
            "identity": "RENAMED",
        },
    )
    assert code == 200, body
    assert (body["identity"], body["registration_status"], body["validation_mode"], body["security_profile"]) == (
        "CS-1",
        "Rejected",
        "lenient",
        2,
    )
    station = ChargingStation.objects.get(identity="CS-1")
    assert station.check_password("new-pass-123") and station.description == "car park"
    code, body = call(tokens["admin"], "PATCH", "/api/v1/stations/CS-1/", {"password": ""})
    assert (code, body) == (400, {"password": ["security profile 2 needs a password"]})
    code, body = call(tokens["admin"], "PATCH", "/api/v1/stations/CS-1/", {"registration_status": "Maybe"})
    assert code == 400 and body == {"registration_status": ['"Maybe" is not a valid choice.']}
    assert call(tokens["admin"], "PATCH", "/api/v1/stations/NOPE/", {"description": "x"})[0] == 404


def test_delete_refused_with_audit_trail_allowed_without(tokens):
    used, _ = station_register(identity="CS-USED")
    station_register(identity="CS-NEW")
    command_send(station=used, action="ClearCache", payload={})
    code, body = call(tokens["admin"], "DELETE", "/api/v1/stations/CS-USED/")
    assert code == 409
    assert body == {
        "detail": "cannot delete CS-USED: the station has commands (audit trail); "
        "set its registration_status to Rejected instead"
    }
    assert ChargingStation.objects.filter(identity="CS-USED").exists()
    assert call(tokens["admin"], "DELETE", "/api/v1/stations/CS-NEW/") == (204, None)
    assert call(tokens["admin"], "DELETE", "/api/v1/stations/CS-NEW/")[0] == 404


def test_delete_refused_with_transactions(tokens):
    from tests.transactions.factories import tx_event
    from transactions.services import transaction_event_apply

    station, _ = station_register(identity="CS-T")
    transaction_event_apply(station_id=station.pk, event=tx_event("Started", 0, "2026-01-01T10:00:00Z"))
    code, body = call(tokens["admin"], "DELETE", "/api/v1/stations/CS-T/")
    assert code == 409 and "transactions" in body["detail"]


def test_detail_nested_evses_and_boot_data(tokens):
    station, _ = station_register(identity="CS-1")
    ChargingStation.objects.filter(pk=station.pk).update(vendor_name="Acme", model="X1", firmware_version="1.2")
    evse = Evse.objects.create(station=station, evse_id=1)
    Connector.objects.create(evse=evse, connector_id=1, status="Available")
    Connector.objects.create(evse=evse, connector_id=2, status="Faulted")
    code, body = call(tokens["billing"], "GET", "/api/v1/stations/CS-1/")
    assert code == 200
    assert (body["vendor_name"], body["model"], body["firmware_version"]) == ("Acme", "X1", "1.2")
    assert body["evses"] == [
        {
            "evse_id": 1,
            "connectors": [
                {"connector_id": 1, "status": "Available", "status_at": None},
                {"connector_id": 2, "status": "Faulted", "status_at": None},
            ],
        }
    ]
    assert call(tokens["billing"], "GET", "/api/v1/stations/NOPE/") == (
        404,
        {"detail": "No ChargingStation matches the given query."},
    )


def test_filters_search_ordering_pagination_and_no_n_plus_1(tokens):
    for i in range(60):
        station, _ = station_register(identity=f"CS-{i:03d}")
        ChargingStation.objects.filter(pk=station.pk).update(
            is_online=i % 2 == 0, model="M1" if i < 10 else "M2", vendor_name="Acme" if i < 5 else "Other"
        )
        evse = Evse.objects.create(station=station, evse_id=1)
        Connector.objects.create(evse=evse, connector_id=1, status="Available")
    token = tokens["billing"]
    body = call(token, "GET", "/api/v1/stations/")[1]
    assert body["count"] == 60 and len(body["results"]) == 50 and body["next"].endswith("?page=2")
    assert call(token, "GET", "/api/v1/stations/?page=2")[1]["results"][-1]["identity"] == "CS-059"
    assert call(token, "GET", "/api/v1/stations/?is_online=true")[1]["count"] == 30
    assert call(token, "GET", "/api/v1/stations/?model=M1")[1]["count"] == 10
    assert call(token, "GET", "/api/v1/stations/?vendor=Acme")[1]["count"] == 5
    assert call(token, "GET", "/api/v1/stations/?search=cs-05")[1]["count"] == 10
    assert call(token, "GET", "/api/v1/stations/?registration_status=Pending")[1]["count"] == 0
    first = call(token, "GET", "/api/v1/stations/?ordering=-identity")[1]["results"][0]
    assert first["identity"] == "CS-059"
    assert call(token, "GET", "/api/v1/stations/?page=9")[0] == 404
    assert call(token, "GET", "/api/v1/stations/?is_online=maybe")[0] == 400
    with CaptureQueriesContext(connection) as queries:
        assert call(token, "GET", "/api/v1/stations/")[0] == 200
    # auth (token + user perms) and the page: count, stations, evses, connectors; independent of the page size
    assert len(queries) <= 8, [q["sql"] for q in queries]


def test_throttling_answers_429(tokens, monkeypatch):
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "3/min"})
    codes = [call(tokens["billing"], "GET", "/api/v1/stations/")[0] for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    code, body = call(tokens["billing"], "GET", "/api/v1/stations/")
    assert code == 429 and body["detail"].startswith("Request was throttled.")
    assert call(tokens["operator"], "GET", "/api/v1/stations/")[0] == 200  # per user


def test_migrate_creates_the_billing_and_operator_groups():
    from django.contrib.auth.models import Group

    billing = Group.objects.get(name="billing")
    assert set(billing.permissions.values_list("content_type__app_label", "codename")) == {
        ("stations", "view_chargingstation"),
        ("stations", "view_evse"),
        ("stations", "view_connector"),
        ("stations", "view_command"),
        ("stations", "view_bulkcommand"),
        ("stations", "view_stationevent"),
        ("stations", "view_displaymessage"),
        ("stations", "view_displaymessagereport"),
        ("security", "view_securityevent"),
        ("transactions", "view_idtoken"),
        ("transactions", "view_chargingtransaction"),
        ("transactions", "view_transactioneventrecord"),
        ("transactions", "view_metersample"),
        ("transactions", "view_reservation"),
        ("stations", "view_stationevent"),
        ("security", "view_securityevent"),
        ("transactions", "view_customerinformationrequest"),
        ("transactions", "view_customerdataclearance"),
        ("transactions", "view_tariff"),
        ("transactions", "view_tariffversion"),
        ("firmware", "view_logrequest"),
        ("firmware", "view_stationfiletransfer"),
        ("firmware", "view_firmwareimage"),
        ("firmware", "view_firmwarerollout"),
        ("firmware", "view_firmwarepublication"),
        ("smartcharging", "view_site"),
        ("smartcharging", "view_sitemember"),
        ("smartcharging", "view_evseallocation"),
        ("smartcharging", "view_allocationround"),
        ("smartcharging", "view_chargingprofile"),
        ("smartcharging", "view_chargingprofilereport"),
    }
    # Billing reads log requests' states but never downloads stations' logs (personal data).
    assert not billing.permissions.filter(codename="download_logrequest").exists()
    operator = set(Group.objects.get(name="operator").permissions.values_list("codename", flat=True))
    assert {"add_command", "add_idtoken", "change_idtoken", "delete_idtoken", "view_chargingtransaction"} <= operator
    assert "add_customerinformationrequest" in operator
    assert not {"add_chargingstation", "delete_chargingstation"} & operator
