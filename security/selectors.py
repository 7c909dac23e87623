"""Read-side queries of security events and the NotifyEvent feed (station pages, alerts, API)."""

from __future__ import annotations

from django.db.models import QuerySet

from stations.models import StationEvent

from .models import SecurityEvent


def security_events(*, identity: str) -> QuerySet[SecurityEvent]:
    """A registered station's security events (reported and recorded), newest first."""
    qs = SecurityEvent.objects.filter(station__identity=identity).select_related("acknowledged_by")
    return qs.order_by("-timestamp", "-id")


def open_alerts(*, identity: str | None = None) -> QuerySet[SecurityEvent]:
    """Critical events nobody acknowledged yet, newest first (one station's, or all)."""
    qs = SecurityEvent.objects.filter(critical=True, acknowledged_at__isnull=True)
    if identity is not None:
        qs = qs.filter(station__identity=identity)
    return qs.order_by("-timestamp", "-id")


def station_events(*, identity: str) -> QuerySet[StationEvent]:
    """The station's NotifyEvent events (stored by stations.services.station_events_record), newest first."""
    return StationEvent.objects.filter(station__identity=identity).order_by("-timestamp", "-id")


def recent_events() -> QuerySet[SecurityEvent]:
    """Every station's security events, newest first (the security page)."""
    return SecurityEvent.objects.order_by("-timestamp", "-id")
