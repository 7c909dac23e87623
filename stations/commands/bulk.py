"""Bulk commands: one request to many stations as one operation, one ``Command`` per station."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Count, QuerySet

from ..models import BulkCommand, ChargingStation, CommandState
from . import secrets
from .pipeline import Sender, command_send, command_validate, sender_user


def bulk_targets(
    *, identities: Iterable[str] | None = None, online: bool | None = None, model: str = ""
) -> QuerySet[ChargingStation]:
    """Stations chosen by an explicit identity list and/or a filter."""
    stations = ChargingStation.objects.all()
    if identities is not None:
        stations = stations.filter(identity__in=list(identities))
    if online is not None:
        stations = stations.filter(is_online=online)
    if model:
        stations = stations.filter(model=model)
    return stations.order_by("identity")


def bulk_command_send(
    *,
    action: str,
    payload: dict[str, Any],
    stations: Iterable[ChargingStation],
    target: dict[str, Any] | None = None,
    user: Sender = None,
) -> BulkCommand:
    """Send one request to many stations as one operation: one Command per station, all linked to the bulk."""
    command_validate(action=action, payload=payload)
    with transaction.atomic():
        bulk = BulkCommand.objects.create(
            action=action,
            request=secrets.request_split(station_id=None, action=action, payload=payload)[0],
            target=target or {},
            created_by=sender_user(user),
        )
        for station in stations:
            command_send(station=station, action=action, payload=payload, user=user, bulk=bulk)
    return bulk


def bulk_summary(bulk: BulkCommand) -> dict[str, Any]:
    """Counts per state, and whether every station's command is over."""
    counts = {state: 0 for state in CommandState.values}
    for row in bulk.commands.values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    total = sum(counts.values())
    pending = counts[CommandState.QUEUED] + counts[CommandState.SENT]
    return {"total": total, "pending": pending, "done": pending == 0, "by_state": counts}
