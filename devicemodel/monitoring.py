"""Monitoring (block N): the monitors installed on a station's variables and the monitoring base and level.

Monitors come from NotifyMonitoringReport (a GetMonitoringReport job, parts assembled by ``csms.multipart``) and
from accepted SetVariableMonitoring answers; ClearVariableMonitoring marks them gone. Every write is a bulk
statement per message, never a query per monitor. NotifyEvent alerts look their monitor's severity up here
(:func:`monitor_severities`, one query per message).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from csms import multipart
from stations.commands import command_send, command_validate
from stations.commands.pipeline import Sender
from stations.models import ChargingStation, Command, StationEvent

from .models import (
    AttributeType,
    DeviceVariable,
    MonitorSource,
    MonitorType,
    ReportJob,
    ReportKind,
    ReportState,
    StationDeviceState,
    VariableAttribute,
    VariableMonitor,
)
from .services import (
    VARIABLE_KEY,
    Key,
    _key_fields,
    component_variable_dicts,
    report_job_send,
    report_on_answered,
    variable_key,
)

logger = logging.getLogger(__name__)

KIND = "NotifyMonitoringReport"
MONITORING_CRITERIA = ("ThresholdMonitoring", "DeltaMonitoring", "PeriodicMonitoring")
MONITOR_UPDATE = ["variable", "type", "value", "severity", "transaction", "last_report", "gone_at", "updated_at"]
MAX_SEVERITY = 9
MONITORING_BASES = ("All", "FactoryDefault", "HardWiredOnly")


class MonitorRequestError(ValueError):
    """A monitor or report that cannot be requested; nothing was stored or sent."""


def _variables_ensure(*, station_id: int, keys: set[Key], now: datetime) -> dict[Key, int]:
    """The variables' primary keys, adding those the model does not hold (one upsert): a monitor proves its
    variable exists, so a gone one is back."""
    if not keys:
        return {}
    rows = DeviceVariable.objects.bulk_create(
        [DeviceVariable(station_id=station_id, **_key_fields(key), updated_at=now) for key in keys],
        update_conflicts=True,
        unique_fields=VARIABLE_KEY,
        update_fields=["gone_at", "updated_at"],
    )
    return {variable_key_tuple(v): v.pk for v in rows}


def variable_key_tuple(variable: DeviceVariable) -> Key:
    return (
        variable.component_name,
        variable.component_instance,
        variable.evse_id,
        variable.connector_id,
        variable.name,
        variable.instance,
    )


def monitor_severities(*, station_id: int, monitor_ids: set[int]) -> dict[int, int]:
    """Severity of each known, installed monitor of these ids (one query)."""
    if not monitor_ids:
        return {}
    rows = VariableMonitor.objects.filter(station_id=station_id, monitor_id__in=monitor_ids, gone_at__isnull=True)
    return dict(rows.values_list("monitor_id", "severity"))


# --- Commands -------------------------------------------------------------------------------------------------


def monitor_set(
    *,
    station: ChargingStation,
    variable: DeviceVariable,
    type: str,
    value: float,
    severity: int,
    transaction: bool = False,
    monitor_id: int | None = None,
    user: Sender = None,
) -> Command:
    """Send SetVariableMonitoring for one monitor on a stored variable (``monitor_id`` replaces that monitor)."""
    if variable.station_id != station.pk:
        raise MonitorRequestError(f"{variable} is not a variable of {station.identity}")
    if type not in MonitorType.values:
        raise MonitorRequestError(f"{type!r} is not a monitor type")
    if not 0 <= severity <= MAX_SEVERITY:
        raise MonitorRequestError("severity is 0 (Danger) to 9 (Debug)")
    component, var = component_variable_dicts(variable)
    data: dict[str, Any] = {
        "value": value,
        "type": type,
        "severity": severity,
        "transaction": transaction,
        "component": component,
        "variable": var,
    }
    if monitor_id is not None:
        data["id"] = monitor_id
    return command_send(
        station=station, action="SetVariableMonitoring", payload={"setMonitoringData": [data]}, user=user
    )


def clear_items_per_message(*, station_id: int) -> int | None:
    """The station's ``MonitoringCtrlr.ItemsPerMessageClearVariableMonitoring`` from its stored device model (its
    Actual value), None where not known or not a positive number (one query)."""
    raw = (
        VariableAttribute.objects.filter(
            variable__station_id=station_id,
            variable__component_name="MonitoringCtrlr",
            variable__name="ItemsPerMessageClearVariableMonitoring",
            variable__gone_at__isnull=True,
            type=AttributeType.ACTUAL,
        )
        .values_list("value", flat=True)
        .first()
    )
    try:
        items = int(raw) if raw is not None else None
    except ValueError:
        return None
    return items if items and items > 0 else None


def monitor_clear(*, station: ChargingStation, monitor_ids: list[int], user: Sender = None) -> list[Command]:
    """Send ClearVariableMonitoring for these monitor ids, split into as many commands as the station's
    ``MonitoringCtrlr.ItemsPerMessageClearVariableMonitoring`` requires (one when not known); every part's answer
    hook records its results per id."""
    if not monitor_ids:
        raise MonitorRequestError("no monitor to clear")
    items = clear_items_per_message(station_id=station.pk) or len(monitor_ids)
    batches = [monitor_ids[i : i + items] for i in range(0, len(monitor_ids), items)]
    for batch in batches:  # validate every part first: nothing is sent when one is invalid
        command_validate(action="ClearVariableMonitoring", payload={"id": batch})
    with transaction.atomic():
        return [
            command_send(station=station, action="ClearVariableMonitoring", payload={"id": b}, user=user)
            for b in batches
        ]


def monitoring_level_set(*, station: ChargingStation, severity: int, user: Sender = None) -> Command:
    """Send SetMonitoringLevel: the station reports only events of monitors with severity <= ``severity``."""
    if not 0 <= severity <= MAX_SEVERITY:
        raise MonitorRequestError("severity is 0 (Danger) to 9 (Debug)")
    return command_send(station=station, action="SetMonitoringLevel", payload={"severity": severity}, user=user)


def monitoring_base_set(*, station: ChargingStation, base: str, user: Sender = None) -> Command:
    """Send SetMonitoringBase (All, FactoryDefault, HardWiredOnly)."""
    if base not in MONITORING_BASES:
        raise MonitorRequestError(f"{base!r} is not a monitoring base")
    return command_send(station=station, action="SetMonitoringBase", payload={"monitoringBase": base}, user=user)


def monitoring_report_request(
    *,
    station: ChargingStation,
    monitoring_criteria: list[str] | None = None,
    component_variable: list[dict[str, Any]] | None = None,
    user: Sender = None,
) -> ReportJob:
    """Send GetMonitoringReport; the job (kind ``Monitoring``) moves on the answer and the parts. Without
    criteria and component-variables it is a full report: on completion it replaces the station's monitors."""
    bad = [c for c in monitoring_criteria or [] if c not in MONITORING_CRITERIA]
    if bad:
        raise MonitorRequestError(f"unknown monitoring criteria: {', '.join(bad)}")

    def build(request_id: int) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {"requestId": request_id}
        if monitoring_criteria:
            payload["monitoringCriteria"] = monitoring_criteria
        if component_variable:
            payload["componentVariable"] = component_variable
        return "GetMonitoringReport", payload

    return report_job_send(
        station=station,
        kind=ReportKind.MONITORING,
        build=build,
        component_criteria=monitoring_criteria,
        component_variable=component_variable,
        user=user,
    )


def _is_full(job: ReportJob) -> bool:
    return job.kind == ReportKind.MONITORING and not job.component_criteria and not job.component_variable


def _monitors_replace(*, job: ReportJob, now: datetime) -> None:
    """A full report is complete (or empty): the monitors it did not list are gone, except those set after it
    was requested (one statement)."""
    VariableMonitor.objects.filter(
        station_id=job.station_id, gone_at__isnull=True, updated_at__lt=job.created_at
    ).exclude(last_report=job).update(gone_at=now)


# --- Answer hooks ---------------------------------------------------------------------------------------------


def monitoring_report_on_answered(command: Command) -> None:
    """Answer hook of GetMonitoringReport: the report job's hook; a full report answered EmptyResultSet means the
    station has no monitor."""
    report_on_answered(command)
    if (command.response or {}).get("status") != "EmptyResultSet":
        return
    job = ReportJob.objects.filter(station_id=command.station_id, request_id=command.request.get("requestId")).first()
    if job is not None and job.command_id == command.pk and _is_full(job) and job.state == ReportState.EMPTY:
        _monitors_replace(job=job, now=timezone.now())


def monitors_on_set_answered(command: Command) -> None:
    """Answer hook of SetVariableMonitoring: each Accepted result is stored with the id the station returned (its
    value and transaction flag from the request); other statuses leave the monitors as they were (the command's
    answer shows them per result)."""
    now = timezone.now()
    sent: dict[tuple[Key, str, int], list[dict[str, Any]]] = {}
    for data in command.request.get("setMonitoringData", []):
        match = (variable_key(data["component"], data["variable"]), data["type"], data["severity"])
        sent.setdefault(match, []).append(data)
    accepted: list[tuple[Key, dict[str, Any], int]] = []
    for result in (command.response or {}).get("setMonitoringResult", []):
        key = variable_key(result["component"], result["variable"])
        requests = sent.get((key, result["type"], result["severity"])) or [{}]
        data = requests.pop(0) if len(requests) > 1 else requests[0]
        if result["status"] != "Accepted":
            continue
        if "id" not in result or "value" not in data:
            # OCPP SPEC-SILENT: an Accepted result without an id (the id "is only returned when status is
            # accepted", so it should be there), or matching no request, cannot be stored; the answer shows it.
            logger.warning("SetVariableMonitoring %s: an Accepted result without id or request", command.pk)
            continue
        accepted.append((key, data, result["id"]))
    if not accepted:
        return
    variables = _variables_ensure(station_id=command.station_id, keys={k for k, _, _ in accepted}, now=now)
    monitors = {
        monitor_id: VariableMonitor(
            station_id=command.station_id,
            variable_id=variables[key],
            monitor_id=monitor_id,
            type=data["type"],
            value=data["value"],
            severity=data["severity"],
            transaction=data.get("transaction", False),
            source=MonitorSource.CSMS,
            gone_at=None,
            updated_at=now,
        )
        for key, data, monitor_id in accepted
    }
    VariableMonitor.objects.bulk_create(
        list(monitors.values()),
        update_conflicts=True,
        unique_fields=["station", "monitor_id"],
        update_fields=[f for f in MONITOR_UPDATE if f != "last_report"] + ["source"],
    )


def monitors_on_clear_answered(command: Command) -> None:
    """Answer hook of ClearVariableMonitoring: Accepted (and NotFound) monitors are gone."""
    # OCPP SPEC-SILENT: NotFound says the station has no monitor with that id, so the stored one is gone as well.
    ids = [
        r["id"]
        for r in (command.response or {}).get("clearMonitoringResult", [])
        if r["status"] in ("Accepted", "NotFound")
    ]
    if ids:
        VariableMonitor.objects.filter(station_id=command.station_id, monitor_id__in=ids, gone_at__isnull=True).update(
            gone_at=timezone.now(), updated_at=timezone.now()
        )


def _device_state_set(station_id: int, **fields: Any) -> None:
    StationDeviceState.objects.bulk_create(
        [StationDeviceState(station_id=station_id, **fields)],
        update_conflicts=True,
        unique_fields=["station"],
        update_fields=list(fields),
    )


def monitoring_base_on_answered(command: Command) -> None:
    """Answer hook of SetMonitoringBase: an Accepted base is recorded. Which monitors remain after it is what the
    station says in its next monitoring report (request one)."""
    if (command.response or {}).get("status") == "Accepted":
        _device_state_set(
            command.station_id, monitoring_base=command.request["monitoringBase"], monitoring_base_at=timezone.now()
        )


def monitoring_level_on_answered(command: Command) -> None:
    """Answer hook of SetMonitoringLevel: an Accepted level is recorded."""
    if (command.response or {}).get("status") == "Accepted":
        _device_state_set(
            command.station_id, monitoring_level=command.request["severity"], monitoring_level_at=timezone.now()
        )


# --- NotifyMonitoringReport -----------------------------------------------------------------------------------


def _job_for_part(station_id: int, request_id: int) -> ReportJob:
    # OCPP SPEC-SILENT: a NotifyMonitoringReport for a requestId the CSMS never sent is stored all the same, as a
    # "MonitoringUnsolicited" job that merges (it is not known to list every monitor).
    ReportJob.objects.bulk_create(
        [ReportJob(station_id=station_id, request_id=request_id, kind=ReportKind.MONITORING_UNSOLICITED)],
        ignore_conflicts=True,
    )
    return ReportJob.objects.select_for_update().get(station_id=station_id, request_id=request_id)


def monitoring_report_part_record(
    *, station_id: int, request_id: int, seq_no: int, tbc: bool, generated_at: datetime, monitor: list[dict[str, Any]]
) -> ReportJob:
    """Store one NotifyMonitoringReport part (any order; a retried part changes nothing)."""
    # Lock order station -> assembly -> job, as in devicemodel.services.report_part_record.
    ChargingStation.objects.select_for_update(no_key=True).filter(pk=station_id).values_list("pk").first()
    outcome = multipart.part_receive(
        station_id=station_id,
        kind=KIND,
        request_id=request_id,
        seq_no=seq_no,
        tbc=tbc,
        payload={"generatedAt": generated_at.isoformat(), "monitor": monitor},
    )
    job = _job_for_part(station_id, request_id)
    if outcome.duplicate:
        return job
    now = timezone.now()
    job.parts_received += 1
    job.variables_received += _monitors_apply(job=job, monitor=monitor, now=now)
    if outcome.complete:
        if job.state != ReportState.COMPLETE:
            job.state, job.finished_at, job.error = ReportState.COMPLETE, now, ""
    else:
        job.state, job.finished_at = ReportState.RECEIVING, None
    job.save()
    if outcome.completed_now and _is_full(job):
        _monitors_replace(job=job, now=now)
    return job


def _monitors_apply(*, job: ReportJob, monitor: list[dict[str, Any]], now: datetime) -> int:
    """Upsert a part's monitors: two statements, whatever its size. Returns how many monitors it listed."""
    entries = [(variable_key(e["component"], e["variable"]), m) for e in monitor for m in e["variableMonitoring"]]
    variables = _variables_ensure(station_id=job.station_id, keys={k for k, _ in entries}, now=now)
    monitors = {
        m["id"]: VariableMonitor(
            station_id=job.station_id,
            variable_id=variables[key],
            monitor_id=m["id"],
            type=m["type"],
            value=m["value"],
            severity=m["severity"],
            transaction=m["transaction"],
            source=MonitorSource.REPORTED,
            last_report=job,
            gone_at=None,
            updated_at=now,
        )
        for key, m in entries
    }
    if monitors:
        # The source is kept: a monitor the CSMS set stays "set by the CSMS" when the station reports it.
        VariableMonitor.objects.bulk_create(
            list(monitors.values()),
            update_conflicts=True,
            unique_fields=["station", "monitor_id"],
            update_fields=MONITOR_UPDATE,
        )
    return len(monitors)


# --- NotifyEvent alerts ---------------------------------------------------------------------------------------


def event_alerts_acknowledge(*, station_id: int, event_ids: list[int], user: Any) -> int:
    """Mark alerts seen (they leave the alerts lists); returns how many were open."""
    return StationEvent.objects.filter(
        station_id=station_id, pk__in=event_ids, alert=True, acknowledged_at__isnull=True
    ).update(acknowledged_at=timezone.now(), acknowledged_by=user if getattr(user, "pk", None) else None)
