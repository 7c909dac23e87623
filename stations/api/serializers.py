"""API representations of commands and bulk commands (snake_case; the OCPP payloads stay as sent/received)."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from security.hashers import password_policy_check
from stations import commands, services
from stations.models import BulkCommand, ChargingStation, Command, Connector, Evse, SecurityProfile


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
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None, allow_null=True)
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
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None, allow_null=True)
    summary = serializers.SerializerMethodField()
    results = serializers.SerializerMethodField()

    class Meta:
        model = BulkCommand
        fields = ["id", "action", "request", "target", "created_by", "created_at", "summary", "results"]
        read_only_fields = fields

    def get_summary(self, obj: BulkCommand) -> dict[str, Any]:
        return commands.bulk_summary(obj)

    def get_results(self, obj: BulkCommand) -> list[dict[str, Any]]:
        commands = obj.commands.select_related("station").order_by("station__identity")
        # many=True builds a ListSerializer (its data is a list); the stubs type the call as the child serializer.
        return cast("list[dict[str, Any]]", BulkResultSerializer(commands, many=True).data)


# --- Stations -------------------------------------------------------------------------------------------------


class ConnectorSerializer(serializers.ModelSerializer):
    status = serializers.CharField(
        read_only=True,
        help_text='Last reported status (Available, Occupied, Reserved, Unavailable, Faulted; "" = none)',
    )

    class Meta:
        model = Connector
        fields = ["connector_id", "status", "status_at"]
        read_only_fields = fields


class EvseSerializer(serializers.ModelSerializer):
    connectors = ConnectorSerializer(many=True, read_only=True)

    class Meta:
        model = Evse
        fields = ["evse_id", "connectors"]
        read_only_fields = fields


_STATION_READ_ONLY = [
    "boot_status",
    "vendor_name",
    "model",
    "serial_number",
    "firmware_version",
    "modem_iccid",
    "modem_imsi",
    "last_boot_at",
    "is_online",
    "last_seen_at",
    "has_password",
    "created_at",
    "evses",
]


class StationSerializer(serializers.ModelSerializer):
    """A station with its boot data, connection state and EVSEs/connectors (last status)."""

    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=128,
        style={"input_type": "password"},
        help_text='Write-only, stored hashed; "" removes it. Security profiles 1 and 2 need one.',
    )
    has_password = serializers.SerializerMethodField()
    boot_status = serializers.CharField(
        read_only=True, help_text='Answer given at the last BootNotification (Accepted/Pending/Rejected; "" = none yet)'
    )
    evses = EvseSerializer(many=True, read_only=True)

    class Meta:
        model = ChargingStation
        fields = [
            "identity",
            "description",
            "registration_status",
            "security_profile",
            "validation_mode",
            "password",
            *_STATION_READ_ONLY,
        ]
        read_only_fields = _STATION_READ_ONLY

    def get_has_password(self, obj: ChargingStation) -> bool:
        return bool(obj.password_hash)

    def validate_identity(self, value: str) -> str:
        if ":" in value or "/" in value or not value.strip() or value != value.strip():
            raise serializers.ValidationError("1 to 48 characters, no ':' or '/', no surrounding spaces")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        profile = attrs.get("security_profile", self.instance.security_profile if self.instance else 0)
        if "password" in attrs:
            has_password = bool(attrs["password"])
        else:
            has_password = bool(self.instance and self.instance.password_hash)
        if profile in (SecurityProfile.BASIC, SecurityProfile.BASIC_TLS) and not has_password:
            raise serializers.ValidationError({"password": [f"security profile {profile} needs a password"]})
        if attrs.get("password"):
            try:
                password_policy_check(attrs["password"])
            except ValueError as exc:
                raise serializers.ValidationError({"password": [str(exc)]}) from exc
        return attrs

    def create(self, validated_data: dict[str, Any]) -> ChargingStation:
        password = validated_data.pop("password", None)
        try:
            with transaction.atomic():
                station = services.station_update(station=ChargingStation(), password=password, **validated_data)
        except IntegrityError as exc:  # registered concurrently
            raise serializers.ValidationError({"identity": ["a station with this identity exists already"]}) from exc
        return ChargingStation.objects.prefetch_related("evses__connectors").get(pk=station.pk)

    def update(self, instance: ChargingStation, validated_data: dict[str, Any]) -> ChargingStation:
        validated_data.pop("identity", None)  # the identity is the station's name on the wire: never renamed
        password = validated_data.pop("password", None)
        return services.station_update(station=instance, password=password, **validated_data)


class StationUpdateSerializer(StationSerializer):
    class Meta(StationSerializer.Meta):
        read_only_fields = ["identity", *_STATION_READ_ONLY]
