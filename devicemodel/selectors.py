"""Read-side queries of the device model: a fixed number of queries whatever the number of variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from csms import multipart
from stations.models import StationEvent

from .models import (
    NO_ID,
    WRITABLE,
    AttributeType,
    DeviceVariable,
    ReportJob,
    StationDeviceState,
    VariableAttribute,
    VariableMonitor,
)
from .services import KIND, Key, variable_key


def device_variables(
    *,
    station_id: int,
    search: str = "",
    mutable: bool = False,
    monitoring: bool = False,
    include_gone: bool = False,
) -> QuerySet[DeviceVariable]:
    """The station's variables with their attributes and installed monitors (one prefetch query each), filtered."""
    qs = DeviceVariable.objects.filter(station_id=station_id).prefetch_related(
        Prefetch("attributes", queryset=VariableAttribute.objects.order_by("type")),
        Prefetch("monitors", queryset=VariableMonitor.objects.filter(gone_at__isnull=True).order_by("monitor_id")),
    )
    if not include_gone:
        qs = qs.filter(gone_at__isnull=True)
    if search:
        qs = qs.filter(Q(component_name__icontains=search) | Q(name__icontains=search))
    if mutable:
        qs = qs.filter(Exists(VariableAttribute.objects.filter(variable=OuterRef("pk"), mutability__in=WRITABLE)))
    if monitoring:
        qs = qs.filter(supports_monitoring=True)
    return qs


def device_variable(*, station_id: int, pk: int) -> DeviceVariable | None:
    return DeviceVariable.objects.filter(station_id=station_id, pk=pk).first()


def reboot_required(*, station_id: int) -> bool:
    state = StationDeviceState.objects.select_related("station").filter(station_id=station_id).first()
    return state is not None and state.reboot_required


def report_jobs(*, station_id: int | None = None) -> QuerySet[ReportJob]:
    qs = ReportJob.objects.select_related("station", "command", "requested_by")
    return qs.filter(station_id=station_id) if station_id is not None else qs


def report_job(*, station_id: int, pk: int) -> ReportJob | None:
    return report_jobs(station_id=station_id).filter(pk=pk).first()


@dataclass
class ReportDiff:
    """What changed from report ``old`` to report ``new`` (Actual values; WriteOnly ones were never stored)."""

    old: ReportJob
    new: ReportJob
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[tuple[str, str | None, str | None]] = field(default_factory=list)


def _label(key: Key) -> str:
    name, instance, evse, connector, var, var_instance = key
    label = name + (f"[{instance}]" if instance else "")
    if evse >= 0:
        label += f"@{evse}" + (f"/{connector}" if connector >= 0 else "")
    return f"{label}.{var}" + (f"[{var_instance}]" if var_instance else "")


def _flatten(parts: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    out: dict[Key, dict[str, Any]] = {}
    for part in parts:
        for entry in part.get("reportData", []):
            attributes = {a.get("type", AttributeType.ACTUAL): a.get("value") for a in entry["variableAttribute"]}
            out.setdefault(variable_key(entry["component"], entry["variable"]), {}).update(attributes)
    return out


def report_diff(*, old: ReportJob, new: ReportJob) -> ReportDiff:
    """Compare two reports of one station from their stored parts (one query)."""
    payloads = multipart.parts_payloads(
        station_id=new.station_id, kind=KIND, request_ids=[old.request_id, new.request_id]
    )
    before, after = _flatten(payloads[old.request_id]), _flatten(payloads[new.request_id])
    diff = ReportDiff(old=old, new=new)
    diff.added = sorted(_label(k) for k in after.keys() - before.keys())
    diff.removed = sorted(_label(k) for k in before.keys() - after.keys())
    for key in sorted(after.keys() & before.keys()):
        for attribute_type in sorted(before[key].keys() | after[key].keys()):
            was, now = before[key].get(attribute_type), after[key].get(attribute_type)
            if was != now:
                suffix = "" if attribute_type == AttributeType.ACTUAL else f" ({attribute_type})"
                diff.changed.append((_label(key) + suffix, was, now))
    return diff


def monitors(*, station_id: int, include_gone: bool = False) -> QuerySet[VariableMonitor]:
    """The station's monitors with their variables (one query), by variable then id."""
    qs = VariableMonitor.objects.filter(station_id=station_id).select_related("variable")
    if not include_gone:
        qs = qs.filter(gone_at__isnull=True)
    by_variable = ["component_name", "component_instance", "evse_id", "connector_id", "name", "instance"]
    return qs.order_by(*(f"variable__{f}" for f in by_variable), "monitor_id")


def monitoring_state(*, station_id: int) -> StationDeviceState | None:
    return StationDeviceState.objects.filter(station_id=station_id).first()


def open_event_alerts(*, station_id: int | None = None) -> QuerySet[StationEvent]:
    """NotifyEvent alerts nobody acknowledged yet, newest first (one station's, or every station's)."""
    qs = StationEvent.objects.filter(alert=True, acknowledged_at__isnull=True).select_related("station")
    if station_id is not None:
        qs = qs.filter(station_id=station_id)
    return qs.order_by("-timestamp", "-id")


def actual_values(*, station_ids: list[int], component: str, variable: str) -> dict[int, str]:
    """The stored Actual value of one station-level component-variable (no instance, EVSE or connector) per station
    that reported it, e.g. TariffCostCtrlr.Currency; one query for any number of stations."""
    rows = VariableAttribute.objects.filter(
        variable__station_id__in=station_ids,
        variable__component_name=component,
        variable__component_instance="",
        variable__evse_id=NO_ID,
        variable__connector_id=NO_ID,
        variable__name=variable,
        variable__instance="",
        variable__gone_at__isnull=True,
        type=AttributeType.ACTUAL,
        value__isnull=False,
    ).values_list("variable__station_id", "value")
    return {station_id: value or "" for station_id, value in rows}


def component_values(*, station_id: int, component_name: str) -> dict[tuple[str, str], str]:
    """The Actual values the station reported for a component's variables (any EVSE), keyed by (variable name,
    instance); one query. Used by other apps to honour a station's limits (e.g. SmartChargingCtrlr)."""
    rows = VariableAttribute.objects.filter(
        variable__station_id=station_id,
        variable__component_name=component_name,
        variable__gone_at__isnull=True,
        type=AttributeType.ACTUAL,
        value__isnull=False,
    ).values_list("variable__name", "variable__instance", "value")
    return {(name, instance): value or "" for name, instance, value in rows}
