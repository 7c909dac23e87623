"""Security events in the admin: read-only (stations report them, the CSMS records its own; nobody edits them)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import SecurityEvent


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "identity", "source", "type", "critical", "count", "remote_addr", "acknowledged_at"]
    list_filter = ["critical", "source", "type"]
    search_fields = ["identity", "type", "tech_info", "remote_addr"]
    date_hierarchy = "timestamp"
    readonly_fields = [f.name for f in SecurityEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
