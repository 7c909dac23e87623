"""Read-side queries for stations (dashboard, API). Each returns querysets with what its callers display joined in."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, Count, DateTimeField, Exists, F, OuterRef, Prefetch, Q, QuerySet, Value, When

from .models import (
    ChargingStation,
    Command,
    Connection,
    Connector,
    ConnectorStatus,
    DisplayMessage,
    Evse,
    MessageLog,
)


@dataclass(frozen=True, slots=True)
class StationCounts:
    total: int
    online: int
    offline: int
    faulted: int
    charging: int


def _faulted_connector() -> Exists:
    return Exists(Connector.objects.filter(evse__station=OuterRef("pk"), status=ConnectorStatus.FAULTED))


def _charging() -> Exists:
    from transactions.selectors import active_transactions  # the transactions app's own query of a session

    return Exists(active_transactions().filter(station=OuterRef("pk")))


def station_counts() -> StationCounts:
    row = ChargingStation.objects.aggregate(
        total=Count("pk"),
        online=Count("pk", filter=Q(is_online=True)),
    )
    faulted = ChargingStation.objects.filter(_faulted_connector()).count()
    charging = ChargingStation.objects.filter(_charging()).count()
    return StationCounts(
        total=row["total"],
        online=row["online"],
        offline=row["total"] - row["online"],
        faulted=faulted,
        charging=charging,
    )


# The overview's filters (its count cards link to them) and orders.
STATION_FILTERS = ("online", "offline", "faulted", "charging")
STATION_ORDERS = ("identity", "problems")


def station_list(
    *, search: str = "", online: bool | None = None, status: str = "", order: str = "identity"
) -> QuerySet[ChargingStation]:
    """Stations with their connectors' states, for lists of any size (two queries, whatever the count).

    ``status``: one of STATION_FILTERS. ``order="problems"``: stations with a faulted connector first, then the
    offline ones, longest offline first (never seen before any), then the online ones that never booted, then
    the rest; by identity within each.
    """
    qs = ChargingStation.objects.annotate(has_fault=_faulted_connector()).prefetch_related(
        Prefetch("evses", queryset=Evse.objects.prefetch_related("connectors"))
    )
    if search:
        qs = qs.filter(Q(identity__icontains=search) | Q(model__icontains=search) | Q(vendor_name__icontains=search))
    if online is not None:
        qs = qs.filter(is_online=online)
    if status == "online":
        qs = qs.filter(is_online=True)
    elif status == "offline":
        qs = qs.filter(is_online=False)
    elif status == "faulted":
        qs = qs.filter(has_fault=True)
    elif status == "charging":
        qs = qs.filter(_charging())
    if order == "problems":
        rank = Case(
            When(has_fault=True, then=Value(0)),
            When(is_online=False, then=Value(1)),
            When(last_boot_at__isnull=True, then=Value(2)),
            default=Value(3),
        )
        offline_since = Case(
            When(is_online=False, then=F("last_seen_at")), default=Value(None), output_field=DateTimeField()
        )
        return qs.annotate(problem_rank=rank).order_by("problem_rank", offline_since.asc(nulls_first=True), "identity")
    return qs.order_by("identity")


def station_detail(*, identity: str) -> ChargingStation:
    return (
        ChargingStation.objects.annotate(has_fault=_faulted_connector())
        .prefetch_related(Prefetch("evses", queryset=Evse.objects.prefetch_related("connectors")))
        .get(identity=identity)
    )


def station_row(*, station_id: int) -> ChargingStation | None:
    return station_list().filter(pk=station_id).first()


def station_recent_messages(*, station: ChargingStation, limit: int = 50) -> QuerySet[MessageLog]:
    return MessageLog.objects.filter(station=station).order_by("-created_at", "-id")[:limit]


def station_connections(*, station: ChargingStation, limit: int = 20) -> QuerySet[Connection]:
    return Connection.objects.filter(station=station).order_by("-connected_at", "-id")[:limit]


def message_log(
    *, identity: str = "", action: str = "", direction: str = "", errors_only: bool = False
) -> QuerySet[MessageLog]:
    qs = MessageLog.objects.select_related("station").order_by("-created_at", "-id")
    if identity:
        qs = qs.filter(station__identity=identity)
    if action:
        qs = qs.filter(action=action)
    if direction:
        qs = qs.filter(direction=direction)
    if errors_only:
        qs = qs.exclude(error_code="")
    return qs


def station_recent_commands(*, station: ChargingStation, limit: int = 20) -> QuerySet[Command]:
    return Command.objects.filter(station=station).select_related("created_by").order_by("-created_at", "-id")[:limit]


def station_by_identity(*, identity: str) -> ChargingStation | None:
    return ChargingStation.objects.filter(identity=identity).first()


def command_for_row(*, pk: int, identity: str | None = None) -> Command | None:
    """A command with what its table row shows (author, station), optionally only if it is that station's."""
    qs = Command.objects.select_related("created_by", "station").filter(pk=pk)
    return qs.filter(station__identity=identity).first() if identity is not None else qs.first()


def station_display_messages(*, station_id: int) -> QuerySet[DisplayMessage]:
    """The station's display messages: the CSMS's own first (newest first), then what the station reported."""
    return DisplayMessage.objects.filter(station_id=station_id).order_by("source", "-message_id")
