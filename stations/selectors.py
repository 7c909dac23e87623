"""Read-side queries for stations (dashboard, API). Each returns querysets with what its callers display joined in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Case, Count, DateTimeField, Exists, F, OuterRef, Prefetch, Q, QuerySet, Value, When

from .models import (
    ChargingStation,
    Command,
    Connection,
    ConnectionEvent,
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


# --- Connection history timeline ----------------------------------------------------------------------------

TIMELINE_WINDOWS: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
TIMELINE_DEFAULT_WINDOW = "24h"
# A station flapping for a week could have thousands of connections: the timeline draws at most the newest ones.
TIMELINE_MAX_CONNECTIONS = 2000


@dataclass(frozen=True, slots=True)
class OnlineBar:
    """One accepted connection within the window. ``end`` None: still open (drawn up to the window's end)."""

    connection: Connection
    start: datetime  # clipped to the window
    end: datetime | None
    clipped_start: bool  # opened before the window
    clipped_end: bool  # closed after the window (or still open at its end)


@dataclass(frozen=True, slots=True)
class OfflineGap:
    """A period with no accepted connection. ``since_window_start``: the station was offline when the window
    began (the gap may be longer); ``ongoing``: offline until the window's end."""

    start: datetime
    end: datetime
    since_window_start: bool = False
    ongoing: bool = False

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(slots=True)
class ConnectionTimeline:
    start: datetime
    end: datetime
    bars: list[OnlineBar] = field(default_factory=list)
    gaps: list[OfflineGap] = field(default_factory=list)
    refusals: list[Connection] = field(default_factory=list)  # refused handshakes, oldest first
    truncated: bool = False  # more than TIMELINE_MAX_CONNECTIONS in the window: the oldest are left out


def station_connection_timeline(*, station: ChargingStation, window: timedelta, until: datetime) -> ConnectionTimeline:
    """The station's connections in [until - window, until] as bars, the offline gaps between them and the refused
    handshakes: one query (the (station, -connected_at) index), bounded by the window and TIMELINE_MAX_CONNECTIONS.

    A connection without a close time is open up to ``until`` when it is the station's current connection and the
    station is online; otherwise (its process died before recording the close) it ends where the next connection
    begins, or is drawn open too when none followed.
    """
    start = until - window
    rows = list(
        Connection.objects.filter(station=station, connected_at__lte=until)
        .filter(Q(disconnected_at__isnull=True) | Q(disconnected_at__gte=start))
        .order_by("-connected_at", "-id")[: TIMELINE_MAX_CONNECTIONS + 1]
    )
    timeline = ConnectionTimeline(start=start, end=until, truncated=len(rows) > TIMELINE_MAX_CONNECTIONS)
    rows = rows[:TIMELINE_MAX_CONNECTIONS]
    rows.reverse()
    timeline.refusals = [c for c in rows if c.outcome == ConnectionEvent.REFUSED and c.connected_at >= start]
    accepted = [c for c in rows if c.outcome == ConnectionEvent.ACCEPTED]
    for i, c in enumerate(accepted):
        closed = c.disconnected_at
        if closed is None and not (station.is_online and c.pk == station.current_connection_id):
            closed = accepted[i + 1].connected_at if i + 1 < len(accepted) else None
        timeline.bars.append(
            OnlineBar(
                connection=c,
                start=max(c.connected_at, start),
                end=None if closed is None or closed > until else closed,
                clipped_start=c.connected_at < start,
                clipped_end=closed is None or closed > until,
            )
        )
    # Gaps: the window minus the union of the bars (a replacing connection overlaps the one it replaces).
    online_until, before_any = start, True
    for bar in timeline.bars:
        if bar.start > online_until:
            timeline.gaps.append(OfflineGap(online_until, bar.start, since_window_start=before_any))
        online_until = max(online_until, bar.end or until)
        before_any = False
    if online_until < until:
        timeline.gaps.append(OfflineGap(online_until, until, since_window_start=before_any, ongoing=True))
    return timeline


def station_connection_page(*, station: ChargingStation) -> QuerySet[Connection]:
    """Every connection of the station, newest first, for the paginated table under the timeline."""
    return Connection.objects.filter(station=station).order_by("-connected_at", "-id")


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
