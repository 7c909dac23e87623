"""API representations of commands and bulk commands (snake_case; the OCPP payloads stay as sent/received)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from stations import services
from stations.models import BulkCommand, Command


class CommandErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    description = serializers.CharField()
    details = serializers.JSONField(allow_null=True)


def command_error(obj: Command) -> dict[str, Any] | None:
    """``{code, description, details}`` of a failed/timed-out/offline command, else None."""
    if not (obj.error_code or obj.error_description):
        return None
    return {"code": obj.error_code, "description": obj.error_description, "details": obj.error_details}


class CommandSerializer(serializers.ModelSerializer):
    station = serializers.CharField(source="station.identity", read_only=True)
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None)
    error = serializers.SerializerMethodField()

    class Meta:
        model = Command
        fields = [
            "id",
            "station",
            "action",
            "state",
            "message_id",
            "request",
            "response",
            "error",
            "created_by",
            "bulk",
            "created_at",
            "sent_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CommandErrorSerializer(allow_null=True))
    def get_error(self, obj: Command) -> dict[str, Any] | None:
        return command_error(obj)


class CommandCreateSerializer(serializers.Serializer):
    action = serializers.CharField(max_length=50)
    payload = serializers.JSONField(default=dict)
    wait = serializers.FloatField(
        default=0,
        min_value=0,
        help_text="Seconds to wait for the station's answer (0: answer 202 at once).",
    )

    def validate_wait(self, value: float) -> float:
        if value > settings.CSMS_COMMAND_MAX_WAIT_S:
            raise serializers.ValidationError(f"at most {settings.CSMS_COMMAND_MAX_WAIT_S} seconds")
        return value


class BulkCommandCreateSerializer(serializers.Serializer):
    action = serializers.CharField(max_length=50)
    payload = serializers.JSONField(default=dict)
    identities = serializers.ListField(child=serializers.CharField(max_length=48), required=False, max_length=10000)
    online = serializers.BooleanField(required=False, allow_null=True, default=None)
    model = serializers.CharField(required=False, allow_blank=True, default="", max_length=20)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # OCPP SPEC-SILENT: a bulk command must name its stations; "everything" has to be asked for explicitly
        # (online=false/true or a model), so an empty body never reaches the whole fleet.
        if attrs.get("identities") is None and attrs.get("online") is None and not attrs.get("model"):
            raise serializers.ValidationError("give identities, or a filter (online, model)")
        return attrs


class BulkResultSerializer(serializers.ModelSerializer):
    command = serializers.IntegerField(source="id", read_only=True)
    station = serializers.CharField(source="station.identity", read_only=True)
    error = serializers.SerializerMethodField()

    class Meta:
        model = Command
        fields = ["command", "station", "state", "response", "error"]
        read_only_fields = fields

    @extend_schema_field(CommandErrorSerializer(allow_null=True))
    def get_error(self, obj: Command) -> dict[str, Any] | None:
        return command_error(obj)


class BulkCommandSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None)
    summary = serializers.SerializerMethodField()
    results = serializers.SerializerMethodField()

    class Meta:
        model = BulkCommand
        fields = ["id", "action", "request", "target", "created_by", "created_at", "summary", "results"]
        read_only_fields = fields

    def get_summary(self, obj: BulkCommand) -> dict[str, Any]:
        return services.bulk_summary(obj)

    def get_results(self, obj: BulkCommand) -> list[dict[str, Any]]:
        commands = obj.commands.select_related("station").order_by("station__identity")
        return BulkResultSerializer(commands, many=True).data
