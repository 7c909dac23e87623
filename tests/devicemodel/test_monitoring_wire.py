"""Monitoring end to end: live daphne, a real station socket answering the CSMS's monitoring commands, its
NotifyMonitoringReport parts and NotifyEvent alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from devicemodel import monitoring
from devicemodel.models import DeviceVariable, ReportJob, StationDeviceState, VariableMonitor
from stations.commands import command_send
from stations.models import ChargingStation, StationEvent
from tests.api_client import api, make_user
from tests.conftest import in_thread
from tests.devicemodel.test_reports_wire import answer_next, until
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online
from webhooks.models import WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.live

POWER = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
TEMP = {"component": {"name": "TempSensor", "instance": "Cabinet"}, "variable": {"name": "Temperature"}}


def monitor_entry(target: dict[str, Any], *monitors: tuple[int, str, float, int]) -> dict[str, Any]:
    return target | {
        "variableMonitoring": [
            {"id": i, "transaction": False, "value": value, "type": kind, "severity": severity}
            for i, kind, value, severity in monitors
        ]
    }


def notify_monitoring_report(request_id: int, seq_no: int, tbc: bool, monitor: list[dict[str, Any]]) -> dict[str, Any]:
    return {"requestId": request_id, "seqNo": seq_no, "tbc": tbc, "generatedAt": "2026-12-01T10:00:00Z"} | (
        {"monitor": monitor} if monitor else {}
    )


PARTS = [
    [monitor_entry(POWER, (1, "UpperThreshold", 22000.0, 2), (2, "Delta", 500.0, 7))],
    [monitor_entry(TEMP, (3, "UpperThreshold", 70.0, 0), (4, "Periodic", 900.0, 9))],
]


def stored_monitors(identity: str) -> dict[int, tuple[str, str, str, float, int, str]]:
    return {
        m.monitor_id: (m.variable.component_label, m.variable.variable_label, m.type, m.value, m.severity, m.source)
        for m in VariableMonitor.objects.select_related("variable").filter(
            station__identity=identity, gone_at__isnull=True
        )
    }


async def monitoring_report(
    st: RawStation, station_pk: int, parts: list[list[dict[str, Any]]], order: list[int]
) -> Any:
    job = await in_thread(
        lambda: monitoring.monitoring_report_request(station=ChargingStation.objects.get(pk=station_pk))
    )
    call = await answer_next(st, {"status": "Accepted"})
    assert call[2:] == ["GetMonitoringReport", {"requestId": job.request_id}]
    await until(lambda: ReportJob.objects.filter(pk=job.pk, station_status="Accepted").exists())
    last = len(parts) - 1
    for seq_no in order:
        reply = await st.call(
            "NotifyMonitoringReport", notify_monitoring_report(job.request_id, seq_no, seq_no != last, parts[seq_no])
        )
        assert reply[0] == 3 and reply[2] == {}, reply
    return await in_thread(lambda: ReportJob.objects.get(pk=job.pk))


def test_monitoring_report_set_clear_level_and_base(live_server_ws, station_factory):
    station = station_factory("CS-1")

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            # Two parts, the last one first: the job completes on the second to arrive.
            job = await monitoring_report(st, station.pk, PARTS, [1, 0])
            out["job"] = job
            out["after_report"] = await in_thread(lambda: stored_monitors("CS-1"))
            # SetVariableMonitoring: two monitors, one accepted with the station's id, one rejected.
            power = await in_thread(lambda: DeviceVariable.objects.get(name="Power"))
            command = await in_thread(
                lambda: monitoring.monitor_set(
                    station=ChargingStation.objects.get(pk=station.pk),
                    variable=power,
                    type="LowerThreshold",
                    value=100.0,
                    severity=3,
                    transaction=True,
                )
            )
            call = await answer_next(
                st,
                {
                    "setMonitoringResult": [
                        POWER | {"id": 42, "status": "Accepted", "type": "LowerThreshold", "severity": 3},
                    ]
                },
            )
            out["set_call"] = call
            await until(lambda: VariableMonitor.objects.filter(monitor_id=42).exists())
            out["42"] = await in_thread(lambda: VariableMonitor.objects.get(monitor_id=42))
            # The raw command door: per result, Accepted stored, Rejected not.
            await in_thread(
                lambda: command_send(
                    station=ChargingStation.objects.get(pk=station.pk),
                    action="SetVariableMonitoring",
                    payload={
                        "setMonitoringData": [
                            TEMP | {"value": 80.0, "type": "UpperThreshold", "severity": 1},
                            TEMP | {"value": 1.0, "type": "Delta", "severity": 8},
                        ]
                    },
                )
            )
            await answer_next(
                st,
                {
                    "setMonitoringResult": [
                        TEMP | {"status": "Rejected", "type": "Delta", "severity": 8},
                        TEMP | {"id": 43, "status": "Accepted", "type": "UpperThreshold", "severity": 1},
                    ]
                },
            )
            await until(lambda: VariableMonitor.objects.filter(monitor_id=43).exists())
            out["command"] = command
            # ClearVariableMonitoring: 2 removed, 3 refused.
            await in_thread(
                lambda: monitoring.monitor_clear(station=ChargingStation.objects.get(pk=station.pk), monitor_ids=[2, 3])
            )
            await answer_next(
                st, {"clearMonitoringResult": [{"status": "Accepted", "id": 2}, {"status": "Rejected", "id": 3}]}
            )
            await until(lambda: VariableMonitor.objects.filter(monitor_id=2, gone_at__isnull=False).exists())
            # SetMonitoringLevel accepted, SetMonitoringBase rejected.
            cs = await in_thread(lambda: ChargingStation.objects.get(pk=station.pk))
            await in_thread(lambda: command_send(station=cs, action="SetMonitoringLevel", payload={"severity": 4}))
            await answer_next(st, {"status": "Accepted"})
            await in_thread(
                lambda: command_send(station=cs, action="SetMonitoringBase", payload={"monitoringBase": "All"})
            )
            await answer_next(st, {"status": "Rejected"})
            await until(lambda: StationDeviceState.objects.filter(station=cs, monitoring_level=4).exists())
            await until(lambda: cs.commands.filter(action="SetMonitoringBase", state="answered").exists())
            # A second full report without 3 and 4: they are gone; what the CSMS set stays "set by the CSMS".
            second = [
                [monitor_entry(POWER, (1, "UpperThreshold", 21000.0, 2), (42, "LowerThreshold", 100.0, 3))],
                [monitor_entry(TEMP, (43, "UpperThreshold", 80.0, 1))],
            ]
            out["second"] = await monitoring_report(st, station.pk, second, [0, 1])
        return out

    out = run(scenario())
    assert (out["job"].state, out["job"].parts_received, out["job"].variables_received, out["job"].kind) == (
        "complete",
        2,
        4,
        "Monitoring",
    )
    assert out["after_report"] == {
        1: ("EVSE@1", "Power", "UpperThreshold", 22000.0, 2, "reported"),
        2: ("EVSE@1", "Power", "Delta", 500.0, 7, "reported"),
        3: ("TempSensor[Cabinet]", "Temperature", "UpperThreshold", 70.0, 0, "reported"),
        4: ("TempSensor[Cabinet]", "Temperature", "Periodic", 900.0, 9, "reported"),
    }
    assert out["set_call"][2:] == [
        "SetVariableMonitoring",
        {"setMonitoringData": [POWER | {"value": 100.0, "type": "LowerThreshold", "severity": 3, "transaction": True}]},
    ]
    assert (out["42"].transaction, out["42"].source, out["42"].value) == (True, "csms", 100.0)
    state = StationDeviceState.objects.get(station=station)
    assert (state.monitoring_level, state.monitoring_base) == (4, "")
    assert out["second"].state == "complete"
    assert stored_monitors("CS-1") == {
        1: ("EVSE@1", "Power", "UpperThreshold", 21000.0, 2, "reported"),
        42: ("EVSE@1", "Power", "LowerThreshold", 100.0, 3, "csms"),
        43: ("TempSensor[Cabinet]", "Temperature", "UpperThreshold", 80.0, 1, "csms"),
    }
    assert set(VariableMonitor.objects.filter(gone_at__isnull=False).values_list("monitor_id", flat=True)) == {2, 3, 4}


def notify_event(seq_no: int, *events: tuple[int, int | None], generated_at: str = "2026-12-01T11:00:00Z") -> Any:
    return {
        "generatedAt": generated_at,
        "seqNo": seq_no,
        "eventData": [
            {
                "eventId": event_id,
                "timestamp": "2026-12-01T10:59:00Z",
                "trigger": "Alerting",
                "actualValue": "75",
                "eventNotificationType": "CustomMonitor" if monitor_id is not None else "HardWiredNotification",
                "component": TEMP["component"],
                "variable": TEMP["variable"],
            }
            | ({"variableMonitoringId": monitor_id} if monitor_id is not None else {})
            for event_id, monitor_id in events
        ],
    }


def test_notify_event_from_a_severe_monitor_raises_an_alert_and_the_webhook(csms_server, station_factory):
    # Its own server, not caching which events have subscribers (a shared one may have cached none).
    live_server_ws = csms_server("webhooks-uncached", CSMS_WEBHOOK_CACHE_S="0")
    station = station_factory("CS-1")
    WebhookSubscription.objects.create(url="http://127.0.0.1:9/hook", secret="s" * 32, events=["station.event_alert"])
    operator = Client()
    operator.force_login(make_user("op", perms=("add_command", "view_chargingstation"))[0])
    _, token = make_user("reader", perms=("view_chargingstation",))

    async def scenario() -> list[Any]:
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            await monitoring_report(st, station.pk, PARTS, [0, 1])
            # 3: severity 0 (alert at the default level 2), 4: severity 9 (not), 77: unknown monitor, none: hardwired.
            replies = [await st.call("NotifyEvent", notify_event(0, (1, 3), (2, 4), (3, 77), (4, None)))]
            # A retried message adds no row and no second delivery.
            replies.append(await st.call("NotifyEvent", notify_event(0, (1, 3), (2, 4), (3, 77), (4, None))))
            return replies

    replies = run(scenario())
    assert [r[2] for r in replies] == [{}, {}]
    events = {e.event_id: (e.severity, e.alert) for e in StationEvent.objects.filter(station=station)}
    assert events == {1: (0, True), 2: (9, False), 3: (None, False), 4: (None, False)}
    deliveries = list(WebhookDelivery.objects.filter(event="station.event_alert"))
    assert len(deliveries) == 1
    payload = deliveries[0].payload
    assert (payload["station"], payload["event_id"], payload["severity"], payload["variable_monitoring_id"]) == (
        "CS-1",
        1,
        0,
        3,
    )
    # The page lists the monitors and the alert; acknowledging it removes it from the alerts.
    page = operator.get("/stations/CS-1/device-model/").content.decode()
    assert 'data-testid="monitors"' in page and "UpperThreshold" in page and 'data-testid="event-alert"' in page
    alerts_page = operator.get("/device-model/event-alerts/").content.decode()
    assert "CS-1" in alerts_page and 'data-testid="event-alert"' in alerts_page
    alert = StationEvent.objects.get(event_id=1)
    response = operator.post(f"/stations/CS-1/device-model/event-alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 302
    assert StationEvent.objects.get(pk=alert.pk).acknowledged_at is not None
    assert 'data-testid="event-alert"' not in operator.get("/device-model/event-alerts/").content.decode()
    code, body = api(live_server_ws.http_url, "GET", "/api/v1/stations/CS-1/monitors/", None, token)
    assert code == 200 and [m["monitor_id"] for m in body["results"]] == [1, 2, 3, 4]
    assert body["results"][2]["component"] == {
        "name": "TempSensor",
        "instance": "Cabinet",
        "evse_id": None,
        "connector_id": None,
    }


def test_the_alert_level_is_a_setting(settings, station_factory):
    from stations.services import station_events_record

    station = station_factory("CS-2")
    variable = DeviceVariable.objects.create(
        station=station, component_name="C", name="v", updated_at=datetime.now(UTC)
    )
    VariableMonitor.objects.bulk_create(
        VariableMonitor(
            station=station,
            variable=variable,
            monitor_id=i,
            type="UpperThreshold",
            value=1.0,
            severity=severity,
            source="reported",
            updated_at=datetime.now(UTC),
        )
        for i, severity in ((1, 3), (2, 5))
    )
    settings.CSMS_EVENT_ALERT_SEVERITY = 4
    data = notify_event(0, (1, 1), (2, 2))["eventData"]
    station_events_record(
        station_id=station.pk, generated_at=datetime(2026, 12, 1, tzinfo=UTC), seq_no=0, event_data=data
    )
    assert dict(StationEvent.objects.values_list("event_id", "alert")) == {1: True, 2: False}
