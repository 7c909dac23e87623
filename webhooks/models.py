"""Webhook subscriptions (who wants which domain events) and the delivery log (one row per event and receiver)."""

from __future__ import annotations

from django.db import models


class WebhookEvent(models.TextChoices):
    TRANSACTION_STARTED = "transaction.started"
    TRANSACTION_UPDATED = "transaction.updated"
    TRANSACTION_ENDED = "transaction.ended"
    STATION_CONNECTED = "station.connected"
    STATION_DISCONNECTED = "station.disconnected"
    STATION_STATUS_CHANGED = "station.status_changed"
    COMMAND_FINISHED = "command.finished"
    SECURITY_EVENT = "security.event"
    STATION_EVENT_ALERT = "station.event_alert"


class WebhookSubscription(models.Model):
    url = models.URLField(max_length=500, help_text="Receiver; gets a signed POST per event.")
    secret = models.CharField(max_length=128, help_text="HMAC-SHA256 key of the X-CSMS-Signature header.")
    events = models.JSONField(default=list, help_text="Event names this receiver wants.")
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.events)})"


class DeliveryState(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after CSMS_WEBHOOK_MAX_ATTEMPTS


class WebhookDelivery(models.Model):
    """One event for one receiver: written in the same DB transaction as the data it describes (outbox)."""

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["subscription", "-created_at"]),
            models.Index(fields=["next_attempt_at"], name="webhook_due", condition=models.Q(state="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.subscription_id} ({self.state})"
