"""Operator pages for stations: overview, station detail, message log. Thin: selectors do the querying."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from csms import jobs
from csms.htmx import HtmxHttpRequest
from transactions import selectors as txn_selectors

from . import command_forms, commands, display_messages, leases, remote, selectors, timeline
from .models import ChargingStation, Direction, MessageFormat, MessageLog, MessagePriority, MessageState


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    status = status if status in selectors.STATION_FILTERS else ""
    order = request.GET.get("order", "")
    order = order if order in selectors.STATION_ORDERS else "identity"
    stations = selectors.station_list(search=search, status=status, order=order)
    page = Paginator(stations, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "stations/overview.html",
        {
            "counts": selectors.station_counts(),
            "figures": txn_selectors.overview_figures(),
            "jobs": jobs.jobs_status(),
            "server_processes": leases.processes_alive(),
            "page": page,
            "search": search,
            "status": status,
            "order": order,
            "filters": selectors.STATION_FILTERS,
        },
    )


@login_required
def station_detail(request: HttpRequest, identity: str) -> HttpResponse:
    try:
        station = selectors.station_detail(identity=identity)
    except ChargingStation.DoesNotExist:
        raise Http404(f"No station {identity}") from None
    return render(
        request,
        "stations/detail.html",
        {
            "station": station,
            "messages_log": selectors.station_recent_messages(station=station),
            "conn": _connections_context(request, station),
            "commands": selectors.station_recent_commands(station=station),
            "last_outcomes": remote.station_last_outcomes(station=station),
            "can_command": request.user.has_perm("stations.add_command"),
            "csms_actions": command_forms.csms_actions(),
            "triggerable": commands.triggerable_messages(),
            "id_token_types": command_forms.ID_TOKEN_TYPES,
            "active_sessions": list(txn_selectors.active_transactions(station_id=station.pk)[:20]),
            "local_list": txn_selectors.local_list_for_station(station_id=station.pk),
        },
    )


CONNECTIONS_PER_PAGE = 20


def _connections_context(request: HttpRequest, station: ChargingStation) -> dict[str, object]:
    """The connections section: the timeline over ``?window=`` (24h, 7d) ending at ``?until=`` (ISO 8601, UTC;
    default now) and the ``?conn_page=`` of the table."""
    window = request.GET.get("window", "")
    window = window if window in selectors.TIMELINE_WINDOWS else selectors.TIMELINE_DEFAULT_WINDOW
    now = timezone.now()
    until_raw = request.GET.get("until", "").strip()
    try:
        until = min(_optional_datetime(until_raw) or now, now)
    except ValueError:  # well-formed but impossible (month 13): the window ends now
        until, until_raw = now, ""
    if until == now:
        until_raw = ""
    history = selectors.station_connection_timeline(
        station=station, window=selectors.TIMELINE_WINDOWS[window], until=until
    )
    query = f"window={window}" + (f"&until={until:%Y-%m-%dT%H:%M:%SZ}" if until_raw else "")
    return {
        "windows": list(selectors.TIMELINE_WINDOWS),
        "window": window,
        "timeline": history,
        "chart": timeline.timeline_chart(history),
        "max_rows": selectors.TIMELINE_MAX_CONNECTIONS,
        "page": Paginator(selectors.station_connection_page(station=station), CONNECTIONS_PER_PAGE).get_page(
            request.GET.get("conn_page")
        ),
        "query": query,
    }


@login_required
@require_GET
def station_connections(request: HttpRequest, identity: str) -> HttpResponse:
    """The station page's connections section (timeline and table), re-fetched live on connect/disconnect."""
    station = _station_or_404(identity)
    context = {"station": station, "conn": _connections_context(request, station)}
    return render(request, "stations/_connections.html", context)


@login_required
@require_GET
def station_remote_control(request: HttpRequest, identity: str) -> HttpResponse:
    """The station page's remote-control section (intended availability, reset, last outcomes), re-fetched live."""
    try:
        station = selectors.station_detail(identity=identity)
    except ChargingStation.DoesNotExist:
        raise Http404(f"No station {identity}") from None
    context = {"station": station, "last_outcomes": remote.station_last_outcomes(station=station)}
    return render(request, "stations/_remote_control.html", context)


def _station_or_404(identity: str) -> ChargingStation:
    station = selectors.station_by_identity(identity=identity)
    if station is None:
        raise Http404(f"No station {identity}")
    return station


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def command_create(request: HttpRequest, identity: str) -> HttpResponse:
    """Send one command from a station-page form; answers with the new row (the outcome arrives live)."""
    station = _station_or_404(identity)
    form = request.POST.get("form", "")
    try:
        action, payload = command_forms.build(form, request.POST)
        command = commands.command_send(station=station, action=action, payload=payload, user=request.user)
    except (command_forms.CommandFormError, commands.CommandValidationError) as exc:
        violations = getattr(exc, "violations", [])
        response = render(
            request, "stations/_command_errors.html", {"message": exc.message, "violations": violations}, status=422
        )
        response["HX-Retarget"] = f"#errors-{form}" if form in command_forms.BUILDERS else "#errors-generic"
        response["HX-Reswap"] = "innerHTML"
        return response
    return render(
        request, "stations/_command_row.html", {"command": selectors.command_for_row(pk=command.pk), "fresh": True}
    )


@login_required
@require_GET
def command_row(request: HttpRequest, identity: str, pk: int) -> HttpResponse:
    """One command's row as it is now. A row just sent from a form re-reads itself every 1.5 s until it is final,
    in case the outcome's live update arrived before the row did (or crossed a re-read): self-healing."""
    command = selectors.command_for_row(pk=pk, identity=identity)
    if command is None:
        raise Http404("No such command")
    return render(request, "stations/_command_row.html", {"command": command, "fresh": True})


@login_required
def message_log(request: HtmxHttpRequest) -> HttpResponse:
    identity = request.GET.get("station", "").strip()
    action = request.GET.get("action", "").strip()
    direction = request.GET.get("direction", "")
    direction = direction if direction in Direction.values else ""
    errors_only = request.GET.get("errors") == "1"
    tail = request.GET.get("tail") == "1"
    messages = selectors.message_log(identity=identity, action=action, direction=direction, errors_only=errors_only)
    page = Paginator(messages, 100).get_page(request.GET.get("page"))
    partial = request.htmx and not request.htmx.history_restore_request  # a history restore needs the page
    template = "stations/_message_rows.html" if partial else "stations/messages.html"
    filters = {"identity": identity, "action": action, "direction": direction, "errors_only": errors_only}
    return render(
        request, template, {"page": page, "filters": filters | {"tail": tail}, "directions": Direction.choices}
    )


# Frames sharing a message id (a CALL and its answer) are looked for this close in time: the (station, created_at)
# index bounds the search, and an answer comes within the call timeout.
RELATED_FRAMES_WINDOW = timedelta(hours=1)


@login_required
@require_GET
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One logged frame in full (tables show a one-line preview), with the frames that share its message id."""
    message = get_object_or_404(MessageLog.objects.select_related("station"), pk=pk)
    related: list[MessageLog] = []
    if message.message_id:
        related = list(
            MessageLog.objects.filter(
                station_id=message.station_id,
                message_id=message.message_id,
                created_at__range=(
                    message.created_at - RELATED_FRAMES_WINDOW,
                    message.created_at + RELATED_FRAMES_WINDOW,
                ),
            )
            .exclude(pk=message.pk)
            .order_by("created_at", "id")[:10]
        )
    return render(request, "stations/message_detail.html", {"message": message, "related": related})


# --- Display messages (block O) -------------------------------------------------------------------------------


def _display_messages(request: HttpRequest, station: ChargingStation, error: str = "") -> HttpResponse:
    return render(
        request,
        "stations/_display_messages_table.html",
        {
            "station": station,
            "display_messages": selectors.station_display_messages(station_id=station.pk),
            "can_command": request.user.has_perm("stations.add_command"),
            "priorities": MessagePriority.values,
            "message_states": MessageState.values,
            "formats": MessageFormat.values,
            "error": error,
        },
        status=422 if error else 200,
    )


@login_required
@require_GET
def station_display_messages(request: HttpRequest, identity: str) -> HttpResponse:
    """The station page's display messages (loaded by htmx; re-rendered after a set, clear or get)."""
    return _display_messages(request, _station_or_404(identity))


def _optional_datetime(raw: str) -> datetime | None:
    value = parse_datetime(raw) if raw else None
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)  # the form's fields are UTC
    return value


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def display_message_set(request: HttpRequest, identity: str) -> HttpResponse:
    station = _station_or_404(identity)
    post = request.POST
    try:
        display_messages.display_message_set(
            station=station,
            content=post.get("content", ""),
            priority=post.get("priority", MessagePriority.NORMAL_CYCLE),
            format=post.get("format", MessageFormat.UTF8),
            language=post.get("language", "").strip(),
            state=post.get("state", ""),
            start_at=_optional_datetime(post.get("start_at", "").strip()),
            end_at=_optional_datetime(post.get("end_at", "").strip()),
            transaction_id=post.get("transaction_id", "").strip(),
            user=request.user,
        )
    except commands.CommandValidationError as exc:
        return _display_messages(request, station, error=exc.message)
    return _display_messages(request, station)


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def display_message_clear(request: HttpRequest, identity: str, message_id: int) -> HttpResponse:
    station = _station_or_404(identity)
    try:
        display_messages.display_message_clear(station=station, message_id=message_id, user=request.user)
    except commands.CommandValidationError as exc:
        return _display_messages(request, station, error=exc.message)
    return _display_messages(request, station)


@login_required
@permission_required("stations.add_command", raise_exception=True)
@require_POST
def display_messages_get(request: HttpRequest, identity: str) -> HttpResponse:
    station = _station_or_404(identity)
    display_messages.display_messages_request(station=station, user=request.user)
    return _display_messages(request, station)
