"""Operator pages for stations: overview, station detail, message log. Thin: selectors do the querying."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from . import selectors
from .models import ChargingStation, Direction


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    page = Paginator(selectors.station_list(search=search), 50).get_page(request.GET.get("page"))
    return render(request, "stations/overview.html", {
        "counts": selectors.station_counts(), "page": page, "search": search,
    })


@login_required
def station_detail(request: HttpRequest, identity: str) -> HttpResponse:
    try:
        station = selectors.station_detail(identity=identity)
    except ChargingStation.DoesNotExist:
        raise Http404(f"No station {identity}") from None
    return render(request, "stations/detail.html", {
        "station": station,
        "messages_log": selectors.station_recent_messages(station=station),
        "connections": selectors.station_connections(station=station),
        "commands": selectors.station_recent_commands(station=station),
    })


@login_required
def message_log(request: HttpRequest) -> HttpResponse:
    filters = {
        "identity": request.GET.get("station", "").strip(),
        "action": request.GET.get("action", "").strip(),
        "direction": request.GET.get("direction", "") if request.GET.get("direction") in Direction.values else "",
        "errors_only": request.GET.get("errors") == "1",
    }
    page = Paginator(selectors.message_log(**filters), 100).get_page(request.GET.get("page"))
    for message in page:
        message.pretty = json.dumps(message.payload, indent=2, ensure_ascii=False) if message.payload is not None \
            else message.raw
    template = "stations/_message_rows.html" if request.htmx else "stations/messages.html"
    return render(request, template, {"page": page, "filters": filters, "directions": Direction.choices})
