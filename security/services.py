"""Security events: recording what stations report, the CSMS's aggregated records of refused handshakes, and
operators acknowledging critical events."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from stations.models import ChargingStation
from webhooks import services as webhooks

from .limiter import RefusalCount
from .models import SecurityEvent, SecurityEventSource

logger = logging.getLogger(__name__)

WEBHOOK_EVENT = "security.event"


def is_critical(event_type: str) -> bool:
    return event_type in settings.CSMS_CRITICAL_SECURITY_EVENTS


def _webhook_data(event: SecurityEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "station": event.identity,
        "source": event.source,
        "type": event.type,
        "timestamp": event.timestamp,
        "tech_info": event.tech_info,
        "critical": event.critical,
        "count": event.count,
        "remote_addr": event.remote_addr,
    }


def security_event_record(
    *, station_id: int, event_type: str, timestamp: datetime, tech_info: str = ""
) -> SecurityEvent | None:
    """Record a station's SecurityEventNotification and emit ``security.event``; None for a retried notification
    (same type and timestamp), which adds no second row and no second webhook."""
    identity = ChargingStation.objects.filter(pk=station_id).values_list("identity", flat=True).get()
    event = SecurityEvent(
        station_id=station_id,
        identity=identity,
        source=SecurityEventSource.STATION,
        type=event_type,
        timestamp=timestamp,
        tech_info=tech_info,
        critical=is_critical(event_type),
    )
    # An insert in a savepoint rather than bulk_create(ignore_conflicts=True): the webhook must know whether the
    # row is new, and ON CONFLICT DO NOTHING does not say.
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:
        if not SecurityEvent.objects.filter(
            source=SecurityEventSource.STATION, station_id=station_id, type=event_type, timestamp=timestamp
        ).exists():
            raise
        return None
    webhooks.emit(WEBHOOK_EVENT, lambda: _webhook_data(event))
    return event


@transaction.atomic
def handshake_refusals_record(*, counts: list[RefusalCount]) -> None:
    """Add counted refused handshakes to their aggregated rows (one per identity, address, type and window)."""
    missing = {c.identity for c in counts if c.station_id is None}
    stations = dict(ChargingStation.objects.filter(identity__in=missing).values_list("identity", "pk"))
    for c in counts:
        rows = SecurityEvent.objects.filter(
            source=SecurityEventSource.CSMS,
            identity=c.identity,
            remote_addr=c.address,
            type=c.type,
            timestamp=c.window_start,
        )
        if rows.update(count=F("count") + c.count, last_at=Greatest("last_at", c.last_at)):
            continue
        event = SecurityEvent(
            station_id=c.station_id or stations.get(c.identity),
            identity=c.identity,
            source=SecurityEventSource.CSMS,
            type=c.type,
            timestamp=c.window_start,
            tech_info=c.reason[:255],
            critical=is_critical(c.type),
            count=c.count,
            remote_addr=c.address,
            last_at=c.last_at,
        )
        try:
            with transaction.atomic():
                event.save()
        except IntegrityError:  # another process created it meanwhile
            rows.update(count=F("count") + c.count, last_at=Greatest("last_at", c.last_at))
            continue
        webhooks.emit(WEBHOOK_EVENT, lambda event=event: _webhook_data(event))  # type: ignore[misc]


def security_event_acknowledge(*, event_id: int, user: Any) -> bool:
    """Mark a critical event seen (it leaves the alerts); False when it was acknowledged already or is gone."""
    return bool(
        SecurityEvent.objects.filter(pk=event_id, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(), acknowledged_by=user if getattr(user, "pk", None) else None
        )
    )
