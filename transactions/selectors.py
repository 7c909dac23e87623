"""Read-side queries for the API, dashboard plots and CDR export. Each returns a QuerySet or plain rows, N+1-free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from stations.models import Command

from .metering import ENERGY_REGISTER
from .models import (
    ChargingTransaction,
    IdToken,
    LocalAuthList,
    MeterSample,
    Reservation,
    Tariff,
    TransactionEventRecord,
)


def transactions_all() -> QuerySet[ChargingTransaction]:
    return ChargingTransaction.objects.select_related("station", "token", "tariff_version")


def active_transactions(*, station_id: int | None = None) -> QuerySet[ChargingTransaction]:
    qs = transactions_all().filter(is_active=True)
    return qs.filter(station_id=station_id) if station_id is not None else qs


def transactions_in_period(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    station_id: int | None = None,
    overlapping: bool = False,
) -> QuerySet[ChargingTransaction]:
    """Sessions that started in [since, until), newest first; with ``overlapping``, every session that was running
    at some point of [since, until) (still active ones included)."""
    qs = transactions_all()
    if station_id is not None:
        qs = qs.filter(station_id=station_id)
    if until is not None:
        qs = qs.filter(started_at__lt=until)
    if since is not None:
        if overlapping:
            qs = qs.filter(Q(ended_at__isnull=True) | Q(ended_at__gte=since))
        else:
            qs = qs.filter(started_at__gte=since)
    return qs


def transaction_by_remote_start_id(station: Any, remote_start_id: int) -> ChargingTransaction | None:
    """The transaction a RequestStartTransaction(remoteStartId) started, once the station reported it."""
    station_id = getattr(station, "pk", station)
    return (
        transactions_all()
        .filter(station_id=station_id, remote_start_id=remote_start_id)
        .order_by("-started_at")
        .first()
    )


def transaction_events(*, transaction_pk: int) -> QuerySet[TransactionEventRecord]:
    return TransactionEventRecord.objects.filter(transaction_id=transaction_pk).order_by("seq_no")


def transactions_with_seq_no_gaps(*, station_id: int | None = None) -> QuerySet[ChargingTransaction]:
    """Sessions with missing TransactionEvents (seqNo gaps): possibly lost offline events, worth an operator's look."""
    qs = transactions_all().exclude(seq_no_gaps=[])
    return qs.filter(station_id=station_id) if station_id is not None else qs


class EnergyDay(TypedDict):
    station_id: int
    day: date
    energy_wh: Decimal | None  # None: no session of that day reported its energy
    sessions: int


def energy_per_day(
    *, since: datetime | None = None, until: datetime | None = None, station_id: int | None = None
) -> list[EnergyDay]:
    """``[{"station_id", "day", "energy_wh", "sessions"}]``; a session counts on the (UTC) day it started."""
    qs = transactions_in_period(since=since, until=until, station_id=station_id).order_by()
    return list(
        qs.annotate(day=TruncDate("started_at"))
        .values("station_id", "day")
        .annotate(energy_wh=Sum("energy_wh"), sessions=Count("id"))
        .order_by("station_id", "day")
    )


class SampleRow(TypedDict):
    timestamp: datetime
    measurand: str
    phase: str
    location: str
    context: str
    value: Decimal
    unit: str
    signed_meter_value: Any  # JSON as the station signed it, or None


def transaction_time_series(
    *, transaction_pk: int, measurands: list[str] | None = None
) -> QuerySet[MeterSample, SampleRow]:
    """A session's samples in time order as plain rows (for plots, the meter-values API and CDRs)."""
    qs = MeterSample.objects.filter(transaction_id=transaction_pk)
    if measurands:
        qs = qs.filter(measurand__in=measurands)
    return qs.order_by("timestamp", "measurand", "phase", "id").values(
        "timestamp", "measurand", "phase", "location", "context", "value", "unit", "signed_meter_value"
    )


# --- Dashboard ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverviewFigures:
    active_sessions: int
    power_now_w: Decimal
    energy_today_wh: Decimal


def overview_figures(*, now: datetime | None = None) -> OverviewFigures:
    """Active sessions, the sum of their last power readings, and the energy of sessions started today (UTC)."""
    now = now or timezone.now()
    active = ChargingTransaction.objects.filter(is_active=True).aggregate(n=Count("id"), power=Sum("last_power_w"))
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today = ChargingTransaction.objects.filter(started_at__gte=midnight, started_at__lt=midnight + timedelta(days=1))
    energy = today.aggregate(energy=Sum("energy_wh"))["energy"]
    return OverviewFigures(
        active_sessions=active["n"], power_now_w=active["power"] or Decimal(0), energy_today_wh=energy or Decimal(0)
    )


def session_list(
    *,
    identity: str = "",
    id_token: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    active: bool | None = None,
) -> QuerySet[ChargingTransaction]:
    """Sessions for the dashboard list and its CSV export: started in [since, until), newest first."""
    qs = transactions_in_period(since=since, until=until)
    if identity:
        qs = qs.filter(station__identity=identity)
    if id_token:
        qs = qs.filter(id_token__iexact=id_token)
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs.order_by("-started_at", "-id")


def session_detail(*, pk: int) -> ChargingTransaction | None:
    return transactions_all().filter(pk=pk).first()


def id_token_list(*, search: str = "") -> QuerySet[IdToken]:
    qs = IdToken.objects.select_related("group_id_token")
    if search:
        qs = qs.filter(Q(id_token__icontains=search) | Q(description__icontains=search))
    return qs.order_by("id_token", "type")


CDR_FIELDS = (
    "id",
    "station__identity",
    "transaction_id",
    "evse_id",
    "connector_id",
    "id_token",
    "started_at",
    "ended_at",
    "energy_wh",
    "stopped_reason",
    "cost",
    "currency",
    "signed_meter_value_start",
    "signed_meter_value_end",
)


def _signed_reading(first: bool) -> Subquery:
    """The signedMeterValue of the session's first (or last) signed energy register reading."""
    order = ("timestamp", "id") if first else ("-timestamp", "-id")
    readings = MeterSample.objects.filter(
        transaction_id=OuterRef("pk"), measurand=ENERGY_REGISTER, signed_meter_value__isnull=False
    )
    return Subquery(readings.order_by(*order).values("signed_meter_value")[:1])


def cdr_rows(*, since: datetime, until: datetime) -> QuerySet[ChargingTransaction, dict[str, Any]]:
    """Ended sessions whose end lies in [since, until), oldest end first, as plain rows (for streaming CDRs), with
    the signed meter values of their start and end readings (two indexed subqueries, no query per row)."""
    return (
        ChargingTransaction.objects.filter(is_active=False, ended_at__gte=since, ended_at__lt=until)
        .annotate(signed_meter_value_start=_signed_reading(True), signed_meter_value_end=_signed_reading(False))
        .order_by("ended_at", "id")
        .values(*CDR_FIELDS)
    )


def local_list_for_station(*, station_id: int) -> LocalAuthList | None:
    """The station's local authorization list with its token count, for the station page (one query)."""
    return LocalAuthList.objects.filter(station_id=station_id).annotate(token_count=Count("tokens")).first()


# --- Tariffs --------------------------------------------------------------------------------------------------


def tariff_list() -> QuerySet[Tariff]:
    """Tariffs with their stations and token groups (three queries whatever their number)."""
    return Tariff.objects.prefetch_related("stations", "token_groups").order_by("-is_default", "name")


# --- Reservations ---------------------------------------------------------------------------------------------


def reservations_all() -> QuerySet[Reservation]:
    return Reservation.objects.select_related("station", "transaction")


def station_reservations(*, identity: str, limit: int = 20) -> list[Reservation]:
    """A station's latest reservations (open ones first), for its page."""
    qs = reservations_all().filter(station__identity=identity)
    return list(qs.order_by(F("ended_at").asc(nulls_first=True), "-created_at", "-id")[:limit])


def reservation_detail(*, pk: int) -> Reservation | None:
    return reservations_all().filter(pk=pk).first()


def transaction_stop_requests(*, txn: ChargingTransaction, limit: int = 10) -> list[Command]:
    """The RequestStopTransaction commands sent for a session (any door), newest first, with their outcome."""
    return list(
        Command.objects.filter(
            station_id=txn.station_id, action="RequestStopTransaction", request__transactionId=txn.transaction_id
        ).order_by("-created_at", "-id")[:limit]
    )
