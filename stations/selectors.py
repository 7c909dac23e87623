"""Read-side queries for stations (dashboard, API). Each returns querysets with what its callers display joined in."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

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


def _faulted_connector() -> Exists:
    return Exists(Connector.objects.filter(evse__station=OuterRef("pk"), status=ConnectorStatus.FAULTED))


def station_counts() -> StationCounts:
    row = ChargingStation.objects.aggregate(
        total=Count("pk"),
        online=Count("pk", filter=Q(is_online=True)),
    )
    faulted = ChargingStation.objects.filter(_faulted_connector()).count()
    return StationCounts(
        total=row["total"], online=row["online"], offline=row["total"] - row["online"], faulted=faulted
    )


def station_list(*, search: str = "", online: bool | None = None) -> QuerySet[ChargingStation]:
    """Stations with their connectors' states, for lists of any size (two queries, whatever the count)."""
    qs = ChargingStation.objects.annotate(has_fault=_faulted_connector()).prefetch_related(
        Prefetch("evses", queryset=Evse.objects.prefetch_related("connectors"))
    )
    if search:
        qs = qs.filter(Q(identity__icontains=search) | Q(model__icontains=search) | Q(vendor_name__icontains=search))
    if online is not None:
        qs = qs.filter(is_online=online)
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
