"""Security events in the admin: read-only (stations report them, the CSMS records its own; nobody edits them)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import PasswordRotation, SecurityEvent


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


@admin.register(PasswordRotation)
class PasswordRotationAdmin(admin.ModelAdmin):
    """Password rotations: an audit trail (the new password is only ever stored hashed, and not shown)."""

    list_display = ["created_at", "station", "state", "reason", "command", "finished_at"]
    list_filter = ["state"]
    search_fields = ["station__identity"]
    exclude = ["password_hash"]
    readonly_fields = [f.name for f in PasswordRotation._meta.fields if f.name != "password_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
