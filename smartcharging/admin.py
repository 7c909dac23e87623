"""Admin: sites (capacity, strategy, members, limits, priorities) are operators' settings; allocations and their log
are the CSMS's own record of what it decided and sent (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from csms.admin import ReadOnlyAdmin, ReadOnlyInline

from . import sites
from .models import AllocationEntry, AllocationRound, EvseAllocation, EvseLimit, Site, SiteMember, SitePriority

# Sites and load management


class SiteMemberInline(admin.TabularInline):
    model = SiteMember
    extra = 0
    fields = ["station", "max_current_a", "phase_rotation", "fallback_limit_a"]
    readonly_fields = ["fallback_limit_a"]
    raw_id_fields = ["station"]


class SitePriorityInline(admin.TabularInline):
    model = SitePriority
    extra = 0
    raw_id_fields = ["group_id_token"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "capacity_a", "capacity_w", "phases", "strategy", "computed_generation"]
    list_filter = ["strategy"]
    search_fields = ["name"]
    inlines = [SiteMemberInline, SitePriorityInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        sites.site_changed(site=form.instance, reason="changed in the admin")


@admin.register(EvseLimit)
class EvseLimitAdmin(admin.ModelAdmin):
    list_display = ["member", "evse_id", "max_current_a"]
    raw_id_fields = ["member"]


@admin.register(EvseAllocation)
class EvseAllocationAdmin(ReadOnlyAdmin):
    list_display = ["site", "station", "evse_id", "target_a", "limit_a", "pending_a", "reason", "updated_at"]
    list_filter = ["site"]
    list_select_related = ["site", "station"]


class AllocationEntryInline(ReadOnlyInline, admin.TabularInline):
    model = AllocationEntry
    fields = ["station", "evse_id", "limit_a", "previous_a", "step", "reason", "command"]
    readonly_fields = ["station", "evse_id", "limit_a", "previous_a", "step", "reason", "command"]


@admin.register(AllocationRound)
class AllocationRoundAdmin(ReadOnlyAdmin):
    list_display = ["site", "generation", "state", "reason", "allocated_a", "capacity_a", "created_at"]
    list_filter = ["site", "state"]
    inlines = [AllocationEntryInline]


@admin.register(AllocationEntry)
class AllocationEntryAdmin(ReadOnlyAdmin):
    list_display = ["round", "station", "evse_id", "limit_a", "step", "reason"]
    list_select_related = ["round", "station"]
