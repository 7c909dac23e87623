"""The log-requests page (every station's GetLog jobs, requesting a log, a station's upload protocol) and the
download of an uploaded log file (login + ``firmware.download_logrequest``)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required, permission_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from stations.commands import CommandValidationError
from stations.models import ChargingStation

from . import logs
from .api.logs import can_download
from .models import LogRequest, LogType, StationFileTransfer, StationFileTransferChoice

SHOWN = 200


class LogRequestForm(forms.Form):
    station = forms.CharField(max_length=48)
    log_type = forms.ChoiceField(choices=LogType.choices, initial=LogType.DIAGNOSTICS)
    oldest_timestamp = forms.DateTimeField(required=False)
    latest_timestamp = forms.DateTimeField(required=False)
    retries = forms.IntegerField(required=False, min_value=0, max_value=100)
    retry_interval_s = forms.IntegerField(required=False, min_value=0, max_value=86400)


class ProtocolForm(forms.Form):
    station = forms.CharField(max_length=48)
    protocol = forms.ChoiceField(choices=StationFileTransferChoice.choices)


@login_required
@permission_required("firmware.view_logrequest", raise_exception=True)
def log_requests(request: HttpRequest) -> HttpResponse:
    station = request.GET.get("station", "")
    rows = LogRequest.objects.select_related("station", "slot", "requested_by")
    if station:
        rows = rows.filter(station__identity=station)
    return render(
        request,
        "firmware/logs.html",
        {
            "rows": list(rows[:SHOWN]),
            "station": station,
            "form": LogRequestForm(initial={"station": station}),
            "transfers": list(StationFileTransfer.objects.select_related("station").order_by("station__identity")),
            "protocols": StationFileTransferChoice.choices,
            "can_send": request.user.has_perm("firmware.add_logrequest"),
            "can_download": can_download(request.user),
            "can_set_protocol": request.user.has_perm("firmware.change_stationfiletransfer"),
            "error": request.GET.get("error", ""),
        },
    )


@require_POST
@login_required
@permission_required("firmware.add_logrequest", raise_exception=True)
def log_request_create(request: HttpRequest) -> HttpResponse:
    form = LogRequestForm(request.POST)
    if not form.is_valid():
        return redirect(f"/log-requests/?error={form.errors.as_text()[:200]}")
    data = form.cleaned_data
    station = ChargingStation.objects.filter(identity=data["station"]).first()
    if station is None:
        return redirect("/log-requests/?error=unknown+station")
    try:
        logs.log_request_send(
            station=station,
            log_type=data["log_type"],
            oldest_timestamp=data["oldest_timestamp"],
            latest_timestamp=data["latest_timestamp"],
            retries=data["retries"],
            retry_interval_s=data["retry_interval_s"],
            user=request.user,
        )
    except CommandValidationError as exc:
        return redirect(f"/log-requests/?error={str(exc)[:200]}")
    return redirect(f"/log-requests/?station={station.identity}")


@require_POST
@login_required
@permission_required("firmware.change_stationfiletransfer", raise_exception=True)
def station_protocol_set(request: HttpRequest) -> HttpResponse:
    form = ProtocolForm(request.POST)
    if not form.is_valid():
        return redirect("/log-requests/?error=bad+protocol")
    station = get_object_or_404(ChargingStation, identity=form.cleaned_data["station"])
    StationFileTransfer.objects.update_or_create(station=station, defaults={"protocol": form.cleaned_data["protocol"]})
    return redirect(f"/log-requests/?station={station.identity}")


@login_required
def log_request_download(request: HttpRequest, pk: int) -> FileResponse:
    if not (request.user.has_perm("firmware.view_logrequest") and can_download(request.user)):
        raise Http404("no such file")  # as for a file that does not exist: nothing is told
    obj = get_object_or_404(LogRequest.objects.select_related("station", "slot"), pk=pk)
    slot = obj.slot
    if slot is None or slot.used_at is None or not slot.file:
        raise Http404("no file was uploaded for this log request")
    return FileResponse(
        slot.file.open("rb"),
        as_attachment=True,
        filename=f"{obj.station.identity}-{obj.log_type}-{obj.request_id}-{slot.filename}",
        content_type="application/octet-stream",
    )
