"""Read-side queries of security events and the NotifyEvent feed (station pages, alerts, API)."""

from __future__ import annotations

from django.db.models import QuerySet

from stations.models import ChargingStation, StationEvent

from .models import CertificateRequest, InstalledCertificate, SecurityEvent


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


def installed_certificates(*, station: ChargingStation) -> QuerySet[InstalledCertificate]:
    """What the station holds (reported or installed by the CSMS), chains' children after their entry."""
    return InstalledCertificate.objects.filter(station=station).order_by("certificate_type", "parent_id", "id")


def certificate_requests(*, station: ChargingStation) -> QuerySet[CertificateRequest]:
    """The station's CSRs and the certificates issued for them, newest first."""
    return (
        CertificateRequest.objects.filter(station=station).select_related("revoked_by").order_by("-created_at", "-id")
    )
