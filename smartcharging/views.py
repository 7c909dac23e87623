"""The station page's charging profiles section (loaded by htmx): the record, install and clear forms, and the
composite schedule chart (the CSMS's own and the station's last answer)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from stations import commands
from stations.models import ChargingStation

from . import charts, profiles, services
from .models import (
    ChargingProfile,
    ChargingProfileKind,
    ChargingProfilePurpose,
    EvChargingNeeds,
    EvChargingSchedule,
    ExternalChargingLimit,
    RecurrencyKind,
    StationCompositeSchedule,
)

CHART_DURATION_S = 86400


def _station_or_404(identity: str) -> ChargingStation:
    station = ChargingStation.objects.filter(identity=identity).first()
    if station is None:
        raise Http404("No such station")
    return station


def _section(request: HttpRequest, station: ChargingStation, *, error: str = "", evse_id: int = 1) -> HttpResponse:
    rows = list(
        ChargingProfile.objects.filter(station=station, state__in=profiles.LIVE).prefetch_related("schedules__periods")
    )
    history = (
        ChargingProfile.objects.filter(station=station).exclude(state__in=profiles.LIVE).order_by("-updated_at")[:10]
    )
    unit = request.GET.get("rate_unit", "A") if request.GET.get("rate_unit") in ("A", "W") else "A"
    ours = services.composite_compute(station=station, evse_id=evse_id, duration_s=CHART_DURATION_S, rate_unit=unit)
    lines = [charts.Line("CSMS", "csms", [(p.start_s, p.limit) for p in ours.periods])]
    answer = StationCompositeSchedule.objects.filter(station=station, evse_id=evse_id, status="Accepted").first()
    if answer is not None and answer.schedule and answer.schedule.get("chargingRateUnit") == unit:
        lines.append(charts.Line("station", "station", [(p["startPeriod"], p["limit"])
                                 for p in answer.schedule.get("chargingSchedulePeriod", [])]))  # fmt: skip
    context: dict[str, Any] = {
        "station": station,
        "profiles": [(row, json.dumps(profiles.profile_payload(row))) for row in rows],
        "history": history,
        "error": error,
        "can_command": request.user.has_perm("stations.add_command"),
        "purposes": [p for p in ChargingProfilePurpose.values if p != "ChargingStationExternalConstraints"],
        "kinds": ChargingProfileKind.values,
        "recurrency_kinds": RecurrencyKind.values,
        "composite": ours,
        "evse_id": evse_id,
        "chart": charts.step_chart(lines, duration_s=CHART_DURATION_S, unit=unit),
        "station_answer": answer,
        "limits": ExternalChargingLimit.objects.filter(station=station, cleared_at__isnull=True)[:10],
        "needs": EvChargingNeeds.objects.filter(station=station)[:5],
        "ev_schedules": EvChargingSchedule.objects.filter(station=station)[:5],
    }
    return render(request, "smartcharging/profiles_section.html", context)


def _evse(request: HttpRequest) -> int:
    try:
        return max(0, int(request.GET.get("evse_id", "1")))
    except ValueError:
        return 1


@login_required
@permission_required("smartcharging.view_chargingprofile", raise_exception=True)
def station_profiles(request: HttpRequest, identity: str) -> HttpResponse:
    return _section(request, _station_or_404(identity), evse_id=_evse(request))


def _periods(raw: str) -> list[dict[str, Any]]:
    """``"0:16, 3600:32"`` -> periods (start seconds : limit)."""
    out = []
    for item in raw.replace(";", ",").split(","):
        if not item.strip():
            continue
        start, _, limit = item.partition(":")
        out.append({"startPeriod": int(start.strip()), "limit": float(limit.strip())})
    return out


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def station_profile_set(request: HttpRequest, identity: str) -> HttpResponse:
    station = _station_or_404(identity)
    post = request.POST
    try:
        kind = post.get("kind", "Absolute")
        schedule: dict[str, Any] = {
            "id": 1,
            "chargingRateUnit": post.get("rate_unit", "A"),
            "chargingSchedulePeriod": _periods(post.get("periods", "0:16")),
        }
        if post.get("start_schedule", "").strip():
            schedule["startSchedule"] = post["start_schedule"].strip()
        if post.get("duration_s", "").strip():
            schedule["duration"] = int(post["duration_s"])
        profile: dict[str, Any] = {
            "stackLevel": int(post.get("stack_level", "0") or 0),
            "chargingProfilePurpose": post.get("purpose", ""),
            "chargingProfileKind": kind,
            "chargingSchedule": [schedule],
        }
        if post.get("recurrency_kind"):
            profile["recurrencyKind"] = post["recurrency_kind"]
        if post.get("transaction_id", "").strip():
            profile["transactionId"] = post["transaction_id"].strip()
        evse_id = int(post.get("evse_id", "0") or 0)
        profiles.profile_set(station=station, evse_id=evse_id, profile=profile, user=request.user)
    except ValueError as exc:  # CommandValidationError too
        message = exc.message if isinstance(exc, commands.CommandValidationError) else f"bad number: {exc}"
        return _section(request, station, error=message)
    return _section(request, station)


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def station_profile_clear(request: HttpRequest, identity: str, profile_id: int) -> HttpResponse:
    station = _station_or_404(identity)
    try:
        profiles.profiles_clear(station=station, profile_id=profile_id, user=request.user)
    except commands.CommandValidationError as exc:
        return _section(request, station, error=exc.message)
    return _section(request, station)


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def station_profiles_get(request: HttpRequest, identity: str) -> HttpResponse:
    station = _station_or_404(identity)
    try:
        profiles.profiles_report_request(station=station, user=request.user)
    except commands.CommandValidationError as exc:
        return _section(request, station, error=exc.message)
    return _section(request, station)


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def station_composite_ask(request: HttpRequest, identity: str) -> HttpResponse:
    station = _station_or_404(identity)
    evse_id = _evse(request)
    try:
        services.composite_request(station=station, evse_id=evse_id, duration_s=CHART_DURATION_S, rate_unit="A",
                                   user=request.user)  # fmt: skip
    except commands.CommandValidationError as exc:
        return _section(request, station, error=exc.message, evse_id=evse_id)
    return _section(request, station, evse_id=evse_id)
