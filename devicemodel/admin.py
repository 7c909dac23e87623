"""Station-reported data, read-only in the admin: it changes through the station (reports, Get/SetVariables)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import DeviceVariable, ReportJob, StationDeviceState, VariableAttribute


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VariableAttributeInline(admin.TabularInline):
    model = VariableAttribute
    extra = 0
    fields = ("type", "shown_value", "mutability", "persistent", "constant", "last_action", "last_status")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="value")
    def shown_value(self, obj: VariableAttribute) -> str:
        return "(write-only)" if obj.is_write_only else (obj.value if obj.value is not None else "—")


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
    list_display = ("station", "next_request_id", "reboot_required_at")
    list_select_related = ("station",)
