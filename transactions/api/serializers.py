"""API representations of transactions, their events and meter values, id tokens and reservations (snake_case,
Wh, UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args

from django.utils import timezone
from rest_framework import serializers

from stations.commands.helpers import ConnectorEnumType
from stations.models import ChargingStation, Command
from transactions import id_token_import
from transactions.cost import money_text
from transactions.models import (
    AuthorizationStatus,
    ChargingTransaction,
    IdToken,
    IdTokenType,
    Reservation,
    TransactionEventRecord,
)


def _number(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=24, decimal_places=6, coerce_to_string=False, read_only=True, allow_null=True, **kwargs
    )


class TransactionSerializer(serializers.ModelSerializer):
    station = serializers.CharField(source="station.identity", read_only=True)
    energy_wh = _number(help_text="Energy.Active.Import.Register: last minus first reading, Wh.")
    meter_start_wh = _number()
    meter_stop_wh = _number()
    peak_power_w = _number()
    last_power_w = _number()
    id_token_type = serializers.CharField(read_only=True, help_text='IdTokenEnumType; "" = no token reported')
    charging_state = serializers.CharField(read_only=True, help_text='ChargingStateEnumType; "" = not reported')
    station_offline_since = serializers.SerializerMethodField(
        help_text="For an active session: when its station went offline, once longer than "
        "CSMS_SESSION_OFFLINE_NOTICE_S (its events may still arrive); else null."
    )
    cost = serializers.SerializerMethodField(
        help_text="Decimal string with taxes, in the currency's minor unit; final once ended, running (as of "
        "cost_at) while active; null without a tariff."
    )
    currency = serializers.SerializerMethodField(help_text="ISO 4217 of the session's tariff; null without one.")

    class Meta:
        model = ChargingTransaction
        fields = [
            "id",
            "station",
            "transaction_id",
            "evse_id",
            "connector_id",
            "id_token",
            "id_token_type",
            "id_token_status",
            "started_at",
            "ended_at",
            "is_active",
            "station_offline_since",
            "charging_state",
            "stopped_reason",
            "remote_start_id",
            "energy_wh",
            "meter_start_wh",
            "meter_stop_wh",
            "peak_power_w",
            "last_power_w",
            "time_spent_charging_s",
            "had_offline_events",
            "event_count",
            "seq_no_gaps",
            "status_checked_at",
            "ongoing_indicator",
            "messages_in_queue",
            "cost",
            "currency",
            "cost_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_station_offline_since(self, obj: ChargingTransaction) -> datetime | None:
        return obj.station_offline_since()

    def get_cost(self, obj: ChargingTransaction) -> str | None:
        return money_text(obj.cost, obj.currency)

    def get_currency(self, obj: ChargingTransaction) -> str | None:
        return obj.currency if obj.tariff_version_id is not None and obj.currency else None


class TransactionEventSerializer(serializers.ModelSerializer):
    charging_state = serializers.CharField(read_only=True, help_text='ChargingStateEnumType; "" = not reported')

    class Meta:
        model = TransactionEventRecord
        fields = [
            "seq_no",
            "event_type",
            "timestamp",
            "trigger_reason",
            "charging_state",
            "evse_id",
            "connector_id",
            "id_token",
            "id_token_type",
            "id_token_status",
            "offline",
            "stopped_reason",
            "remote_start_id",
            "reservation_id",
            "number_of_phases_used",
            "cable_max_current",
            "time_spent_charging_s",
            "received_at",
        ]
        read_only_fields = fields


class MeterValueSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField(read_only=True)
    measurand = serializers.CharField(read_only=True)
    phase = serializers.CharField(read_only=True, help_text='"" = no phase (overall)')
    location = serializers.CharField(read_only=True)
    # The OCPP reading context. Declared fields leave the class (SerializerMetaclass), so Field.context, which
    # the stubs see overridden here, stays intact.
    context = serializers.CharField(read_only=True)  # type: ignore[assignment]
    value = serializers.DecimalField(max_digits=24, decimal_places=6, coerce_to_string=False, read_only=True)
    unit = serializers.CharField(read_only=True, help_text="Base unit (Wh, W, ...)")


class CdrQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="Sessions that ended at or after this instant (ISO 8601).")
    end = serializers.DateTimeField(help_text="... and before this one.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": ["must be after start"]})
        return attrs


class IdTokenSerializer(serializers.ModelSerializer):
    group_id_token = serializers.CharField(
        source="group_id_token.id_token",
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=36,
        default=None,
        help_text='The group token\'s id_token (must exist); null or "" for none.',
    )
    evse_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1), required=False, max_length=100
    )
    type = serializers.ChoiceField(choices=IdTokenType.choices, default=IdTokenType.ISO14443)
    status = serializers.ChoiceField(choices=AuthorizationStatus.choices, default=AuthorizationStatus.ACCEPTED)

    class Meta:
        model = IdToken
        fields = [
            "id",
            "id_token",
            "type",
            "status",
            "expires_at",
            "group_id_token",
            "language",
            "evse_ids",
            "description",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_representation(self, instance: IdToken) -> dict[str, Any]:
        data = super().to_representation(instance)
        group = instance.group_id_token  # None without a query when unset
        data["group_id_token"] = group.id_token if group is not None else None
        return data

    def validate_id_token(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("must not be blank")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        group_name = (attrs.pop("group_id_token", None) or {}).get("id_token")
        if "group_id_token" in self.initial_data or self.instance is None:
            group = None
            if group_name:
                try:
                    group = id_token_import.group_resolve(group_name)
                except id_token_import.GroupNotFound as exc:
                    raise serializers.ValidationError({"group_id_token": [str(exc)]}) from exc
                if self.instance is not None and group.pk == self.instance.pk:
                    raise serializers.ValidationError({"group_id_token": ["a token cannot be its own group"]})
            attrs["group_id_token"] = group
        value = attrs.get("id_token", self.instance.id_token if self.instance else "")
        token_type = attrs.get("type", self.instance.type if self.instance else IdTokenType.ISO14443)
        if id_token_import.id_token_conflict(
            id_token=value, token_type=token_type, exclude_pk=self.instance.pk if self.instance else None
        ):
            raise serializers.ValidationError({"id_token": [f"{value!r} ({token_type}) exists already"]})
        return attrs


class IdTokenImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, UTF-8, header id_token,type,status,expires_at,group_id_token")


class IdTokenImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()


# --- Reservations ---------------------------------------------------------------------------------------------

CONNECTOR_TYPES = get_args(ConnectorEnumType)  # from the official schema, via the generated helpers


class ReservationSerializer(serializers.ModelSerializer):
    station = serializers.CharField(source="station.identity", read_only=True)
    transaction: serializers.PrimaryKeyRelatedField[ChargingTransaction] = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The session that consumed it."
    )
    command: serializers.PrimaryKeyRelatedField[Command] = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The ReserveNow command."
    )
    cancel_command: serializers.PrimaryKeyRelatedField[Command] = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The CancelReservation command."
    )

    class Meta:
        model = Reservation
        fields = [
            "id", "reservation_id", "station", "evse_id", "connector_type", "id_token", "id_token_type",
            "group_id_token", "group_id_token_type", "expires_at", "state", "reason", "transaction", "command",
            "cancel_command", "created_at", "updated_at", "ended_at",
        ]  # fmt: skip
        read_only_fields = fields


class ReservationCreateSerializer(serializers.Serializer):
    station = serializers.SlugRelatedField(slug_field="identity", queryset=ChargingStation.objects.all())
    evse_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    connector_type = serializers.ChoiceField(choices=CONNECTOR_TYPES, required=False, allow_blank=True)
    id_token = serializers.CharField(max_length=36)
    id_token_type = serializers.ChoiceField(choices=IdTokenType.choices, default=IdTokenType.CENTRAL)
    group_id_token = serializers.CharField(max_length=36, required=False, allow_blank=True)
    group_id_token_type = serializers.ChoiceField(choices=IdTokenType.choices, required=False, allow_blank=True)
    expires_at = serializers.DateTimeField()

    def validate_expires_at(self, value: Any) -> Any:
        if value <= timezone.now():
            raise serializers.ValidationError("must be in the future")
        return value
