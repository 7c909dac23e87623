"""Security events: what stations report (SecurityEventNotification) and what the CSMS itself records about them
(refused handshakes, aggregated per identity, address and window)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from stations.models import ChargingStation


class SecurityEventSource(models.TextChoices):
    STATION = "station", "reported by the station"
    CSMS = "csms", "recorded by the CSMS"


class CsmsSecurityEventType(models.TextChoices):
    """Types of the events the CSMS records itself (the station-reported ones come from the OCPP security events list,
    any string up to 50 characters)."""

    # OCPP SPEC-SILENT: the security events list names what a station reports; these name the CSMS's own records.
    HANDSHAKE_REFUSED = "CsmsRefusedHandshake", "handshake refused: wrong or missing password"
    HANDSHAKE_THROTTLED = "CsmsThrottledHandshake", "handshake refused unchecked: too many failures"
    HANDSHAKE_INSECURE = "CsmsInsecureHandshake", "handshake refused: connection weaker than the security profile"


class SecurityEvent(models.Model):
    station = models.ForeignKey(
        ChargingStation, null=True, blank=True, on_delete=models.CASCADE, related_name="security_events"
    )
    identity = models.CharField(max_length=48, help_text="The station's identity, as presented.")
    source = models.CharField(max_length=10, choices=SecurityEventSource.choices, default=SecurityEventSource.STATION)
    type = models.CharField(max_length=50, help_text="From the OCPP security events list (or a CSMS type).")
    timestamp = models.DateTimeField(help_text="As reported by the station; for CSMS records the window's start.")
    tech_info = models.CharField(max_length=255, blank=True)
    critical = models.BooleanField(default=False, help_text="Its type is in CSMS_CRITICAL_SECURITY_EVENTS.")
    # CSMS records aggregate attempts: one row per (identity, address, type, window) with a count.
    count = models.PositiveIntegerField(default=1)
    remote_addr = models.CharField(max_length=64, blank=True)
    last_at = models.DateTimeField(null=True, blank=True, help_text="Latest attempt counted (CSMS records).")
    received_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["station", "-timestamp"]),
            models.Index(
                fields=["-timestamp"],
                name="security_event_open_alert",
                condition=Q(critical=True, acknowledged_at__isnull=True),
            ),
        ]
        constraints = [
            # A station retrying the same notification (with a new message id) adds no second row.
            models.UniqueConstraint(
                fields=["station", "type", "timestamp"],
                condition=Q(source="station"),
                name="uniq_station_security_event",
            ),
            models.UniqueConstraint(
                fields=["identity", "remote_addr", "type", "timestamp"],
                condition=Q(source="csms"),
                name="uniq_csms_security_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.identity} {self.type} at {self.timestamp:%Y-%m-%d %H:%M:%S}"


class PasswordRotationState(models.TextChoices):
    SENT = "sent", "sent: waiting for the station's answer"
    ACCEPTED = "accepted", "accepted: the new password is the station's"
    COMPLETED = "completed", "completed: the station connected with the new password"
    REJECTED = "rejected", "rejected: the old password stays"
    FAILED = "failed", "failed: no answer (the old password stays; the new one is accepted if the station uses it)"


class PasswordRotation(models.Model):
    """A station password rotation (security/rotation.py): the new password, hashed only, sent with SetVariables
    SecurityCtrlr.BasicAuthPassword; it becomes the station's password when the station accepts it."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="password_rotations")
    command = models.OneToOneField(
        "stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="password_rotation"
    )
    password_hash = models.CharField(max_length=255, editable=False)
    state = models.CharField(max_length=10, choices=PasswordRotationState.choices, default=PasswordRotationState.SENT)
    reason = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["station", "state"])]

    def __str__(self) -> str:
        return f"{self.station_id} password rotation {self.state}"
