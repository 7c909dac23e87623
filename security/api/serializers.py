"""Security events and NotifyEvent events of a station, read-only."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework import serializers

from security.models import PasswordRotation, SecurityEvent
from stations.models import StationEvent


class SecurityEventSerializer(serializers.ModelSerializer):
    station = serializers.CharField(source="identity", read_only=True, help_text="station identity")
    acknowledged_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = SecurityEvent
        fields = [
            "id",
            "station",
            "source",
            "type",
            "timestamp",
            "tech_info",
            "critical",
            "count",
            "remote_addr",
            "last_at",
            "received_at",
            "acknowledged_at",
            "acknowledged_by",
        ]
        read_only_fields = fields


class StationEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = StationEvent
        fields = [
            "id",
            "generated_at",
            "seq_no",
            "event_id",
            "timestamp",
            "trigger",
            "cause",
            "actual_value",
            "tech_code",
            "tech_info",
            "cleared",
            "transaction_id",
            "variable_monitoring_id",
            "event_notification_type",
            "component",
            "variable",
            "received_at",
            "severity",
            "alert",
            "acknowledged_at",
        ]
        read_only_fields = fields


class PasswordRotationSerializer(serializers.ModelSerializer):
    """A password rotation: its state and the SetVariables command that carried it (the password is never shown)."""

    station = serializers.CharField(source="station.identity", read_only=True)

    class Meta:
        model = PasswordRotation
        fields = ["id", "station", "state", "reason", "command", "created_at", "finished_at"]
        read_only_fields = fields
