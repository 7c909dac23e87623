"""The device-model page's monitoring forms and the API's monitoring report: what they send, who may."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devicemodel.models import DeviceVariable, VariableMonitor
from stations.models import Command
from tests.devicemodel.test_pages_and_api import client_for, queries

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def sent(action: str) -> list[dict[str, object]]:
    return list(Command.objects.filter(action=action).order_by("pk").values_list("request", flat=True))


def test_page_forms_send_the_monitoring_commands_and_billing_may_not(station_factory):
    station = station_factory("CS-1")
    power = DeviceVariable.objects.create(
        station=station, component_name="EVSE", evse_id=1, name="Power", updated_at=T0
    )
    operator = client_for("operator")
    base = "/stations/CS-1/device-model/"
    form = {"type": "UpperThreshold", "value": "22000", "severity": "2", "transaction": "1"}
    assert operator.post(f"{base}variables/{power.pk}/monitor/", form).status_code == 302
    assert operator.post(f"{base}variables/{power.pk}/monitor/", form | {"severity": "10"}).status_code == 302
    assert operator.post(f"{base}variables/{power.pk}/monitor/", form | {"type": "Bogus"}).status_code == 302
    assert operator.post(f"{base}monitors/5/clear/").status_code == 302
    assert operator.post(f"{base}monitoring/", {"what": "level", "severity": "3"}).status_code == 302
    assert operator.post(f"{base}monitoring/", {"what": "base", "base": "FactoryDefault"}).status_code == 302
    assert operator.post(f"{base}monitoring/", {"what": "report"}).status_code == 302
    assert sent("SetVariableMonitoring") == [
        {
            "setMonitoringData": [
                {
                    "value": 22000.0,
                    "type": "UpperThreshold",
                    "severity": 2,
                    "transaction": True,
                    "component": {"name": "EVSE", "evse": {"id": 1}},
                    "variable": {"name": "Power"},
                }
            ]
        }
    ]
    assert sent("ClearVariableMonitoring") == [{"id": [5]}]
    assert sent("SetMonitoringLevel") == [{"severity": 3}]
    assert sent("SetMonitoringBase") == [{"monitoringBase": "FactoryDefault"}]
    assert sent("GetMonitoringReport") == [{"requestId": 1}]
    billing = client_for("billing")
    assert billing.post(f"{base}monitors/5/clear/").status_code == 403
    assert billing.post(f"{base}monitoring/", {"what": "report"}).status_code == 403


def test_api_monitoring_report_and_the_page_queries_do_not_grow_with_monitors(station_factory):
    station = station_factory("CS-1")
    operator = client_for("operator")
    response = operator.post(
        "/api/v1/stations/CS-1/reports/",
        {"kind": "Monitoring", "monitoring_criteria": ["DeltaMonitoring"]},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["kind"], response.json()["state"]) == ("Monitoring", "failed")  # offline
    assert sent("GetMonitoringReport") == [{"requestId": 1, "monitoringCriteria": ["DeltaMonitoring"]}]
    bad = operator.post(
        "/api/v1/stations/CS-1/reports/",
        {"kind": "FullInventory", "monitoring_criteria": ["DeltaMonitoring"]},
        content_type="application/json",
    )
    assert bad.status_code == 400

    def add(n: int, first_id: int) -> None:
        variables = DeviceVariable.objects.bulk_create(
            DeviceVariable(station=station, component_name="C", name=f"v{first_id + i}", updated_at=T0)
            for i in range(n)
        )
        VariableMonitor.objects.bulk_create(
            VariableMonitor(
                station=station,
                variable=v,
                monitor_id=first_id + i,
                type="Delta",
                value=1.0,
                severity=5,
                source="reported",
                updated_at=T0,
            )
            for i, v in enumerate(variables)
        )

    add(2, 1)
    few, _ = queries(operator, "/stations/CS-1/device-model/")
    api_few, _ = queries(operator, "/api/v1/stations/CS-1/monitors/")
    add(100, 100)
    many, page = queries(operator, "/stations/CS-1/device-model/")
    api_many, listed = queries(operator, "/api/v1/stations/CS-1/monitors/")
    assert (few, api_few) == (many, api_many)
    assert page.content.decode().count('data-monitor="') == 102
    assert listed.json()["count"] == 102
