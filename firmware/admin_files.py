"""Admin of the files and log requests (registered from ``FirmwareConfig.ready``)."""

from __future__ import annotations

from django.contrib import admin

from csms.admin import ReadOnlyAdmin

from .models import LogRequest, StationFileTransfer, UploadSlot


@admin.register(LogRequest)
class LogRequestAdmin(ReadOnlyAdmin):
    list_display = ("station", "request_id", "log_type", "protocol", "state", "last_status", "created_at")
    list_filter = ("state", "log_type", "protocol")
    search_fields = ("station__identity",)
    list_select_related = ("station",)
    # The remote location holds the slot's credentials: staff only see it here, never listed.
    exclude = ("remote_location",)


@admin.register(UploadSlot)
class UploadSlotAdmin(ReadOnlyAdmin):
    list_display = ("pk", "protocol", "expires_at", "used_at", "size_bytes", "received_via")
    list_filter = ("protocol", "received_via")
    exclude = ("token",)


@admin.register(StationFileTransfer)
class StationFileTransferAdmin(admin.ModelAdmin):
    list_display = ("station", "protocol", "last_log_status", "last_log_status_at")
    list_select_related = ("station",)
    search_fields = ("station__identity",)
    readonly_fields = ("last_log_status", "last_log_request_id", "last_log_status_at")
