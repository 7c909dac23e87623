from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers as admin_helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from csms.admin import ReadOnlyAdmin, ReadOnlyInline
from csms.ocpp.actions import CSMS_TO_CS
from security.hashers import password_policy_check

from . import commands
from .models import (
    BootRecord,
    BulkCommand,
    ChargingStation,
    Command,
    Connection,
    Connector,
    DisplayMessage,
    DisplayMessageReport,
    Evse,
    MessageLog,
    NetworkProfile,
    ProtocolViolation,
    ServerProcess,
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

    def clean_password(self) -> str:
        password: str = self.cleaned_data.get("password") or ""
        if password:
            try:
                password_policy_check(password)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return password

    def save(self, commit: bool = True) -> ChargingStation:
        station = super().save(commit=False)
        if self.cleaned_data.get("clear_password"):
            station.set_password(None)
        elif self.cleaned_data.get("password"):
            station.set_password(self.cleaned_data["password"])
        if commit:
            station.save()
        return station


class EvseInline(ReadOnlyInline, admin.TabularInline):
    model = Evse  # EVSEs (and their connectors) exist because the station reported them


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
        # What ChangeAvailability and Reset answers recorded: commands change these, not the admin.
        "intended_operational",
        "availability_scheduled",
        "availability_changed_at",
        "reset_state",
        "reset_requested_at",
        "reset_confirmed_at",
        "created_at",
    ]
    inlines = [EvseInline]
    actions = ["send_command"]

    def has_send_command_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("stations.add_command")

    @admin.action(description="Send an OCPP command to the selected stations", permissions=["send_command"])
    def send_command(self, request: HttpRequest, queryset: QuerySet[ChargingStation]) -> HttpResponse | None:
        form = SendCommandForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            bulk = commands.bulk_command_send(
                action=form.cleaned_data["ocpp_action"],
                payload=form.cleaned_data["payload"],
                stations=queryset.order_by("identity"),
                target={"identities": list(queryset.order_by("identity").values_list("identity", flat=True))},
                user=request.user,
            )
            self.message_user(request, f"{bulk.action} sent to {queryset.count()} station(s).", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:stations_bulkcommand_change", args=[bulk.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Send an OCPP command",
            "form": form,
            "stations": queryset,
            "action_checkbox_name": admin_helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/stations/send_command.html", context)


@admin.register(Connector)
class ConnectorAdmin(ReadOnlyAdmin):
    list_display = ["evse", "connector_id", "status", "status_at"]
    list_filter = ["status"]
    list_select_related = ["evse__station"]
    search_fields = ["evse__station__identity"]


@admin.register(StatusNotificationRecord)
class StatusNotificationRecordAdmin(ReadOnlyAdmin):
    list_display = ["connector", "status", "timestamp", "received_at"]
    list_filter = ["status"]
    list_select_related = ["connector__evse__station"]


@admin.register(BootRecord)
class BootRecordAdmin(ReadOnlyAdmin):
    list_display = ["station", "reason", "vendor_name", "model", "firmware_version", "status", "created_at"]
    list_filter = ["status", "reason"]
    list_select_related = ["station"]
    search_fields = ["station__identity", "serial_number"]


@admin.register(StationEvent)
class StationEventAdmin(ReadOnlyAdmin):
    list_display = ["station", "timestamp", "trigger", "event_notification_type", "actual_value", "cleared"]
    list_filter = ["trigger", "event_notification_type"]
    list_select_related = ["station"]
    search_fields = ["station__identity", "tech_code"]


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyAdmin):
    list_display = ["identity", "outcome", "reason", "remote_addr", "tls", "security_profile", "connected_at",
                    "disconnected_at", "close_code", "server_process_id"]  # fmt: skip
    list_filter = ["outcome", "tls", "security_profile"]
    search_fields = ["identity", "remote_addr"]


# The daphne processes' leases (stations/leases.py): which ran, which stopped, which died and what was cleaned up.
@admin.register(ServerProcess)
class ServerProcessAdmin(ReadOnlyAdmin):
    list_display = ["id", "hostname", "pid", "started_at", "renewed_at", "lease_until", "ended_at", "end", "cleaned_up"]
    list_filter = ["end"]
    search_fields = ["hostname"]


@admin.register(MessageLog)
class MessageLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "station", "direction", "message_type", "action", "message_id", "error_code"]
    list_filter = ["direction", "message_type", "error_code", "action"]
    list_select_related = ["station"]
    search_fields = ["station__identity", "message_id", "action"]
    date_hierarchy = "created_at"


@admin.register(ProtocolViolation)
class ProtocolViolationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "station", "action", "message_id", "tolerated"]
    list_filter = ["tolerated", "action"]
    list_select_related = ["station"]


class SendCommandForm(forms.Form):
    # Not "action": the admin changelist uses that POST field to pick the admin action.
    ocpp_action = forms.ChoiceField(label="Action", choices=[(a, a) for a in sorted(CSMS_TO_CS)])
    payload = forms.JSONField(
        required=False,  # {} (e.g. ClearCache) counts as "empty" for a required JSONField
        initial=dict,
        help_text='The request payload in OCPP camelCase JSON, e.g. {"type": "Immediate"} for Reset.',
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("payload") is None and "payload" not in self.errors:
            data["payload"] = {}
        if "ocpp_action" in data and "payload" in data:
            try:
                commands.command_validate(action=data["ocpp_action"], payload=data["payload"])
            except commands.CommandValidationError as exc:
                raise forms.ValidationError(
                    [exc.message] + [f"{v['path']}: {v['message']}" for v in exc.violations[1:]]
                ) from exc
        return data


@admin.register(Command)
class CommandAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "station", "action", "state", "error_code", "created_by", "bulk"]
    list_filter = ["state", "action", "error_code"]
    list_select_related = ["station", "created_by"]
    search_fields = ["station__identity", "action", "message_id"]
    date_hierarchy = "created_at"


class CommandInline(ReadOnlyInline, admin.TabularInline):
    model = Command
    fields = ("station", "state", "response", "error_code", "error_description", "finished_at")
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Command]:
        return super().get_queryset(request).select_related("station")  # one query, not one per row


@admin.register(BulkCommand)
class BulkCommandAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "action", "created_by", "summary"]
    list_filter = ["action"]
    readonly_fields = ["action", "request", "target", "created_by", "created_at", "summary"]
    inlines = [CommandInline]

    @admin.display(description="summary")
    def summary(self, obj: BulkCommand) -> str:
        s = commands.bulk_summary(obj)
        counts = ", ".join(f"{state}: {n}" for state, n in s["by_state"].items() if n)
        return format_html("{} of {} done ({})", s["total"] - s["pending"], s["total"], counts or "none")


from .models import DataTransferRecord  # noqa: E402 - appended apart from the block above (block P)


@admin.register(DataTransferRecord)
class DataTransferRecordAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "station", "vendor_id", "message_id", "status"]
    list_filter = ["status", "vendor_id"]
    search_fields = ["station__identity", "vendor_id", "message_id"]
    list_select_related = ["station"]
    readonly_fields = ["station", "vendor_id", "message_id", "data", "status", "received_at"]


@admin.register(DisplayMessage)
class DisplayMessageAdmin(ReadOnlyAdmin):
    """Set through SetDisplayMessage/ClearDisplayMessage (station page, API) or reported by the station."""

    list_display = ["station", "message_id", "source", "status", "station_status", "priority", "content"]
    list_filter = ["source", "status", "priority"]
    search_fields = ["station__identity", "content"]
    list_select_related = ["station"]
    readonly_fields = [f.name for f in DisplayMessage._meta.fields]


@admin.register(DisplayMessageReport)
class DisplayMessageReportAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "station", "request_id", "state", "parts_received", "messages_received"]
    list_filter = ["state"]
    search_fields = ["station__identity"]
    list_select_related = ["station"]
    readonly_fields = [f.name for f in DisplayMessageReport._meta.fields]


@admin.register(NetworkProfile)
class NetworkProfileAdmin(ReadOnlyAdmin):
    """Set through SetNetworkProfile (its secrets redacted), moved on by the station's answer."""

    list_display = ["station", "configuration_slot", "status", "status_reason", "migrating", "updated_at"]
    list_filter = ["status", "migrating"]
    search_fields = ["station__identity"]
    list_select_related = ["station"]
    readonly_fields = [f.name for f in NetworkProfile._meta.fields]
