"""The live dashboard: browsers subscribe over a WebSocket; station changes arrive as HTML fragments (htmx OOB).

Groups: ``dashboard`` (every overview page) and ``station-<identity>`` (a station's page). Station consumers
publish small events (`station.changed`); this consumer renders the fragment for its own user.

A station page's sections that load by htmx (reservations, display messages, the security feed, remote control,
connections) are not rendered here (their forms need the user's request): the consumer sends a marker naming the
sections that changed, and the page re-fetches exactly those with the user's own session (``live-refresh``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from csms.looplocal import per_loop
from transactions import selectors as transaction_selectors

from . import selectors
from .models import Command

logger = logging.getLogger(__name__)

DASHBOARD_GROUP = "dashboard"
_GROUP_SAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def station_group(identity: str) -> str:
    # Channel-layer group names allow only ASCII letters, digits, hyphens, underscores and periods (< 100 chars).
    return "station-" + _GROUP_SAFE.sub("_", identity)[:80]


# A burst of station changes (a boot storm: a thousand stations connecting at once) is coalesced per station and
# sent one message at a time: one group_send per change in parallel exhausted the Redis connection pool
# (MaxConnectionsError), failing other channel-layer traffic too. Browsers see a change at most this much later.
COALESCE_S = 0.1


# The station page's live sections, and what changes them: a station's CALL (by action) or a command's outcome.
SECTIONS_BY_CALL: dict[str, frozenset[str]] = {
    "BootNotification": frozenset({"remote-control"}),
    "StatusNotification": frozenset({"remote-control"}),
    "ReservationStatusUpdate": frozenset({"reservations"}),
    "NotifyDisplayMessages": frozenset({"display-messages"}),
    "SecurityEventNotification": frozenset({"security"}),
    "NotifyEvent": frozenset({"security"}),
    "TransactionEvent": frozenset({"reservations"}),  # a session start consumes a reservation
}
# A connection opened or closed (or was refused: not published, the next change re-reads it): the timeline.
SECTIONS_ON_CONNECTION: frozenset[str] = frozenset({"connections"})
SECTIONS_BY_COMMAND: dict[str, frozenset[str]] = {
    "ReserveNow": frozenset({"reservations"}),
    "CancelReservation": frozenset({"reservations"}),
    "SetDisplayMessage": frozenset({"display-messages"}),
    "GetDisplayMessages": frozenset({"display-messages"}),
    "ClearDisplayMessage": frozenset({"display-messages"}),
    **{
        action: frozenset({"remote-control"})
        for action in (
            "ChangeAvailability",
            "Reset",
            "UnlockConnector",
            "ClearCache",
            "RequestStartTransaction",
            "RequestStopTransaction",
            "TriggerMessage",
        )
    },
}


def sections_marker(sections: frozenset[str] | set[str]) -> str:
    """The out-of-band element that tells a station page which sections to re-fetch (see base.html)."""
    if not sections:
        return ""
    names = " ".join(sorted(sections))
    return f'<div id="station-live-sections" hx-swap-oob="true" data-live-sections="{names}" hidden></div>'


async def _send_station_changed(station_id: int, identity: str, sections: frozenset[str], overview: bool) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"type": "station.changed", "station_id": station_id, "sections": sorted(sections)}
    try:
        if overview:
            await layer.group_send(DASHBOARD_GROUP, event)
        await layer.group_send(station_group(identity), event)
    except Exception:  # the live view is best effort: never fail a station's message for it
        logger.exception("could not publish a live update for %s", identity)


class _Publisher:
    """One per event loop: the stations changed since the last flush, and the task sending them."""

    def __init__(self) -> None:
        # station id -> (identity, sections changed, whether the overview's row changed too)
        self.pending: dict[int, tuple[str, frozenset[str], bool]] = {}
        self.task: asyncio.Task[None] | None = None

    def mark(self, station_id: int, identity: str, sections: frozenset[str], overview: bool) -> None:
        _, before, before_overview = self.pending.get(station_id, (identity, frozenset(), False))
        self.pending[station_id] = (identity, before | sections, before_overview or overview)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self.pending:
            await asyncio.sleep(COALESCE_S)
            batch, self.pending = self.pending, {}
            for station_id, (identity, sections, overview) in batch.items():
                await _send_station_changed(station_id, identity, sections, overview)


_publisher = per_loop(_Publisher)


async def publish_station_changed(
    *, station_id: int, identity: str, sections: frozenset[str] = SECTIONS_ON_CONNECTION, overview: bool = True
) -> None:
    """Tell the dashboards showing this station that it changed (soon, coalesced; never blocks the caller).

    ``sections``: the station page's sections to re-fetch; by default those a connection opening or closing
    changes (the station consumer's connect and close name no sections: ``SECTIONS_ON_CONNECTION``). A CALL
    passes its own (``SECTIONS_BY_CALL``). ``overview=False`` when only those changed (the overview's row and
    counters stay as they are, and are not re-rendered for every dashboard).
    """
    _publisher().mark(station_id, identity, sections, overview)


class DashboardConsumer(AsyncWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        station = self.scope["url_route"]["kwargs"].get("identity")
        self.groups_joined = [station_group(station)] if station else [DASHBOARD_GROUP]
        self.page = "station" if station else "overview"
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Browsers only listen."""

    async def station_changed(self, event: dict[str, Any]) -> None:
        html = await sync_to_async(self._render_station, thread_sensitive=False)(event["station_id"])
        if self.page == "station":
            html += sections_marker(set(event.get("sections", ())))
        if html:
            await self.send(text_data=html)

    async def command_finished(self, event: dict[str, Any]) -> None:
        """A command to this station got its outcome: its row on the station page updates in place, and the
        sections it changes are re-fetched."""
        if self.page != "station":
            return
        html = await sync_to_async(self._render_command, thread_sensitive=False)(event["command_id"])
        html += sections_marker(SECTIONS_BY_COMMAND.get(event.get("action", ""), frozenset()))
        if html:
            await self.send(text_data=html)

    def _render_command(self, command_id: int) -> str:
        command = Command.objects.select_related("created_by").filter(pk=command_id).first()
        if command is None:
            return ""
        return render_to_string("stations/_command_row.html", {"command": command, "oob": True})

    def _render_station(self, station_id: int) -> str:
        station = selectors.station_row(station_id=station_id)
        if station is None:
            return ""
        if self.page == "overview":
            context = {
                "station": station,
                "counts": selectors.station_counts(),
                "figures": transaction_selectors.overview_figures(),
            }
            return render_to_string("stations/_live_overview.html", context)
        return render_to_string("stations/_live_station.html", {"station": station})
