"""Station-reported data, read-only in the admin: it changes through the station (reports, Get/SetVariables)."""

from __future__ import annotations

from django.contrib import admin

from csms.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import DeviceVariable, ReportJob, StationDeviceState, VariableAttribute, VariableMonitor


def _shown_value(obj: VariableAttribute) -> str:
    return "(write-only)" if obj.is_write_only else (obj.value if obj.value is not None else "—")


class VariableAttributeInline(ReadOnlyInline, admin.TabularInline):
    model = VariableAttribute
    fields = ("type", "shown_value", "mutability", "persistent", "constant", "last_action", "last_status")
    readonly_fields = fields

    @admin.display(description="value")
    def shown_value(self, obj: VariableAttribute) -> str:
        return _shown_value(obj)


@admin.register(DeviceVariable)
class DeviceVariableAdmin(ReadOnlyAdmin):
    list_display = (
        "station",
        "component_label",
        "variable_label",
        "data_type",
        "unit",
        "supports_monitoring",
        "gone_at",
        "updated_at",
    )
    list_filter = ("supports_monitoring", "data_type")
    search_fields = ("station__identity", "component_name", "name")
    list_select_related = ("station",)
    inlines = [VariableAttributeInline]
    exclude = ("last_report", "last_replacing_report")


@admin.register(VariableAttribute)
class VariableAttributeAdmin(ReadOnlyAdmin):
    list_display = ("variable", "type", "shown_value", "mutability", "last_status", "updated_at")
    list_select_related = ("variable",)
    exclude = ("value",)  # shown through shown_value: a WriteOnly one is never displayed
    readonly_fields = ("shown_value",)

    @admin.display(description="value")
    def shown_value(self, obj: VariableAttribute) -> str:
        return _shown_value(obj)


@admin.register(ReportJob)
class ReportJobAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "station",
        "request_id",
        "kind",
        "state",
        "station_status",
        "parts_received",
        "variables_received",
        "created_at",
        "finished_at",
    )
    list_filter = ("state", "kind")
    search_fields = ("station__identity",)
    list_select_related = ("station",)


@admin.register(StationDeviceState)
class StationDeviceStateAdmin(ReadOnlyAdmin):
    list_display = ("station", "next_request_id", "reboot_required_at", "monitoring_base", "monitoring_level")
    list_select_related = ("station",)


@admin.register(VariableMonitor)
class VariableMonitorAdmin(ReadOnlyAdmin):
    list_display = (
        "station",
        "monitor_id",
        "variable",
        "type",
        "value",
        "severity",
        "transaction",
        "source",
        "gone_at",
    )
    list_filter = ("type", "source", "severity")
    search_fields = ("station__identity", "variable__component_name", "variable__name")
    list_select_related = ("station", "variable")
    exclude = ("last_report",)
