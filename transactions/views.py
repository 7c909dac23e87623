"""Operator pages for sessions, id tokens and reservations. Thin: selectors query, services change, charts compute
coordinates."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from csms.htmx import HtmxHttpRequest

from . import charts, reservations, selectors, services, tariffs
from .models import AuthorizationStatus, IdToken, IdTokenType

SESSIONS_PER_PAGE = 50
TOKENS_PER_PAGE = 50


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip()) if raw.strip() else None
    except ValueError:
        return None


def _session_filters(request: HttpRequest) -> dict[str, Any]:
    active = request.GET.get("active", "")
    return {
        "station": request.GET.get("station", "").strip(),
        "id_token": request.GET.get("id_token", "").strip(),
        "since": _day(request.GET.get("since", "")),
        "until": _day(request.GET.get("until", "")),
        "active": active if active in ("1", "0") else "",
    }


def _sessions(filters: dict[str, Any]) -> Any:
    def start(day: date | None, plus: int = 0) -> datetime | None:
        return datetime.combine(day + timedelta(days=plus), time.min, tzinfo=UTC) if day else None

    return selectors.session_list(
        identity=filters["station"],
        id_token=filters["id_token"],
        since=start(filters["since"]),
        until=start(filters["until"], 1),  # "until" day included
        active={"1": True, "0": False}.get(filters["active"]),
    )


def _query(filters: dict[str, Any]) -> str:
    return urlencode({k: (v.isoformat() if isinstance(v, date) else v) for k, v in filters.items() if v})


@login_required
def session_list(request: HtmxHttpRequest) -> HttpResponse:
    filters = _session_filters(request)
    page = Paginator(_sessions(filters), SESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    partial = request.htmx and not request.htmx.history_restore_request
    template = "transactions/_session_results.html" if partial else "transactions/session_list.html"
    return render(request, template, {"page": page, "filters": filters, "query": _query(filters)})


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = [
    "station",
    "transaction_id",
    "evse_id",
    "connector_id",
    "id_token",
    "id_token_type",
    "started_at",
    "ended_at",
    "is_active",
    "stopped_reason",
    "energy_wh",
    "meter_start_wh",
    "meter_stop_wh",
    "peak_power_w",
    "had_offline_events",
]


@login_required
def session_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered sessions as CSV, streamed (any number of rows, constant memory)."""
    sessions = _sessions(_session_filters(request))
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(CSV_COLUMNS)
        for t in sessions.iterator(chunk_size=1000):
            yield writer.writerow(
                [
                    t.station.identity,
                    t.transaction_id,
                    t.evse_id or "",
                    t.connector_id or "",
                    t.id_token,
                    t.id_token_type,
                    t.started_at.isoformat(),
                    t.ended_at.isoformat() if t.ended_at else "",
                    int(t.is_active),
                    t.stopped_reason,
                    t.energy_wh if t.energy_wh is not None else "",
                    t.meter_start_wh if t.meter_start_wh is not None else "",
                    t.meter_stop_wh if t.meter_stop_wh is not None else "",
                    t.peak_power_w if t.peak_power_w is not None else "",
                    int(t.had_offline_events),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="sessions.csv"'
    return response


def _events_with_gaps(events: list[Any]) -> list[dict[str, Any]]:
    """Event rows with a ``gap`` row wherever seqNo numbers are missing between two received events."""
    out: list[dict[str, Any]] = []
    previous: int | None = None
    for event in events:
        if previous is not None and event.seq_no > previous + 1:
            first, last = previous + 1, event.seq_no - 1
            out.append({"gap": f"{first}" if first == last else f"{first}–{last}"})
        out.append({"event": event})
        previous = event.seq_no
    return out


@login_required
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = selectors.session_detail(pk=pk)
    if session is None:
        raise Http404("No such session")
    chart = charts.session_chart(
        selectors.transaction_time_series(transaction_pk=session.pk, measurands=[charts.ENERGY, charts.POWER])
    )
    events = list(selectors.transaction_events(transaction_pk=session.pk))
    return render(
        request,
        "transactions/session_detail.html",
        {
            "session": session,
            "chart": chart,
            "events": _events_with_gaps(events),
            "stop_requests": selectors.transaction_stop_requests(txn=session),
            "energy_kwh": (session.energy_wh or 0) / 1000,
            # The running cost of an active session, to now; the stored final one once ended.
            "cost": tariffs.transaction_cost(session),
        },
    )


@login_required
def id_token_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    page = Paginator(selectors.id_token_list(search=search), TOKENS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "transactions/id_token_list.html",
        {
            "page": page,
            "search": search,
            "types": IdTokenType.choices,
            "statuses": AuthorizationStatus.choices,
            "can_add": request.user.has_perm("transactions.add_idtoken"),
            "can_change": request.user.has_perm("transactions.change_idtoken"),
            "errors": {},
            "form": {},
        },
    )


@login_required
@permission_required("transactions.add_idtoken", raise_exception=True)
@require_POST
def id_token_create(request: HttpRequest) -> HttpResponse:
    expires = _day(request.POST.get("expires_at", ""))
    try:
        services.id_token_create(
            id_token=request.POST.get("id_token", ""),
            token_type=request.POST.get("type", IdTokenType.ISO14443),
            status=request.POST.get("status", AuthorizationStatus.ACCEPTED),
            expires_at=datetime.combine(expires, time.min, tzinfo=UTC) if expires else None,
            description=request.POST.get("description", ""),
        )
    except ValidationError as exc:
        page = Paginator(selectors.id_token_list(), TOKENS_PER_PAGE).get_page(1)
        return render(
            request,
            "transactions/id_token_list.html",
            {
                "page": page,
                "search": "",
                "types": IdTokenType.choices,
                "statuses": AuthorizationStatus.choices,
                "can_add": True,
                "can_change": request.user.has_perm("transactions.change_idtoken"),
                "errors": exc.message_dict,
                "form": request.POST,
            },
            status=422,
        )
    return redirect(f"{reverse('id-token-list')}?{urlencode({'q': request.POST.get('id_token', '').strip()})}")


@login_required
@permission_required("transactions.change_idtoken", raise_exception=True)
@require_POST
def id_token_set_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    status = AuthorizationStatus.BLOCKED if request.POST.get("block") == "1" else AuthorizationStatus.ACCEPTED
    try:
        token = services.id_token_set_status(token_pk=pk, status=status)
    except IdToken.DoesNotExist:
        raise Http404("No such token") from None
    if request.htmx:
        return render(request, "transactions/_id_token_row.html", {"token": token, "can_change": True})
    return redirect("id-token-list")


@login_required
def tariff_list(request: HttpRequest) -> HttpResponse:
    """The tariffs, their prices, bands and assignments; edited in the admin (or the API)."""
    return render(
        request,
        "transactions/tariff_list.html",
        {"tariffs": selectors.tariff_list(), "can_change": request.user.has_perm("transactions.change_tariff")},
    )


# --- Reservations ---------------------------------------------------------------------------------------------


def _station_reservations(request: HttpRequest, identity: str) -> HttpResponse:
    return render(
        request,
        "transactions/_station_reservations.html",
        {
            "identity": identity,
            "reservations": selectors.station_reservations(identity=identity),
            "can_cancel": request.user.has_perm("transactions.delete_reservation"),
        },
    )


@login_required
def station_reservations(request: HttpRequest, identity: str) -> HttpResponse:
    """The station page's reservation table (loaded by htmx; refreshed after a cancel)."""
    return _station_reservations(request, identity)


@login_required
@permission_required("transactions.delete_reservation", raise_exception=True)
@require_POST
def reservation_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Send CancelReservation; the row shows ``cancelled`` once the station accepts (re-read the table)."""
    reservation = selectors.reservation_detail(pk=pk)
    if reservation is None:
        raise Http404("No such reservation")
    try:
        reservations.reservation_cancel(reservation=reservation, user=request.user)
    except reservations.ReservationError as exc:
        return HttpResponse(str(exc), status=409)
    return _station_reservations(request, reservation.station.identity)
