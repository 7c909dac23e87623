"""The device-model page and API: a fixed number of queries whatever the number of variables; filters; roles;
WriteOnly values never shown; the admin is read-only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from csms.roles import roles_ensure
from devicemodel import services
from devicemodel.models import DeviceVariable, ReportJob
from tests.devicemodel.factories import many_entries, report_entry

pytestmark = pytest.mark.django_db(transaction=True)


def store(station: Any, entries: list[dict[str, Any]], request_id: int = 1, kind: str = "FullInventory") -> None:
    ReportJob.objects.create(station=station, request_id=request_id, kind=kind)
    with transaction.atomic():
        services.report_part_record(
            station_id=station.pk,
            request_id=request_id,
            seq_no=0,
            tbc=False,
            generated_at=datetime(2026, 12, 1, tzinfo=UTC),
            report_data=entries,
        )


def client_for(role: str) -> Client:
    roles_ensure()
    user = User.objects.create_user(f"u-{role}", password="pw", is_staff=role == "admin", is_superuser=role == "admin")
    if role in ("billing", "operator"):
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def queries(client: Client, url: str) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(captured), response


def test_page_and_api_run_the_same_number_of_queries_for_10_and_1000_variables(station_factory):
    small, large = station_factory("CS-S"), station_factory("CS-L")
    store(small, many_entries(10))
    store(large, many_entries(1000))
    client = client_for("operator")
    store(small, many_entries(10, "W"), request_id=2)
    store(large, many_entries(1000, "W"), request_id=2)
    jobs = {
        s.identity: list(ReportJob.objects.filter(station=s).order_by("pk").values_list("pk", flat=True))
        for s in (small, large)
    }
    for url in (
        "/stations/{}/device-model/",
        "/api/v1/stations/{}/device-model/",
        "/stations/{}/device-model/?q=V&mutable=1&gone=1&old={}&new={}",
    ):
        few, _ = queries(client, url.format("CS-S", *jobs["CS-S"]))
        many, response = queries(client, url.format("CS-L", *jobs["CS-L"]))
        assert few == many, (url, few, many)
    assert response.status_code == 200


def test_api_lists_the_model_with_filters_and_never_a_write_only_value(station_factory):
    station = station_factory("CS-1")
    store(
        station,
        [
            report_entry("SecurityCtrlr", "BasicAuthPassword", None, mutability="WriteOnly", data_type="string"),
            report_entry(
                "EVSE", "Power", "22000", mutability="ReadOnly", evse=1, unit="W", monitoring=True, data_type="decimal"
            ),
            report_entry("OCPPCommCtrlr", "HeartbeatInterval", "300"),
        ],
    )
    client = client_for("billing")
    body = client.get("/api/v1/stations/CS-1/device-model/").json()
    assert body["count"] == 3 and body["reboot_required"] is False
    by_name = {row["variable"]["name"]: row for row in body["results"]}
    assert by_name["BasicAuthPassword"]["attributes"][0]["value"] is None
    assert by_name["Power"]["component"] == {"name": "EVSE", "instance": "", "evse_id": 1, "connector_id": None}
    assert by_name["Power"]["characteristics"]["unit"] == "W"
    assert by_name["HeartbeatInterval"]["attributes"][0] | {"updated_at": None} == {
        "type": "Actual",
        "value": "300",
        "mutability": "ReadWrite",
        "persistent": True,
        "constant": False,
        "last_action": "",
        "last_status": "",
        "last_status_info": None,
        "last_status_at": None,
        "updated_at": None,
    }

    def names(query: str) -> list[str]:
        rows = client.get(f"/api/v1/stations/CS-1/device-model/?{query}").json()["results"]
        return sorted(r["variable"]["name"] for r in rows)

    assert names("monitoring=1") == ["Power"]
    assert names("mutable=1") == ["BasicAuthPassword", "HeartbeatInterval"]
    assert names("search=heart") == ["HeartbeatInterval"]
    assert client.get("/api/v1/stations/NOPE/device-model/").status_code == 404
    assert Client().get("/api/v1/stations/CS-1/device-model/").status_code in (401, 403)
    # Billing reads but may not request a report (it sends a command).
    assert (
        client.post(
            "/api/v1/stations/CS-1/reports/", {"kind": "FullInventory"}, content_type="application/json"
        ).status_code
        == 403
    )
    page = client.get("/stations/CS-1/device-model/").content.decode()
    assert "(write-only)" in page and "HeartbeatInterval" in page


def test_report_request_through_the_api_for_an_offline_station_fails_at_once(station_factory):
    station_factory("CS-1")
    client = client_for("operator")
    response = client.post("/api/v1/stations/CS-1/reports/", {"kind": "FullInventory"}, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["state"], body["request_id"], body["error"]) == (
        "FullInventory",
        "failed",
        1,
        "station not connected",
    )
    bad = client.post("/api/v1/stations/CS-1/reports/", {"kind": "Criteria"}, content_type="application/json")
    assert bad.status_code == 400
    listed = client.get("/api/v1/stations/CS-1/reports/").json()
    assert [j["request_id"] for j in listed["results"]] == [1]
    assert client.get(f"/api/v1/stations/CS-1/reports/{body['id']}/").json()["state"] == "failed"


def test_the_page_diff_between_two_reports_and_the_read_only_admin(station_factory):
    station = station_factory("CS-1")
    store(station, [report_entry("A", "x", "1"), report_entry("A", "y", "2")], request_id=1)
    store(station, [report_entry("A", "x", "5"), report_entry("A", "z", "3")], request_id=2)
    old, new = ReportJob.objects.get(request_id=1), ReportJob.objects.get(request_id=2)
    client = client_for("admin")
    page = client.get(f"/stations/CS-1/device-model/?old={old.pk}&new={new.pk}&gone=1").content.decode()
    assert "+ A.z" in page and "− A.y" in page and "A.x: 1 → 5" in page
    variable = DeviceVariable.objects.get(name="x")
    assert client.get(f"/admin/devicemodel/devicevariable/{variable.pk}/change/").status_code == 200
    assert client.get("/admin/devicemodel/devicevariable/add/").status_code == 403
    assert client.post(f"/admin/devicemodel/devicevariable/{variable.pk}/delete/").status_code == 403
    assert "device-model-link" in client.get("/stations/CS-1/").content.decode()
