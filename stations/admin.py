from __future__ import annotations

from django import forms
from django.contrib import admin

from .models import (
    BootRecord,
    ChargingStation,
    Connection,
    Connector,
    Evse,
    MessageLog,
    ProtocolViolation,
    StationEvent,
    StatusNotificationRecord,
)


class ChargingStationForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Set a new station password (stored hashed). Leave empty to keep the current one.",
    )
    clear_password = forms.BooleanField(required=False, help_text="Remove the station's password.")

    class Meta:
        model = ChargingStation
        fields = ["identity", "description", "registration_status", "security_profile", "validation_mode"]

    def save(self, commit: bool = True) -> ChargingStation:
        station = super().save(commit=False)
        if self.cleaned_data.get("clear_password"):
            station.set_password(None)
        elif self.cleaned_data.get("password"):
            station.set_password(self.cleaned_data["password"])
        if commit:
            station.save()
        return station


class EvseInline(admin.TabularInline):
    model = Evse
    extra = 0


@admin.register(ChargingStation)
class ChargingStationAdmin(admin.ModelAdmin):
    form = ChargingStationForm
    list_display = [
        "identity",
        "is_online",
        "registration_status",
        "boot_status",
        "vendor_name",
        "model",
        "firmware_version",
        "last_seen_at",
    ]
    list_filter = ["is_online", "registration_status", "boot_status", "security_profile", "validation_mode", "model"]
    search_fields = ["identity", "serial_number", "vendor_name", "model", "description"]
    readonly_fields = [
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
        "current_connection",
        "created_at",
    ]
    inlines = [EvseInline]


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = ["evse", "connector_id", "status", "status_at"]
    list_filter = ["status"]
    list_select_related = ["evse__station"]
    search_fields = ["evse__station__identity"]


@admin.register(StatusNotificationRecord)
class StatusNotificationRecordAdmin(admin.ModelAdmin):
    list_display = ["connector", "status", "timestamp", "received_at"]
    list_filter = ["status"]
    list_select_related = ["connector__evse__station"]


@admin.register(BootRecord)
class BootRecordAdmin(admin.ModelAdmin):
    list_display = ["station", "reason", "vendor_name", "model", "firmware_version", "status", "created_at"]
    list_filter = ["status", "reason"]
    list_select_related = ["station"]
    search_fields = ["station__identity", "serial_number"]


@admin.register(StationEvent)
class StationEventAdmin(admin.ModelAdmin):
    list_display = ["station", "timestamp", "trigger", "event_notification_type", "actual_value", "cleared"]
    list_filter = ["trigger", "event_notification_type"]
    list_select_related = ["station"]
    search_fields = ["station__identity", "tech_code"]


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["identity", "outcome", "reason", "remote_addr", "connected_at", "disconnected_at", "close_code"]
    list_filter = ["outcome"]
    search_fields = ["identity", "remote_addr"]


@admin.register(MessageLog)
class MessageLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "station", "direction", "message_type", "action", "message_id", "error_code"]
    list_filter = ["direction", "message_type", "error_code", "action"]
    list_select_related = ["station"]
    search_fields = ["station__identity", "message_id", "action"]
    date_hierarchy = "created_at"


@admin.register(ProtocolViolation)
class ProtocolViolationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "station", "action", "message_id", "tolerated"]
    list_filter = ["tolerated", "action"]
    list_select_related = ["station"]
