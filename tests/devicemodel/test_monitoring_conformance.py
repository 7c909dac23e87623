"""Monitoring cases of OCA's block N, in process (the ASGI app and a station on a WebsocketCommunicator): a
GetMonitoringReport narrowed by componentVariable (with and without criteria), a rejected SetMonitoringLevel, a
ClearVariableMonitoring split per the station's ItemsPerMessageClearVariableMonitoring, a Periodic monitor set;
NotifyEvent alert events (WriteOnly variable, a cleared threshold after a reboot, a Periodic trigger)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from devicemodel import monitoring
from devicemodel.models import DeviceVariable, ReportJob, StationDeviceState, VariableMonitor
from stations.models import ChargingStation, Command, StationEvent
from stations.services import station_events_record
from tests.conftest import in_thread
from tests.devicemodel.factories import notify_report, report_entry
from tests.devicemodel.test_monitoring_wire import (
    POWER,
    TEMP,
    monitor_entry,
    notify_monitoring_report,
    stored_monitors,
)
from tests.devicemodel.test_reports_wire import answer_next, until
from tests.devicemodel.test_services import answered
from tests.ocpp_client import run
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.django_db(transaction=True)


def station_pk(identity: str) -> int:
    return ChargingStation.objects.get(identity=identity).pk


def test_monitoring_reports_by_component_variable_with_and_without_criteria(asgi_server, station_factory):
    """TC_N_02 (componentVariable), TC_N_03 (criteria + componentVariable), TC_N_60 (criteria + a list): the exact
    GetMonitoringReport sent, the NotifyMonitoringReport stored; a narrowed report never removes other monitors."""
    station_factory("CS-1")
    power_only: list[dict[str, Any]] = [{"component": POWER["component"], "variable": POWER["variable"]}]
    both: list[dict[str, Any]] = [*power_only, {"component": TEMP["component"], "variable": TEMP["variable"]}]
    asks: list[tuple[list[str] | None, list[dict[str, Any]]]] = [
        (None, power_only),
        (["ThresholdMonitoring"], power_only),
        (["ThresholdMonitoring", "PeriodicMonitoring"], both),
    ]
    answers = [
        [monitor_entry(POWER, (1, "UpperThreshold", 22000.0, 2), (2, "Delta", 500.0, 7))],
        [monitor_entry(POWER, (1, "UpperThreshold", 21000.0, 2))],
        [monitor_entry(POWER, (1, "UpperThreshold", 20000.0, 2)), monitor_entry(TEMP, (4, "Periodic", 900.0, 9))],
    ]

    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        calls, jobs, after = [], [], []
        async with asgi_server.station("CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            for (criteria, targets), monitors in zip(asks, answers, strict=True):
                job = await in_thread(
                    lambda c=criteria, t=targets: monitoring.monitoring_report_request(
                        station=ChargingStation.objects.get(identity="CS-1"),
                        monitoring_criteria=c,
                        component_variable=t,
                    )
                )
                calls.append(await answer_next(st, {"status": "Accepted"}))
                await until(lambda j=job: ReportJob.objects.filter(pk=j.pk, station_status="Accepted").exists())
                reply = await st.call(
                    "NotifyMonitoringReport", notify_monitoring_report(job.request_id, 0, False, monitors)
                )
                assert reply[0] == 3 and reply[2] == {}, reply
                jobs.append(await in_thread(lambda j=job: ReportJob.objects.get(pk=j.pk)))
                after.append(await in_thread(lambda: stored_monitors("CS-1")))
        return calls, jobs, after

    calls, jobs, after = run(scenario())
    assert [c[2:] for c in calls] == [
        ["GetMonitoringReport", {"requestId": jobs[0].request_id, "componentVariable": power_only}],
        [
            "GetMonitoringReport",
            {
                "requestId": jobs[1].request_id,
                "monitoringCriteria": ["ThresholdMonitoring"],
                "componentVariable": power_only,
            },
        ],
        [
            "GetMonitoringReport",
            {
                "requestId": jobs[2].request_id,
                "monitoringCriteria": ["ThresholdMonitoring", "PeriodicMonitoring"],
                "componentVariable": both,
            },
        ],
    ]
    assert [(j.state, j.kind, j.variables_received) for j in jobs] == [
        ("complete", "Monitoring", 2),
        ("complete", "Monitoring", 1),
        ("complete", "Monitoring", 2),
    ]
    assert after[0] == {
        1: ("EVSE@1", "Power", "UpperThreshold", 22000.0, 2, "reported"),
        2: ("EVSE@1", "Power", "Delta", 500.0, 7, "reported"),
    }
    # Narrowed reports merge: the Delta monitor the threshold-only report did not list stays.
    assert after[1] == after[0] | {1: ("EVSE@1", "Power", "UpperThreshold", 21000.0, 2, "reported")}
    assert after[2] == after[0] | {
        1: ("EVSE@1", "Power", "UpperThreshold", 20000.0, 2, "reported"),
        4: ("TempSensor[Cabinet]", "Temperature", "Periodic", 900.0, 9, "reported"),
    }


def test_a_rejected_monitoring_level_changes_nothing(station_factory):
    """TC_N_17: SetMonitoringLevel out of range: the station's Rejected leaves the recorded level."""
    station = station_factory("CS-1")
    answered(station, "SetMonitoringLevel", {"severity": 4}, {"status": "Accepted"})
    answered(station, "SetMonitoringLevel", {"severity": 9}, {"status": "Rejected"})
    assert StationDeviceState.objects.get(station=station).monitoring_level == 4
    with pytest.raises(monitoring.MonitorRequestError):
        monitoring.monitoring_level_set(station=station, severity=10)
    assert list(
        Command.objects.filter(action="SetMonitoringLevel").order_by("pk").values_list("request", flat=True)
    ) == [
        {"severity": 4},
        {"severity": 9},
    ]


def test_clear_monitoring_is_split_per_the_stations_items_per_message(asgi_server, station_factory):
    """TC_N_18: five ids, ItemsPerMessageClearVariableMonitoring 2: three ClearVariableMonitoring, results per id."""
    station_factory("CS-1")
    limit = report_entry("MonitoringCtrlr", "ItemsPerMessageClearVariableMonitoring", "2", mutability="ReadOnly")
    monitors = [monitor_entry(POWER, *[(i, "UpperThreshold", float(i), 2) for i in range(1, 6)])]
    statuses = {1: "Accepted", 2: "Rejected", 3: "Accepted", 4: "NotFound", 5: "Accepted"}

    async def scenario() -> list[Any]:
        async with asgi_server.station("CS-1") as st:
            await st.boot()
            assert (await st.call("NotifyReport", notify_report(1, 0, False, [limit])))[0] == 3
            assert (await st.call("NotifyMonitoringReport", notify_monitoring_report(7, 0, False, monitors)))[0] == 3
            await wait_online("CS-1")
            sent = await in_thread(
                lambda: monitoring.monitor_clear(
                    station=ChargingStation.objects.get(identity="CS-1"), monitor_ids=[1, 2, 3, 4, 5]
                )
            )
            calls = []
            for _ in sent:
                frame = await st.recv(10)
                calls.append(frame)
                result = [{"id": i, "status": statuses[i]} for i in frame[3]["id"]]
                await answer_next_raw(st, frame, {"clearMonitoringResult": result})
            await until(lambda: not Command.objects.exclude(state="answered").exists())
            return calls

    calls = run(scenario())
    assert [c[2:] for c in calls] == [
        ["ClearVariableMonitoring", {"id": [1, 2]}],
        ["ClearVariableMonitoring", {"id": [3, 4]}],
        ["ClearVariableMonitoring", {"id": [5]}],
    ]
    assert sorted(stored_monitors("CS-1")) == [2]
    assert set(VariableMonitor.objects.filter(gone_at__isnull=False).values_list("monitor_id", flat=True)) == {
        1,
        3,
        4,
        5,
    }


async def answer_next_raw(st: Any, frame: list[Any], payload: dict[str, Any]) -> None:
    import json

    await st.send_raw(json.dumps([3, frame[1], payload]))


def test_without_the_limit_a_clear_is_one_message(station_factory):
    station = station_factory("CS-1")
    assert monitoring.clear_items_per_message(station_id=station.pk) is None
    sent = monitoring.monitor_clear(station=station, monitor_ids=[1, 2, 3])
    assert [c.request for c in sent] == [{"id": [1, 2, 3]}]


def test_a_periodic_monitor_is_set_and_stored(station_factory):
    """TC_N_24: SetVariableMonitoring of a Periodic monitor: the request sent, the Accepted monitor stored."""
    station = station_factory("CS-1")
    variable = DeviceVariable.objects.create(
        station=station, component_name="EVSE", evse_id=1, name="Power", updated_at=datetime.now(UTC)
    )
    command = monitoring.monitor_set(station=station, variable=variable, type="Periodic", value=600.0, severity=8)
    assert command.request == {
        "setMonitoringData": [POWER | {"value": 600.0, "type": "Periodic", "severity": 8, "transaction": False}]
    }
    answered(
        station,
        "SetVariableMonitoring",
        command.request,
        {"setMonitoringResult": [POWER | {"id": 31, "status": "Accepted", "type": "Periodic", "severity": 8}]},
    )
    assert stored_monitors("CS-1") == {31: ("EVSE@1", "Power", "Periodic", 600.0, 8, "csms")}


def event(event_id: int, target: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "timestamp": "2026-12-01T10:59:00Z",
        "trigger": "Alerting",
        "actualValue": "75",
        "eventNotificationType": "CustomMonitor",
        "component": target["component"],
        "variable": target["variable"],
    } | fields


def test_alert_events_write_only_cleared_after_reboot_and_periodic(station_factory):
    """TC_N_48 (an event on a WriteOnly variable is stored without its value), TC_N_49 (a threshold cleared after a
    reboot: cleared=true stored), TC_N_50 (a Periodic-triggered event stored with its value)."""
    station = station_factory("CS-1")
    secret = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Pin"}}
    now = datetime.now(UTC)
    pin = DeviceVariable.objects.create(station=station, component_name="SecurityCtrlr", name="Pin", updated_at=now)
    pin.attributes.create(type="Actual", mutability="WriteOnly", value=None, updated_at=now)
    power = DeviceVariable.objects.create(
        station=station, component_name="EVSE", evse_id=1, name="Power", updated_at=now
    )
    VariableMonitor.objects.bulk_create(
        VariableMonitor(
            station=station, variable=v, monitor_id=i, type=t, value=1.0, severity=1, source="csms", updated_at=now
        )
        for i, v, t in ((1, pin, "Delta"), (2, power, "UpperThreshold"), (3, power, "Periodic"))
    )
    station_events_record(
        station_id=station.pk,
        generated_at=datetime(2026, 12, 1, 11, tzinfo=UTC),
        seq_no=0,
        event_data=[
            event(1, secret, actualValue="1234", variableMonitoringId=1),
            event(2, POWER, actualValue="22500", cleared=True, variableMonitoringId=2),
            event(3, POWER, trigger="Periodic", actualValue="11000", variableMonitoringId=3),
        ],
    )
    stored = {
        e.event_id: (e.trigger, e.actual_value, e.cleared, e.severity, e.alert) for e in StationEvent.objects.all()
    }
    assert stored == {
        1: ("Alerting", "", None, 1, True),
        2: ("Alerting", "22500", True, 1, True),
        3: ("Periodic", "11000", None, 1, True),
    }
