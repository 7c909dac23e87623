"""Admin base classes shared by the apps."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import JobHeartbeat, JobRun, MessageAssembly, MessagePart


class ReadOnlyAdmin(admin.ModelAdmin):
    """Audit records (what stations reported, what was sent to them): visible, never added, edited or deleted
    from the admin. Every such model's admin derives from this class; tests/stations/test_admin_read_only.py
    checks that each of them is registered with it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.options.InlineModelAdmin):
    """An inline of audit records inside an editable parent: shown, never added, edited or deleted."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# The multi-part assembler's parts (csms.multipart): what stations sent, read-only like every station record.
@admin.register(MessageAssembly)
class MessageAssemblyAdmin(ReadOnlyAdmin):
    list_display = ("station", "kind", "request_id", "parts_received", "last_seq_no", "completed_at", "updated_at")
    list_filter = ("kind",)
    search_fields = ("station__identity",)
    list_select_related = ("station",)


@admin.register(MessagePart)
class MessagePartAdmin(ReadOnlyAdmin):
    list_display = ("assembly", "seq_no", "tbc", "received_at")
    list_select_related = ("assembly__station",)


# The jobs' own audit (csms.jobs): which beat job ran in which slot, when worker and beat were last seen.
@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ("job", "slot", "started_at", "finished_at", "result")
    list_filter = ("job",)


@admin.register(JobHeartbeat)
class JobHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("process", "seen_at", "hostname")
