"""Device model actions: request reports, store NotifyReport parts, and the Get/SetVariables answer hooks.

Every write here is a bulk statement per message (a 500-variable part is two upserts), never a query per variable.
WriteOnly values (passwords) are never stored: not from a report, a GetVariables answer, nor a SetVariables request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from csms import multipart
from stations.commands import command_send, command_validate
from stations.commands.pipeline import Sender, sender_user
from stations.commands.secrets import REDACTED
from stations.models import ChargingStation, Command, CommandState

from .models import (
    BASE_REPORT_KINDS,
    NO_ID,
    REPLACING_KINDS,
    WRITABLE,
    AttributeType,
    DeviceVariable,
    Mutability,
    ReportJob,
    ReportKind,
    ReportState,
    StationDeviceState,
    VariableAttribute,
)

logger = logging.getLogger(__name__)

KIND = "NotifyReport"
VARIABLE_KEY = ["station", "component_name", "component_instance", "evse_id", "connector_id", "name", "instance"]
CHARACTERISTICS = ["data_type", "unit", "min_limit", "max_limit", "values_list", "supports_monitoring"]
ACCEPTED_SET = ("Accepted", "RebootRequired")  # SetVariableStatus values meaning "the new value is set"

# (component name, component instance, evse id, connector id, variable name, variable instance)
Key = tuple[str, str, int, int, str, str]


class ReportRequestError(ValueError):
    """A report that cannot be requested (bad criteria); nothing was stored or sent."""


class VariableNotWritable(ValueError):
    pass


def variable_key(component: dict[str, Any], variable: dict[str, Any]) -> Key:
    evse = component.get("evse") or {}
    return (
        component["name"],
        component.get("instance", ""),
        evse.get("id", NO_ID),
        evse.get("connectorId", NO_ID),
        variable["name"],
        variable.get("instance", ""),
    )


def _key_fields(key: Key) -> dict[str, Any]:
    return dict(zip(VARIABLE_KEY[1:], key, strict=True))


def _key_q(keys: list[Key]) -> Q:
    query = Q(pk__in=[])
    for key in keys:
        query |= Q(**_key_fields(key))
    return query


def component_variable_dicts(variable: DeviceVariable) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OCPP ComponentType and VariableType of a stored variable."""
    component: dict[str, Any] = {"name": variable.component_name}
    if variable.component_instance:
        component["instance"] = variable.component_instance
    if variable.evse is not None:
        component["evse"] = {"id": variable.evse}
        if variable.connector is not None:
            component["evse"]["connectorId"] = variable.connector
    var: dict[str, Any] = {"name": variable.name}
    if variable.instance:
        var["instance"] = variable.instance
    return component, var


# --- Report jobs ----------------------------------------------------------------------------------------------


def _state_locked(station_id: int) -> StationDeviceState:
    StationDeviceState.objects.bulk_create([StationDeviceState(station_id=station_id)], ignore_conflicts=True)
    return StationDeviceState.objects.select_for_update().get(station_id=station_id)


def _request_id_allocate(station_id: int) -> int:
    """The next requestId of this station: above every one it used, unasked reports included."""
    with transaction.atomic():
        state = _state_locked(station_id)
        used = ReportJob.objects.filter(station_id=station_id).aggregate(top=Max("request_id"))["top"]
        request_id = max(state.next_request_id, (used or 0) + 1)
        state.next_request_id = request_id + 1
        state.save(update_fields=["next_request_id"])
    return request_id


def report_request(
    *,
    station: ChargingStation,
    kind: str,
    component_criteria: list[str] | None = None,
    component_variable: list[dict[str, Any]] | None = None,
    user: Sender = None,
) -> ReportJob:
    """Request a report: GetBaseReport for the inventory kinds, GetReport (criteria and/or component-variables)
    for ``Criteria``. The job moves on the answer (hook), on NotifyReport parts and on completion."""
    if kind not in BASE_REPORT_KINDS and kind != ReportKind.CRITERIA:
        raise ReportRequestError(f"{kind!r} is not a report that can be requested")
    if kind == ReportKind.CRITERIA and not (component_criteria or component_variable):
        raise ReportRequestError("a GetReport needs component_criteria or component_variable")

    def build(request_id: int) -> tuple[str, dict[str, Any]]:
        if kind in BASE_REPORT_KINDS:
            return "GetBaseReport", {"requestId": request_id, "reportBase": kind}
        payload: dict[str, Any] = {"requestId": request_id}
        if component_criteria:
            payload["componentCriteria"] = component_criteria
        if component_variable:
            payload["componentVariable"] = component_variable
        return "GetReport", payload

    return report_job_send(
        station=station,
        kind=kind,
        build=build,
        component_criteria=component_criteria,
        component_variable=component_variable,
        user=user,
    )


def report_job_send(
    *,
    station: ChargingStation,
    kind: str,
    build: Callable[[int], tuple[str, dict[str, Any]]],
    component_criteria: list[Any] | None,
    component_variable: list[dict[str, Any]] | None,
    user: Sender,
) -> ReportJob:
    """Allocate the station's next requestId, record the job and send ``build(request_id)`` -> (action, payload)
    in one transaction; a station that is offline fails the job at once."""
    with transaction.atomic():
        # Station row first, as command_send and command_finish (whose answer hooks lock our rows) take it.
        ChargingStation.objects.select_for_update().filter(pk=station.pk).values_list("pk").first()
        request_id = _request_id_allocate(station.pk)
        action, payload = build(request_id)
        job = ReportJob.objects.create(
            station=station,
            request_id=request_id,
            kind=kind,
            component_criteria=component_criteria or [],
            component_variable=component_variable or [],
            requested_by=sender_user(user),
        )
        command = command_send(station=station, action=action, payload=payload, user=user)  # may raise: rollback
        job.command = command
        fields = ["command", "updated_at"]
        if command.state == CommandState.OFFLINE:
            job.state, job.error, job.finished_at = ReportState.FAILED, command.error_description, timezone.now()
            fields += ["state", "error", "finished_at"]
        job.save(update_fields=fields)
    return job


def _kind_of_request(command: Command) -> str:
    if command.action == "GetMonitoringReport":
        return ReportKind.MONITORING
    if command.action == "GetBaseReport":
        return str(command.request.get("reportBase", ReportKind.FULL_INVENTORY))
    return ReportKind.CRITERIA


def report_on_answered(command: Command) -> None:
    """Answer hook of GetBaseReport, GetReport and GetMonitoringReport: Accepted waits for the parts;
    EmptyResultSet ends the job (no part follows); Rejected/NotSupported fail it. A request sent through another
    door (e.g. the dashboard's "any request" form) gets its job here."""
    request_id = command.request.get("requestId")
    status = (command.response or {}).get("status", "")
    ReportJob.objects.bulk_create(
        [
            ReportJob(
                station_id=command.station_id,
                request_id=request_id,
                kind=_kind_of_request(command),
                component_criteria=command.request.get(
                    "componentCriteria", command.request.get("monitoringCriteria", [])
                ),
                component_variable=command.request.get("componentVariable", []),
                command=command,
                requested_by_id=command.created_by_id,
            )
        ],
        ignore_conflicts=True,
    )
    job = ReportJob.objects.select_for_update().get(station_id=command.station_id, request_id=request_id)
    if job.command_id not in (None, command.pk):
        # OCPP SPEC-SILENT: a requestId used again (only possible through the raw-request door) belongs to the
        # first report that used it; the later answer is logged, not applied.
        logger.warning("requestId %s of station %s reused by command %s", request_id, command.station_id, command.pk)
        return
    if job.kind in (ReportKind.UNSOLICITED, ReportKind.MONITORING_UNSOLICITED):
        job.kind = _kind_of_request(command)  # its parts came before the answer was recorded
    job.command = command
    job.station_status = status
    job.status_info = (command.response or {}).get("statusInfo")
    if job.state == ReportState.REQUESTED and status != "Accepted":
        job.state = ReportState.EMPTY if status == "EmptyResultSet" else ReportState.FAILED
        job.error = "" if status == "EmptyResultSet" else f"the station answered {status}"
        job.finished_at = timezone.now()
    job.save()


@dataclass(frozen=True, slots=True)
class ReportPartResult:
    job: ReportJob
    duplicate: bool
    complete: bool


def _scrub(report_data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report without WriteOnly values: they are never stored, not even in the raw parts."""
    out = []
    for entry in report_data:
        attributes = entry["variableAttribute"]
        if any(a.get("mutability") == Mutability.WRITE_ONLY and "value" in a for a in attributes):
            attributes = [
                {k: v for k, v in a.items() if k != "value"} if a.get("mutability") == Mutability.WRITE_ONLY else a
                for a in attributes
            ]
            entry = entry | {"variableAttribute": attributes}
        out.append(entry)
    return out


def _job_for_part(station_id: int, request_id: int) -> ReportJob:
    # OCPP SPEC-SILENT: a NotifyReport for a requestId the CSMS never sent (the station reports on its own, e.g.
    # after a TriggerMessage or a requestId of another CSMS) is stored all the same, as an "Unsolicited" job that
    # merges into the model (it is not known to list everything, so it marks nothing gone).
    ReportJob.objects.bulk_create(
        [ReportJob(station_id=station_id, request_id=request_id, kind=ReportKind.UNSOLICITED)], ignore_conflicts=True
    )
    return ReportJob.objects.select_for_update().get(station_id=station_id, request_id=request_id)


def report_part_record(
    *,
    station_id: int,
    request_id: int,
    seq_no: int,
    tbc: bool,
    generated_at: datetime,
    report_data: list[dict[str, Any]],
) -> ReportPartResult:
    """Store one NotifyReport part (any order; a retried part changes nothing) into the device model."""
    # Lock order station -> assembly -> job, as command_finish (station) runs the report answer hook (job): without
    # it, a part holding the job and then needing the station's key lock (new variables) could deadlock with it.
    ChargingStation.objects.select_for_update(no_key=True).filter(pk=station_id).values_list("pk").first()
    report_data = _scrub(report_data)
    outcome = multipart.part_receive(
        station_id=station_id,
        kind=KIND,
        request_id=request_id,
        seq_no=seq_no,
        tbc=tbc,
        payload={"generatedAt": generated_at.isoformat(), "reportData": report_data},
    )
    job = _job_for_part(station_id, request_id)
    if outcome.duplicate:
        return ReportPartResult(job, True, outcome.complete)
    now = timezone.now()
    stored = _report_data_apply(job=job, report_data=report_data, now=now)
    job.parts_received += 1
    job.variables_received += stored
    # A report's data wins over an earlier timeout or refusal: its parts did arrive.
    if outcome.complete:
        if job.state != ReportState.COMPLETE:
            job.state, job.finished_at, job.error = ReportState.COMPLETE, now, ""
    else:
        job.state, job.finished_at = ReportState.RECEIVING, None
    job.save()
    if outcome.completed_now:
        _report_complete(job=job, now=now)
    return ReportPartResult(job, False, outcome.complete)


def _report_data_apply(*, job: ReportJob, report_data: list[dict[str, Any]], now: datetime) -> int:
    """Upsert a part's variables and attributes: two statements per batch, whatever its size."""
    replacing = job.kind in REPLACING_KINDS
    variables: dict[Key, DeviceVariable] = {}
    with_characteristics: set[Key] = set()
    attributes: dict[tuple[Key, str], dict[str, Any]] = {}
    for entry in report_data:
        key = variable_key(entry["component"], entry["variable"])
        characteristics = entry.get("variableCharacteristics")
        if key not in variables or characteristics:
            variable = DeviceVariable(
                station_id=job.station_id,
                **_key_fields(key),
                last_report=job,
                last_replacing_report=job if replacing else None,
                gone_at=None,
                updated_at=now,
            )
            if characteristics:
                variable.data_type = characteristics["dataType"]
                variable.unit = characteristics.get("unit", "")
                variable.min_limit = characteristics.get("minLimit")
                variable.max_limit = characteristics.get("maxLimit")
                variable.values_list = characteristics.get("valuesList", "")
                variable.supports_monitoring = characteristics["supportsMonitoring"]
                with_characteristics.add(key)
            variables[key] = variable
        for attribute in entry["variableAttribute"]:
            mutability = attribute.get("mutability", Mutability.READ_WRITE)  # the spec's default
            attributes[(key, attribute.get("type", AttributeType.ACTUAL))] = {
                "value": None if mutability == Mutability.WRITE_ONLY else attribute.get("value"),
                "mutability": mutability,
                "persistent": attribute.get("persistent", False),
                "constant": attribute.get("constant", False),
            }
    update = ["last_report", "gone_at", "updated_at"] + (["last_replacing_report"] if replacing else [])
    batches = (
        ([v for k, v in variables.items() if k in with_characteristics], update + CHARACTERISTICS),
        ([v for k, v in variables.items() if k not in with_characteristics], update),  # keep known characteristics
    )
    for batch, fields in batches:
        if batch:
            # update_conflicts sets the primary keys (PostgreSQL, SQLite >= 3.35) for the attributes below.
            DeviceVariable.objects.bulk_create(
                batch, update_conflicts=True, unique_fields=VARIABLE_KEY, update_fields=fields
            )
    VariableAttribute.objects.bulk_create(
        [
            VariableAttribute(variable_id=variables[key].pk, type=attribute_type, updated_at=now, **values)
            for (key, attribute_type), values in attributes.items()
        ],
        update_conflicts=True,
        unique_fields=["variable", "type"],
        update_fields=["value", "mutability", "persistent", "constant", "updated_at"],
    )
    return len(variables)


def _report_complete(*, job: ReportJob, now: datetime) -> None:
    """A replacing report is complete: what it no longer lists is marked gone (one statement)."""
    if job.kind not in REPLACING_KINDS:
        return
    stale = DeviceVariable.objects.filter(station_id=job.station_id, gone_at__isnull=True).exclude(
        last_replacing_report=job
    )
    if job.kind == ReportKind.CONFIGURATION_INVENTORY:
        # OCPP SPEC-SILENT: a ConfigurationInventory lists the configurable variables only; it replaces those (a
        # writable attribute) and leaves read-only ones, known from a FullInventory, alone.
        stale = stale.filter(Exists(VariableAttribute.objects.filter(variable=OuterRef("pk"), mutability__in=WRITABLE)))
    stale.update(gone_at=now)


def reports_expire(*, timeout_s: float) -> int:
    """End report jobs that will never complete: their request failed (CALLERROR, timeout, offline), or nothing
    arrived for ``timeout_s``. Returns how many were ended."""
    now = timezone.now()
    ended = 0
    failed = ReportJob.objects.filter(
        state=ReportState.REQUESTED,
        command__state__in=[CommandState.FAILED, CommandState.TIMED_OUT, CommandState.OFFLINE],
    ).select_related("command")
    for job in failed:
        command = job.command
        assert command is not None  # the filter on command__state
        ended += ReportJob.objects.filter(pk=job.pk, state=ReportState.REQUESTED).update(
            state=ReportState.FAILED,
            error=(f"the request {command.state}: {command.error_description}")[:255],
            finished_at=now,
            updated_at=now,
        )
    ended += ReportJob.objects.filter(
        state__in=[ReportState.REQUESTED, ReportState.RECEIVING], updated_at__lt=now - timedelta(seconds=timeout_s)
    ).update(
        state=ReportState.TIMED_OUT,
        error=f"no complete report within {timeout_s:g} s of the last activity",
        finished_at=now,
        updated_at=now,
    )
    return ended


def nightly_base_reports_send(*, kind: str, hour_utc: int, now: datetime | None = None) -> int:
    """The nightly base report: from ``hour_utc`` (UTC) on, request a ``kind`` GetBaseReport from every online
    Accepted station that has had no report of that kind requested since then today (any door), so it is sent
    once per station per night whatever how often this runs; a station that comes online later that night gets
    its report at the next run. Returns how many were requested."""
    from stations.models import RegistrationStatus

    now = now or timezone.now()
    night = now.replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    if now < night:
        return 0
    asked = ReportJob.objects.filter(station=OuterRef("pk"), kind=kind, created_at__gte=night)
    stations = (
        ChargingStation.objects.filter(is_online=True, registration_status=RegistrationStatus.ACCEPTED)
        .exclude(Exists(asked))
        .order_by("pk")
    )
    sent = 0
    for station in stations:  # OCPP SPEC-SILENT: one GetBaseReport per station; sent ones go out over the night
        try:
            report_request(station=station, kind=kind)
            sent += 1
        except Exception:
            logger.exception("nightly %s report for %s could not be requested", kind, station.identity)
    return sent


# --- Get/SetVariables -----------------------------------------------------------------------------------------

UNCHANGED = object()


@dataclass(slots=True)
class _Answer:
    key: Key
    attribute_type: str
    status: str
    status_info: dict[str, Any] | None
    value: Any  # the value to store, or UNCHANGED
    create: bool  # create the variable when the model does not hold it


def _readable(attribute: VariableAttribute) -> bool:
    """May its value be stored? Known not WriteOnly, or read from the station before."""
    if attribute.mutability:
        return attribute.mutability != Mutability.WRITE_ONLY
    return attribute.value is not None


def _answers_apply(*, station_id: int, action: str, answers: list[_Answer]) -> None:
    """Record Get/SetVariables results on the stored attributes: a fixed number of statements per answer."""
    if not answers:
        return
    now = timezone.now()
    keys = list({a.key for a in answers})
    rows = DeviceVariable.objects.filter(station_id=station_id).filter(_key_q(keys)).prefetch_related("attributes")
    held = {variable_key_of(v): v for v in rows}
    # OCPP SPEC-SILENT: a variable the model does not hold yet is added when the station accepted the request (it
    # exists); its mutability stays unknown, and a value set on it is not stored (it may be WriteOnly).
    new = {
        a.key: DeviceVariable(station_id=station_id, **_key_fields(a.key), updated_at=now)
        for a in answers
        if a.create and a.key not in held
    }
    if new:
        DeviceVariable.objects.bulk_create(
            list(new.values()), update_conflicts=True, unique_fields=VARIABLE_KEY, update_fields=["updated_at"]
        )
    to_update: dict[int, VariableAttribute] = {}
    to_create: dict[tuple[int, str], VariableAttribute] = {}
    for answer in answers:
        variable = held.get(answer.key) or new.get(answer.key)
        if variable is None:
            continue  # Unknown/Rejected for a variable the model does not hold: the command's answer shows it
        attribute = None
        if answer.key in held:
            attribute = next((a for a in variable.attributes.all() if a.type == answer.attribute_type), None)
        if attribute is None:
            attribute = to_create.get((variable.pk, answer.attribute_type)) or VariableAttribute(
                variable_id=variable.pk, type=answer.attribute_type, updated_at=now
            )
            to_create[(variable.pk, answer.attribute_type)] = attribute
        else:
            to_update[attribute.pk] = attribute
        if answer.value is not UNCHANGED:
            if action == "GetVariables" and attribute.mutability != Mutability.WRITE_ONLY:
                attribute.value = answer.value  # the station showed it: readable
            elif action == "SetVariables" and attribute.pk is not None and _readable(attribute):
                attribute.value = answer.value
        attribute.last_action = action
        attribute.last_status = answer.status
        attribute.last_status_info = answer.status_info
        attribute.last_status_at = now
        attribute.updated_at = now
    if to_update:
        VariableAttribute.objects.bulk_update(
            list(to_update.values()),
            ["value", "last_action", "last_status", "last_status_info", "last_status_at", "updated_at"],
        )
    if to_create:
        VariableAttribute.objects.bulk_create(list(to_create.values()), ignore_conflicts=True)


def variable_key_of(variable: DeviceVariable) -> Key:
    return (
        variable.component_name,
        variable.component_instance,
        variable.evse_id,
        variable.connector_id,
        variable.name,
        variable.instance,
    )


def variables_on_get_answered(command: Command) -> None:
    """Answer hook of GetVariables: the values read, and each variable's status (UnknownVariable, ...)."""
    answers = []
    for result in (command.response or {}).get("getVariableResult", []):
        accepted = result["attributeStatus"] == "Accepted"
        answers.append(
            _Answer(
                key=variable_key(result["component"], result["variable"]),
                attribute_type=result.get("attributeType", AttributeType.ACTUAL),
                status=result["attributeStatus"],
                status_info=result.get("attributeStatusInfo"),
                value=result.get("attributeValue") if accepted and "attributeValue" in result else UNCHANGED,
                create=accepted,
            )
        )
    _answers_apply(station_id=command.station_id, action="GetVariables", answers=answers)


# Variables whose values are secrets even before the station's device model says they are WriteOnly.
SECRET_VARIABLES = frozenset({("SecurityCtrlr", "BasicAuthPassword")})


def write_only_variables(*, station_id: int, keys: set[Key]) -> set[Key]:
    """Which of these variables are WriteOnly in the station's stored model (one query)."""
    if not keys:
        return set()
    return {
        variable_key_of(v)
        for v in DeviceVariable.objects.filter(station_id=station_id)
        .filter(_key_q(list(keys)))
        .filter(attributes__mutability=Mutability.WRITE_ONLY)
        .distinct()
    }


def set_variables_secrets(station_id: int | None, payload: dict[str, Any]) -> list[list[str | int]]:
    """``secrets.secret_fields("SetVariables")``: the attributeValues of WriteOnly variables (known secrets, or
    WriteOnly in the station's stored model: one query), stored and logged as [redacted]."""
    data = payload.get("setVariableData") or []
    keys = {variable_key(d["component"], d["variable"]) for d in data}
    write_only = write_only_variables(station_id=station_id, keys=keys) if station_id is not None else set()
    return [
        ["setVariableData", i, "attributeValue"]
        for i, d in enumerate(data)
        if (d["component"]["name"], d["variable"]["name"]) in SECRET_VARIABLES
        or variable_key(d["component"], d["variable"]) in write_only
    ]


def notify_report_for_log(payload: dict[str, Any]) -> dict[str, Any]:
    """``secrets.log_redactor("NotifyReport")``: the message log keeps a report without its WriteOnly values."""
    if "reportData" not in payload:
        return payload
    return payload | {"reportData": _scrub(payload["reportData"])}


def variables_on_set_answered(command: Command) -> None:
    """Answer hook of SetVariables: Accepted/RebootRequired store the value sent (never a WriteOnly one),
    RebootRequired flags the station, every status is shown on its variable."""
    sent = {
        (variable_key(d["component"], d["variable"]), d.get("attributeType", AttributeType.ACTUAL)): d["attributeValue"]
        for d in command.request.get("setVariableData", [])
        if d["attributeValue"] != REDACTED  # a secret: never stored
    }
    answers = []
    reboot = False
    for result in (command.response or {}).get("setVariableResult", []):
        key = variable_key(result["component"], result["variable"])
        attribute_type = result.get("attributeType", AttributeType.ACTUAL)
        status = result["attributeStatus"]
        reboot |= status == "RebootRequired"
        value = sent.get((key, attribute_type), UNCHANGED) if status in ACCEPTED_SET else UNCHANGED
        info = result.get("attributeStatusInfo")
        answers.append(_Answer(key, attribute_type, status, info, value, status in ACCEPTED_SET))
    _answers_apply(station_id=command.station_id, action="SetVariables", answers=answers)
    if reboot:
        StationDeviceState.objects.bulk_create(
            [StationDeviceState(station_id=command.station_id, reboot_required_at=timezone.now())],
            update_conflicts=True,
            unique_fields=["station"],
            update_fields=["reboot_required_at"],
        )


def variable_set(
    *,
    station: ChargingStation,
    variable: DeviceVariable,
    value: str,
    attribute_type: str = AttributeType.ACTUAL,
    user: Sender = None,
) -> Command:
    """Send SetVariables for one ReadWrite attribute of the stored model (the page's edit form)."""
    attribute = variable.attributes.filter(type=attribute_type).first()
    if variable.station_id != station.pk or attribute is None or attribute.mutability != Mutability.READ_WRITE:
        raise VariableNotWritable(f"{variable} has no ReadWrite {attribute_type} attribute")
    component, var = component_variable_dicts(variable)
    payload = {
        "setVariableData": [
            {"attributeType": attribute_type, "attributeValue": value, "component": component, "variable": var}
        ]
    }
    return command_send(station=station, action="SetVariables", payload=payload, user=user)


# --- Many Get/SetVariables: split per the station's DeviceDataCtrlr limits ----------------------------------------
VARIABLES_DATA = {"GetVariables": "getVariableData", "SetVariables": "setVariableData"}


def variables_limits(*, station_id: int, action: str) -> tuple[int | None, int | None]:
    """The station's ``DeviceDataCtrlr.ItemsPerMessage`` and ``BytesPerMessage`` for ``action`` (the variable
    instance ``GetVariables``/``SetVariables``), from its stored device model; None where not known (one query)."""
    values = dict(
        VariableAttribute.objects.filter(
            variable__station_id=station_id,
            variable__component_name="DeviceDataCtrlr",
            variable__name__in=["ItemsPerMessage", "BytesPerMessage"],
            variable__instance=action,
            variable__gone_at__isnull=True,
            type=AttributeType.ACTUAL,
        ).values_list("variable__name", "value")
    )

    def positive(raw: str | None) -> int | None:
        try:
            number = int(raw) if raw is not None else None
        except ValueError:
            return None
        return number if number and number > 0 else None

    return positive(values.get("ItemsPerMessage")), positive(values.get("BytesPerMessage"))


def _size(field: str, batch: list[dict[str, Any]]) -> int:
    return len(json.dumps({field: batch}, separators=(",", ":"), ensure_ascii=False).encode())


def variables_batches(
    *, action: str, data: list[dict[str, Any]], items: int | None, size_bytes: int | None
) -> list[list[dict[str, Any]]]:
    """``data`` in order, in batches of at most ``items`` entries whose request payload is at most ``size_bytes``
    (JSON as sent). OCPP SPEC-SILENT: an entry too large on its own goes alone (the station answers it)."""
    field = VARIABLES_DATA[action]
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for entry in data:
        candidate = [*current, entry]
        too_many = items is not None and len(candidate) > items
        too_big = size_bytes is not None and _size(field, candidate) > size_bytes
        if current and (too_many or too_big):
            batches.append(current)
            candidate = [entry]
        current = candidate
    if current:
        batches.append(current)
    return batches


def variables_send(
    *, station: ChargingStation, action: str, data: list[dict[str, Any]], user: Sender = None
) -> list[Command]:
    """Send GetVariables or SetVariables for ``data`` (getVariableData / setVariableData entries), split into as
    many commands as the station's ItemsPerMessage/BytesPerMessage for that action require. Every part is one
    command of the usual pipeline (validated; its answer hook updates the model)."""
    if action not in VARIABLES_DATA:
        raise ValueError(f"{action} is not GetVariables or SetVariables")
    items, size_bytes = variables_limits(station_id=station.pk, action=action)
    field = VARIABLES_DATA[action]
    batches = variables_batches(action=action, data=data, items=items, size_bytes=size_bytes)
    for batch in batches:  # validate every part first: nothing is sent when one is invalid
        command_validate(action=action, payload={field: batch})
    with transaction.atomic():
        return [command_send(station=station, action=action, payload={field: b}, user=user) for b in batches]


def variables_refresh(*, station: ChargingStation, user: Sender = None) -> list[Command]:
    """GetVariables for every readable attribute of the stored model (not WriteOnly, not gone), split per the
    station's limits: the device-model page's "Read all values"."""
    attributes = (
        VariableAttribute.objects.filter(variable__station=station, variable__gone_at__isnull=True)
        .exclude(mutability=Mutability.WRITE_ONLY)
        .select_related("variable")
        .order_by("variable__component_name", "variable__name", "variable_id", "type")
    )
    data = []
    for attribute in attributes:
        component, variable = component_variable_dicts(attribute.variable)
        data.append({"attributeType": attribute.type, "component": component, "variable": variable})
    return variables_send(station=station, action="GetVariables", data=data, user=user) if data else []
