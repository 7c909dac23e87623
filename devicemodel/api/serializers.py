"""API representations of the device model and report jobs (snake_case; WriteOnly values are always null)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devicemodel.models import (
    BASE_REPORT_KINDS,
    DeviceVariable,
    ReportJob,
    ReportKind,
    VariableAttribute,
    VariableMonitor,
)


class AttributeSerializer(serializers.ModelSerializer):
    # Not get_value: that name is Serializer.get_value, which DRF calls to read input.
    value = serializers.SerializerMethodField(
        method_name="value_shown", help_text="null for WriteOnly attributes (never stored)"
    )

    class Meta:
        model = VariableAttribute
        fields = [
            "type",
            "value",
            "mutability",
            "persistent",
            "constant",
            "last_action",
            "last_status",
            "last_status_info",
            "last_status_at",
            "updated_at",
        ]
        read_only_fields = fields

    def value_shown(self, obj: VariableAttribute) -> str | None:
        return None if obj.is_write_only else obj.value


class ComponentSerializer(serializers.Serializer):
    name = serializers.CharField(source="component_name")
    instance = serializers.CharField(source="component_instance")
    evse_id = serializers.IntegerField(source="evse", allow_null=True)
    connector_id = serializers.IntegerField(source="connector", allow_null=True)


class VariableSerializer(serializers.Serializer):
    name = serializers.CharField()
    instance = serializers.CharField()


class CharacteristicsSerializer(serializers.Serializer):
    data_type = serializers.CharField()
    unit = serializers.CharField()
    min_limit = serializers.FloatField(allow_null=True)
    max_limit = serializers.FloatField(allow_null=True)
    values_list = serializers.CharField()
    supports_monitoring = serializers.BooleanField(allow_null=True)


class DeviceVariableSerializer(serializers.ModelSerializer):
    component = serializers.SerializerMethodField()
    variable = serializers.SerializerMethodField()
    characteristics = serializers.SerializerMethodField(help_text="null until a report gave them")
    attributes = AttributeSerializer(many=True, read_only=True)

    class Meta:
        model = DeviceVariable
        fields = ["id", "component", "variable", "characteristics", "attributes", "gone_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(ComponentSerializer)
    def get_component(self, obj: DeviceVariable) -> dict[str, Any]:
        return ComponentSerializer(obj).data

    @extend_schema_field(VariableSerializer)
    def get_variable(self, obj: DeviceVariable) -> dict[str, Any]:
        return VariableSerializer(obj).data

    @extend_schema_field(CharacteristicsSerializer(allow_null=True))
    def get_characteristics(self, obj: DeviceVariable) -> dict[str, Any] | None:
        return CharacteristicsSerializer(obj).data if obj.data_type else None


class ReportJobSerializer(serializers.ModelSerializer):
    station = serializers.CharField(source="station.identity", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.get_username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = ReportJob
        fields = [
            "id",
            "station",
            "request_id",
            "kind",
            "component_criteria",
            "component_variable",
            "state",
            "station_status",
            "status_info",
            "error",
            "parts_received",
            "variables_received",
            "command",
            "requested_by",
            "created_at",
            "updated_at",
            "finished_at",
        ]
        read_only_fields = fields


class ReportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=[
            k for k in ReportKind.values if k in BASE_REPORT_KINDS or k in (ReportKind.CRITERIA, ReportKind.MONITORING)
        ],
        help_text="FullInventory, ConfigurationInventory, SummaryInventory (GetBaseReport), Criteria (GetReport) or "
        "Monitoring (GetMonitoringReport)",
    )
    monitoring_criteria = serializers.ListField(
        child=serializers.ChoiceField(choices=["ThresholdMonitoring", "DeltaMonitoring", "PeriodicMonitoring"]),
        required=False,
        max_length=3,
        help_text="only for Monitoring",
    )
    component_criteria = serializers.ListField(
        child=serializers.ChoiceField(choices=["Active", "Available", "Enabled", "Problem"]),
        required=False,
        max_length=4,
    )
    component_variable = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        max_length=1000,
        help_text="OCPP ComponentVariableType objects (camelCase inside)",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == ReportKind.CRITERIA and not (
            attrs.get("component_criteria") or attrs.get("component_variable")
        ):
            raise serializers.ValidationError(
                {"component_criteria": ["Criteria needs component_criteria or component_variable"]}
            )
        if attrs["kind"] == ReportKind.MONITORING:
            if attrs.get("component_criteria"):
                raise serializers.ValidationError({"component_criteria": ["Monitoring takes monitoring_criteria"]})
            return attrs
        if attrs.get("monitoring_criteria"):
            raise serializers.ValidationError({"monitoring_criteria": ["for kind Monitoring only"]})
        if attrs["kind"] != ReportKind.CRITERIA and (
            attrs.get("component_criteria") or attrs.get("component_variable")
        ):
            raise serializers.ValidationError({"kind": ["criteria are for kind Criteria (GetReport) only"]})
        return attrs


class MonitorSerializer(serializers.ModelSerializer):
    component = ComponentSerializer(source="variable", read_only=True)
    variable = VariableSerializer(read_only=True)

    class Meta:
        model = VariableMonitor
        fields = [
            "monitor_id",
            "component",
            "variable",
            "type",
            "value",
            "severity",
            "transaction",
            "source",
            "gone_at",
            "updated_at",
        ]
        read_only_fields = fields
