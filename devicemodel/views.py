"""The device-model page of a station: search, filters, edit a ReadWrite variable, report jobs, report diff.
Thin: selectors query, services change. A fixed number of queries whatever the number of variables."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from stations import commands
from stations import selectors as station_selectors
from stations.models import ChargingStation

from . import monitoring, selectors, services
from .models import AttributeType, MonitorType, ReportKind

VARIABLES_PER_PAGE = 200
REQUESTABLE = [ReportKind.FULL_INVENTORY, ReportKind.CONFIGURATION_INVENTORY, ReportKind.SUMMARY_INVENTORY]
ALERTS_SHOWN = 200


def _station_or_404(identity: str) -> ChargingStation:
    station = station_selectors.station_by_identity(identity=identity)
    if station is None:
        raise Http404(f"No station {identity}")
    return station


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


@login_required
def device_model(request: HttpRequest, identity: str) -> HttpResponse:
    station = _station_or_404(identity)
    search = request.GET.get("q", "").strip()
    mutable, monitored, gone = (request.GET.get(name) == "1" for name in ("mutable", "monitoring", "gone"))
    filters: dict[str, str | bool] = {"q": search, "mutable": mutable, "monitoring": monitored, "gone": gone}
    variables = selectors.device_variables(
        station_id=station.pk, search=search, mutable=mutable, monitoring=monitored, include_gone=gone
    )
    page = Paginator(variables, VARIABLES_PER_PAGE).get_page(request.GET.get("page"))
    jobs = list(selectors.report_jobs(station_id=station.pk)[:20])
    diff = None
    old_pk, new_pk = _int(request.GET.get("old")), _int(request.GET.get("new"))
    if old_pk and new_pk:
        by_pk = {job.pk: job for job in jobs}
        old = by_pk.get(old_pk) or selectors.report_job(station_id=station.pk, pk=old_pk)
        new = by_pk.get(new_pk) or selectors.report_job(station_id=station.pk, pk=new_pk)
        if old and new:
            diff = selectors.report_diff(old=old, new=new)
    query = urlencode({k: "1" if v is True else v for k, v in filters.items() if v})
    return render(
        request,
        "devicemodel/device_model.html",
        {
            "station": station,
            "page": page,
            "filters": filters,
            "query": query,
            "jobs": jobs,
            "diff": diff,
            "reboot_required": selectors.reboot_required(station_id=station.pk),
            "can_command": request.user.has_perm("stations.add_command"),
            "requestable": REQUESTABLE,
            "monitoring_state": selectors.monitoring_state(station_id=station.pk),
            "monitor_types": MonitorType.values,
            "monitoring_bases": monitoring.MONITORING_BASES,
            "severities": range(monitoring.MAX_SEVERITY + 1),
            "event_alerts": list(selectors.open_event_alerts(station_id=station.pk)[:ALERTS_SHOWN]),
        },
    )


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def report_create(request: HttpRequest, identity: str) -> HttpResponse:
    station = _station_or_404(identity)
    try:
        job = services.report_request(station=station, kind=request.POST.get("kind", ""), user=request.user)
        messages.success(request, f"{job.kind} report requested (requestId {job.request_id}).")
    except (services.ReportRequestError, commands.CommandValidationError) as exc:
        messages.error(request, str(exc))
    return redirect(reverse("device-model", args=[station.identity]))


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def variables_refresh(request: HttpRequest, identity: str) -> HttpResponse:
    station = _station_or_404(identity)
    try:
        sent = services.variables_refresh(station=station, user=request.user)
        messages.success(request, f"GetVariables sent in {len(sent)} message(s).")
    except commands.CommandValidationError as exc:
        messages.error(request, str(exc))
    return redirect(reverse("device-model", args=[station.identity]))


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def variable_set(request: HttpRequest, identity: str, pk: int) -> HttpResponse:
    station = _station_or_404(identity)
    variable = selectors.device_variable(station_id=station.pk, pk=pk)
    if variable is None:
        raise Http404("No such variable")
    try:
        services.variable_set(
            station=station,
            variable=variable,
            value=request.POST.get("value", ""),
            attribute_type=request.POST.get("attribute_type", AttributeType.ACTUAL),
            user=request.user,
        )
        messages.success(request, f"SetVariables sent for {variable}.")
    except (services.VariableNotWritable, commands.CommandValidationError) as exc:
        messages.error(request, str(exc))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("device-model", args=[station.identity])
    return redirect(back)


def _back(request: HttpRequest, station: ChargingStation) -> HttpResponse:
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("device-model", args=[station.identity])
    return redirect(back)


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def monitor_set(request: HttpRequest, identity: str, pk: int) -> HttpResponse:
    """SetVariableMonitoring for one variable; the answer hook stores what the station accepted."""
    station = _station_or_404(identity)
    variable = selectors.device_variable(station_id=station.pk, pk=pk)
    if variable is None:
        raise Http404("No such variable")
    value, severity = _float(request.POST.get("value")), _int(request.POST.get("severity"))
    try:
        if value is None or severity is None:
            raise monitoring.MonitorRequestError("a monitor needs a value and a severity")
        monitoring.monitor_set(
            station=station,
            variable=variable,
            type=request.POST.get("type", ""),
            value=value,
            severity=severity,
            transaction=request.POST.get("transaction") == "1",
            user=request.user,
        )
        messages.success(request, f"SetVariableMonitoring sent for {variable}.")
    except (monitoring.MonitorRequestError, commands.CommandValidationError) as exc:
        messages.error(request, str(exc))
    return _back(request, station)


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def monitor_clear(request: HttpRequest, identity: str, monitor_id: int) -> HttpResponse:
    station = _station_or_404(identity)
    try:
        monitoring.monitor_clear(station=station, monitor_ids=[monitor_id], user=request.user)  # one id: one part
        messages.success(request, f"ClearVariableMonitoring sent for monitor {monitor_id}.")
    except (monitoring.MonitorRequestError, commands.CommandValidationError) as exc:
        messages.error(request, str(exc))
    return _back(request, station)


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def monitoring_request(request: HttpRequest, identity: str) -> HttpResponse:
    """The monitoring forms: ``what`` = ``report`` (GetMonitoringReport), ``level`` or ``base``."""
    station = _station_or_404(identity)
    what = request.POST.get("what", "")
    try:
        if what == "report":
            job = monitoring.monitoring_report_request(station=station, user=request.user)
            messages.success(request, f"Monitoring report requested (requestId {job.request_id}).")
        elif what == "level":
            severity = _int(request.POST.get("severity"))
            if severity is None:
                raise monitoring.MonitorRequestError("a level needs a severity")
            monitoring.monitoring_level_set(station=station, severity=severity, user=request.user)
            messages.success(request, f"SetMonitoringLevel {severity} sent.")
        elif what == "base":
            monitoring.monitoring_base_set(station=station, base=request.POST.get("base", ""), user=request.user)
            messages.success(request, "SetMonitoringBase sent.")
        else:
            messages.error(request, "Unknown monitoring request.")
    except (monitoring.MonitorRequestError, commands.CommandValidationError) as exc:
        messages.error(request, str(exc))
    return _back(request, station)


@login_required
def event_alerts(request: HttpRequest) -> HttpResponse:
    """Every station's unacknowledged NotifyEvent alerts."""
    return render(
        request,
        "devicemodel/event_alerts.html",
        {
            "event_alerts": list(selectors.open_event_alerts()[:ALERTS_SHOWN]),
            "can_command": request.user.has_perm("stations.add_command"),
        },
    )


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def event_alert_acknowledge(request: HttpRequest, identity: str, pk: int) -> HttpResponse:
    station = _station_or_404(identity)
    monitoring.event_alerts_acknowledge(station_id=station.pk, event_ids=[pk], user=request.user)
    return _back(request, station)
